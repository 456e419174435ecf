package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
)

// The deployable mains, as Knative runs them.
const (
	WriteMain = "./functions/cmd/cqrs-write"
	ReadMain  = "./functions/cmd/cqrs-read"
	UIMain    = "./functions/cmd/cqrs-ui"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
	running  bool // Run is in charge of removing buildDir
)

// Run runs a package's tests and then removes what Build built for them; a package
// whose tests call Build has a TestMain that is just os.Exit(testenv.Run(m)). The
// binaries outlive every single test, so no test's cleanup can remove them, and left
// behind they would fill the temporary directory by tens of MB a run.
func Run(m *testing.M) int {
	buildMu.Lock()
	running = true
	buildMu.Unlock()
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: removing the built binaries:", err)
		}
	}
	return code
}

// Build compiles the main package pkg (relative to the module root) once per test
// binary and returns the executable's path. The package's TestMain must call Run.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if !running {
		tb.Fatal("testenv.Build: this package needs func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }, which removes the built binaries")
	}
	if p, ok := built[pkg]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "cqrs-bin-")
		if err != nil {
			tb.Fatal(err)
		}
		buildDir = d
	}
	out, err := launch.Build(buildDir, pkg)
	if err != nil {
		tb.Fatal(err)
	}
	built[pkg] = out
	return out
}

// Start runs bin with exactly env (plus PATH and a free PORT) until the test ends.
// It does not wait for readiness; see Ready.
func Start(tb testing.TB, bin string, env ...string) *launch.Proc {
	tb.Helper()
	return StartOnPort(tb, bin, 0, env...)
}

// StartOnPort is Start on a given port (0 picks a free one).
func StartOnPort(tb testing.TB, bin string, port int, env ...string) *launch.Proc {
	tb.Helper()
	p, err := launch.Start(launch.Spec{Name: filepath.Base(bin), Path: bin, Env: env, Port: port})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("output of %s:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// Ready waits until p answers its readiness probe, failing the test otherwise.
func Ready(tb testing.TB, p *launch.Proc, timeout time.Duration) {
	tb.Helper()
	if err := p.WaitReady(context.Background(), timeout); err != nil {
		tb.Fatalf("%v\n%s", err, p.Output())
	}
}

// WaitOutput waits up to timeout until p has printed want, failing the test
// otherwise. A process writes its log lines after it answers (a create's line
// follows its 201), so a test that reads the log right after an answer must wait.
func WaitOutput(tb testing.TB, p *launch.Proc, want string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Output(), want) {
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not print %q within %s:\n%s", p.Name, want, timeout, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
