// Package proctest builds this module's commands and runs them as real processes in
// tests, configured by environment variables only, as Knative would run them.
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}
)

// Build compiles the main package pkg (such as "./functions/cmd/cqrs-write", relative
// to the module root) once per test binary and returns the executable's path.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
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
	root, err := moduleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := string(bytes.TrimSpace(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("not inside the module")
	}
	return filepath.Dir(mod), nil
}

// Proc is a running command.
type Proc struct {
	Cmd  *exec.Cmd
	Port int
	out  *syncBuffer
	done chan struct{}
	err  error
}

// URL is the base URL of the process' HTTP server.
func (p *Proc) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.Port) }

// Output is everything the process printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Start runs bin with exactly env (plus PATH) and PORT set to a free port. It does not
// wait for readiness; see WaitReady.
func Start(tb testing.TB, bin string, env ...string) *Proc {
	tb.Helper()
	port, err := redisproc.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	return StartOnPort(tb, bin, port, env...)
}

// StartOnPort is Start on a given port.
func StartOnPort(tb testing.TB, bin string, port int, env ...string) *Proc {
	tb.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PORT=" + strconv.Itoa(port)}, env...)
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	p := &Proc{Cmd: cmd, Port: port, out: buf, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if tb.Failed() {
			tb.Logf("output of %s:\n%s", filepath.Base(bin), buf.String())
		}
	})
	return p
}

// WaitReady polls /health/readiness until it answers 200.
func (p *Proc) WaitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("process exited before ready: %v\n%s", p.err, p.Output())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/health/readiness", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("not ready after %s\n%s", timeout, p.Output())
}

// Wait waits up to timeout for the process to exit and returns its exit code
// (-1 if it did not exit in time).
func (p *Proc) Wait(timeout time.Duration) int {
	select {
	case <-p.done:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
