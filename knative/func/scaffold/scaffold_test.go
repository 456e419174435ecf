package main

import (
	"archive/zip"
	"bytes"
	"go/format"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"testing"

	"knative.dev/func-go/http"
	"knative.dev/func/generate"

	function "github.com/cqrs-knative/cqrs-knative"
)

// template returns one file of func's embedded templates.
func template(t *testing.T, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(generate.TemplatesZip), int64(len(generate.TemplatesZip)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open(name)
	if err != nil {
		t.Fatalf("func's templates: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dropComments keeps the code of a Go file: comments gone, then gofmt.
func dropComments(t *testing.T, src []byte) []byte {
	t.Helper()
	src = regexp.MustCompile(`(?m)^\s*//.*\n`).ReplaceAll(src, nil)
	out, err := format.Source(src)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestScaffoldIsFuncs: main.go is func's instanced-http scaffolding of the pinned
// func release, but for the import path of the function.
func TestScaffoldIsFuncs(t *testing.T) {
	want := template(t, "go/scaffolding/instanced-http/main.go")
	want = bytes.Replace(want, []byte(`f "function"`), []byte(`f "github.com/cqrs-knative/cqrs-knative"`), 1)
	got, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if g, w := dropComments(t, got), dropComments(t, want); !bytes.Equal(g, w) {
		t.Errorf("scaffold/main.go differs from func's instanced-http scaffolding:\n--- ours\n%s\n--- func's\n%s", g, w)
	}
}

// TestRuntimeIsFuncs: the func-go this module builds with is the one func's
// scaffolding requires.
func TestRuntimeIsFuncs(t *testing.T) {
	mod := template(t, "go/scaffolding/instanced-http/go.mod")
	m := regexp.MustCompile(`(?m)^\s*knative\.dev/func-go (\S+)`).FindSubmatch(mod)
	if m == nil {
		t.Fatalf("func's scaffolding go.mod names no knative.dev/func-go:\n%s", mod)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	var got string
	for _, d := range bi.Deps {
		if d.Path == "knative.dev/func-go" {
			got = d.Version
		}
	}
	if got != string(m[1]) {
		t.Errorf("knative.dev/func-go %s here, func's scaffolding requires %s", got, m[1])
	}
}

// TestDrainTimeoutIsFuncGos: the function states func-go's drain as it is.
func TestDrainTimeoutIsFuncGos(t *testing.T) {
	if function.DrainTimeout != http.ServerShutdownTimeout {
		t.Errorf("function.DrainTimeout = %s, func-go drains for %s", function.DrainTimeout, http.ServerShutdownTimeout)
	}
}
