// Package launch starts this project's built programs as child processes, configured
// by their environment only, as Knative runs them, and waits until they are ready.
// The tests, the local stack (cqrs-local) and the benchmark (cqrs-bench) all start
// their processes with it, so a process is started, watched and stopped one way.
package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Spec says how to run one program.
type Spec struct {
	// Name is the program's name in messages.
	Name string
	// Path is the executable.
	Path string
	// Env is added to the environment: to PATH alone, or to the whole environment of
	// this process when Inherit is set.
	Env     []string
	Inherit bool
	// Port is set as PORT; 0 picks a free loopback port.
	Port int
	// Output receives stdout and stderr; nil keeps them in memory for Output.
	Output io.Writer
	// OwnGroup puts the process in its own process group, so a Ctrl-C in a terminal
	// reaches only its parent, which stops it in order.
	OwnGroup bool
}

// Proc is a running program.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Port int

	mem  *buffer // nil when Spec.Output was given
	done chan struct{}
	err  error
}

// Start runs s. The child dies with this process (Pdeathsig), whatever ends it.
func Start(s Spec) (*Proc, error) {
	if s.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		s.Port = p
	}
	cmd := exec.Command(s.Path)
	base := []string{"PATH=" + os.Getenv("PATH")}
	if s.Inherit {
		base = os.Environ()
	}
	cmd.Env = append(append(base, "PORT="+strconv.Itoa(s.Port)), s.Env...)
	p := &Proc{Name: s.Name, Cmd: cmd, Port: s.Port, done: make(chan struct{})}
	out := s.Output
	if out == nil {
		p.mem = &buffer{}
		out = p.mem
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: s.OwnGroup}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// URL is the base URL of the program's HTTP server on loopback.
func (p *Proc) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.Port) }

// PID is the process id.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Output is everything the program printed so far, when Spec.Output was nil.
func (p *Proc) Output() string {
	if p.mem == nil {
		return ""
	}
	return p.mem.String()
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended; valid after Done.
func (p *Proc) Err() error { return p.err }

// WaitReady polls /health/readiness until it answers 200, and fails when the
// process exits first, ctx ends or timeout passes.
func (p *Proc) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	url := p.URL() + "/health/readiness"
	start := time.Now()
	for {
		// Poll finely at first, so that a start-up time measured with this is exact to
		// a few milliseconds, and gently once a process is slow to come up.
		pause := 2 * time.Millisecond
		if time.Since(start) > 200*time.Millisecond {
			pause = 20 * time.Millisecond
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%s not ready after %s", p.Name, timeout)
			}
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// Wait waits up to timeout for the process to exit and returns its exit code, -1
// if it did not exit in time.
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

// Stop asks the process to finish (SIGTERM), so that it drains, and kills it when it
// has not exited after grace. It reports whether the process stopped by itself.
func (p *Proc) Stop(grace time.Duration) bool {
	select {
	case <-p.done:
		return true
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(grace):
		p.Kill()
		return false
	}
}

// Kill ends the process at once and waits until it is reaped.
func (p *Proc) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buffer is an output sink that the process writes and tests read at once.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
