// Package redisproc starts and stops real redis-server processes (masters, replicas,
// sentinels) on loopback ports, for the tests and for the local stack.
package redisproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
)

// ErrNotInstalled means redis-server is not on PATH.
var ErrNotInstalled = errors.New("redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)")

// Binary returns the path of redis-server.
func Binary() (string, error) {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", ErrNotInstalled
	}
	return p, nil
}

// Server is one redis-server process that can be killed and started again on the
// same port with the same arguments.
type Server struct {
	Port int
	Dir  string
	Role string // "master", "replica" or "sentinel"
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// LogPath is the server's log file.
func (s *Server) LogPath() string {
	return filepath.Join(s.Dir, fmt.Sprintf("%s-%d.log", s.Role, s.Port))
}

func baseArgs(dir string, port int, role string) []string {
	return []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--daemonize", "no",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, fmt.Sprintf("%s-%d.log", role, port)),
		// Disk-based full syncs: a diskless sync waits up to 5 s to start and then holds
		// back the command stream until the replica's first ACK (up to 1 s), so a new or
		// restarted replica would lag for no reason a test could tell from a fault.
		"--repl-diskless-sync", "no", "--repl-diskless-sync-delay", "0",
	}
}

// StartMaster starts a master on port (0 picks a free one) with files in dir.
func StartMaster(dir string, port int, extra ...string) (*Server, error) {
	return start(dir, port, "master", nil, extra)
}

// StartReplica starts a replica of master on port (0 picks a free one).
func StartReplica(dir string, port int, master *Server, extra ...string) (*Server, error) {
	return start(dir, port, "replica", []string{"--replicaof", "127.0.0.1", strconv.Itoa(master.Port)}, extra)
}

// StartSentinel starts a sentinel watching master under name with the given quorum.
// Timeouts are short so that a failover completes within seconds.
func StartSentinel(dir string, port int, name string, master *Server, quorum int) (*Server, error) {
	if port == 0 {
		var err error
		if port, err = launch.FreePort(); err != nil {
			return nil, err
		}
	}
	conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
	body := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
sentinel parallel-syncs %s 1
`, port, dir, filepath.Join(dir, fmt.Sprintf("sentinel-%d.log", port)), name, master.Port, quorum, name, name, name)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	s := &Server{Port: port, Dir: dir, Role: "sentinel", args: []string{conf, "--sentinel"}}
	return s, s.Start()
}

func start(dir string, port int, role string, roleArgs, extra []string) (*Server, error) {
	if port == 0 {
		var err error
		if port, err = launch.FreePort(); err != nil {
			return nil, err
		}
	}
	args := append(baseArgs(dir, port, role), roleArgs...)
	s := &Server{Port: port, Dir: dir, Role: role, args: append(args, extra...)}
	return s, s.Start()
}

// Start runs the process and waits until it answers PING (at most 10 s).
func (s *Server) Start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return fmt.Errorf("%s on port %d is already running", s.Role, s.Port)
	}
	cmd := exec.Command(bin, s.args...)
	// Redis dies with whoever started it, even if that process is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: %w", s.Role, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() { cmd.Wait(); close(done) }()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("%s on port %d exited at start (is the port taken?); see %s", s.Role, s.Port, s.LogPath())
		default:
		}
		// The one answering must be the process just started: with the port taken,
		// another Redis would answer PING while this one exits.
		if pid, err := s.Info("server", "process_id"); err == nil {
			if pid == strconv.Itoa(cmd.Process.Pid) {
				return nil
			}
			s.Kill()
			if pid == "" {
				return fmt.Errorf("port %d is taken by another program; choose another port for the Redis %s", s.Port, s.Role)
			}
			return fmt.Errorf("port %d is taken by another Redis (pid %s); choose another port for the Redis %s", s.Port, pid, s.Role)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Kill()
	return fmt.Errorf("%s on port %d did not answer within 10s", s.Role, s.Port)
}

// PID is the process id, 0 when not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

// Stop ends the process with SIGTERM and waits for it.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	return nil
}

// Restart kills the process and starts it again on the same port.
func (s *Server) Restart() error {
	if err := s.Kill(); err != nil {
		return err
	}
	return s.Start()
}

// Do sends one command in the inline protocol and returns the raw reply; it needs no
// client library, so it also works before anything else is set up.
func (s *Server) Do(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return strings.TrimLeft(line, "+:"), nil
}

// Info returns one field of INFO section, "" when absent.
func (s *Server) Info(section, field string) (string, error) {
	out, err := s.Do("INFO", section)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v, nil
		}
	}
	return "", nil
}

// WaitLinkUp waits until the replica reports its link to the master up.
func (s *Server) WaitLinkUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := s.Info("replication", "master_link_status")
		if err == nil && v == "up" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica on port %d: link to master not up after %s (status %q, err %v)", s.Port, timeout, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
