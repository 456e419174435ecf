// Command scaffold is cqrs-write as `func build` makes it: knative/func's Go
// scaffolding for instanced HTTP functions (templates/go/scaffolding/instanced-http
// in knative.dev/func), with the function imported by its module path instead of
// the name "function", on the runtime that scaffolding pins (knative.dev/func-go).
// scaffold_test.go keeps it equal to the template of the pinned func release.
package main

import (
	"fmt"
	"os"

	"knative.dev/func-go/http"

	f "github.com/cqrs-knative/cqrs-knative"
)

func main() {
	if err := http.Start(f.New()); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
