// Command cqrs-ui serves the CQRS sample's page and proxies it to the write and read
// functions.
package main

import (
	"os"

	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/ui"
)

func main() { os.Exit(serve.Main(ui.Service, ui.New())) }
