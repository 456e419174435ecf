// Command cqrs-read serves the read function (queries, Redis replicas).
package main

import (
	"os"

	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

func main() { os.Exit(serve.Main("cqrs-read", read.New())) }
