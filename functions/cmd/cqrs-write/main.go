// Command cqrs-write serves the write function (commands, Redis master).
package main

import (
	"os"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

func main() { os.Exit(serve.Main("cqrs-write", write.New())) }
