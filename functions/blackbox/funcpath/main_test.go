// Package funcpath holds no code, only tests of the func path: knative/func's own
// tools against this repository. One builds cqrs-write the way `func build` does
// (func's instanced-http scaffolding on the knative.dev/func-go runtime, from the
// tool module in knative/func) and runs it as a process on a real Redis master and
// replica; the other runs func's CLI, `func invoke`, from the repository root
// against the built functions, with the invoke lines that the docs show.
//
// The func CLI is built once into bin/func by `make func-cli` (make test does that
// before the Go tests); the tests call that target too, so that alone they build it
// when it is missing or older than knative/func/go.mod.
package funcpath

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

var tmpBin string // this test binary's builds

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "cqrs-funcpath-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpBin = d
	code := testenv.Run(m)
	os.RemoveAll(d)
	os.Exit(code)
}

// repoRoot is the directory holding go.mod and func.yaml.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := launch.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	funcGoOnce sync.Once
	funcGoBin  string
	funcGoErr  error
)

// funcGoWrite builds cqrs-write as `func build` does (make func-write builds the
// same into bin/), once per test binary, from the current sources.
func funcGoWrite(t *testing.T) string {
	t.Helper()
	funcGoOnce.Do(func() {
		out := filepath.Join(tmpBin, "cqrs-write-funcgo")
		cmd := exec.Command("go", "build", "-o", out, "./scaffold")
		cmd.Dir = filepath.Join(repoRoot(t), "knative", "func")
		if b, err := cmd.CombinedOutput(); err != nil {
			funcGoErr = fmt.Errorf("go build ./scaffold in knative/func: %v\n%s\n(after a change to go.mod, run make func-tidy)", err, b)
			return
		}
		funcGoBin = out
	})
	if funcGoErr != nil {
		t.Fatal(funcGoErr)
	}
	return funcGoBin
}

var (
	cliOnce sync.Once
	cliErr  error
)

// funcCLI returns bin/func, knative/func's CLI at the version knative/func pins,
// after `make func-cli` has brought it up to date.
func funcCLI(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	makeBin, err := exec.LookPath("make")
	if err != nil {
		testenv.Missing(t, "make is not installed; bin/func is built by make func-cli")
	}
	cliOnce.Do(func() {
		cmd := exec.Command(makeBin, "--no-print-directory", "func-cli")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("make func-cli: %v\n%s", err, b)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return filepath.Join(root, "bin", "func")
}

// funcEnv is the whole environment func runs with: PATH, and a home and kube
// configuration of its own, so that it reads and writes nothing of the user's and
// has no cluster to talk to.
func funcEnv(t *testing.T, path string) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + path,
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}
}

// unchanged fails the test if running func changed a file it must leave alone.
func unchanged(t *testing.T, file string) func() {
	t.Helper()
	before, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		after, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(before, after) {
			t.Errorf("%s changed while func ran (%v):\n%s", file, err, strings.TrimSpace(string(after)))
		}
	}
}
