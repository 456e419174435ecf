// Package redisproc starts and stops real redis-server processes (masters, replicas,
// sentinels) on loopback ports, for the tests and for the local stack.
package redisproc

import (
	"bufio"
	"context"
	"crypto/tls"
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
// same port with the same arguments, and so from the same files.
type Server struct {
	Port int    // where clients connect: the TLS port with TLS
	Dir  string // the server's own: no two servers share one (see Start)
	Role string // "master", "replica" or "sentinel"
	// Security is how the server is protected; Do uses it too.
	Security Security
	args     []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error // how the last process ended, once done is closed
}

// Security is how a server is protected beyond loopback: TLS, and a password for
// its default user. The zero value is a plain server without a password.
type Security struct {
	// TLS, when set, makes the server listen with TLS only (no plain port), and
	// replicas and Sentinels talk to their master over TLS.
	TLS *TLS
	// Password is the default user's (requirepass); replicas and Sentinels give it
	// to their master, and Do authenticates with it.
	Password string
}

// TLS is a server's TLS set-up.
type TLS struct {
	// CertFile and KeyFile are the server's certificate and key; toward its master,
	// a replica or Sentinel shows the same certificate as its client certificate.
	CertFile, KeyFile string
	// CAFile holds the CA that client certificates (and a master's) must chain to.
	CAFile string
	// AuthClients is tls-auth-clients: "no" (the default), "optional" or "yes".
	AuthClients string
	// Client is how Do connects: the CA to trust, a server name, a client
	// certificate where AuthClients asks for one.
	Client *tls.Config
}

// args are the redis-server options of s for a server or Sentinel on port.
func (s Security) args(port int) []string {
	var a []string
	if s.Password != "" {
		a = append(a, "--requirepass", s.Password)
	}
	if t := s.TLS; t != nil {
		auth := t.AuthClients
		if auth == "" {
			auth = "no"
		}
		a = append(a, "--port", "0", "--tls-port", strconv.Itoa(port),
			"--tls-cert-file", t.CertFile, "--tls-key-file", t.KeyFile, "--tls-ca-cert-file", t.CAFile,
			"--tls-auth-clients", auth, "--tls-replication", "yes")
	}
	return a
}

// dirs holds the directory of every server started and not stopped: two servers in
// one directory share its files (dump.rdb, the AOF), and a restart of one would load
// what the other wrote there.
var (
	dirsMu sync.Mutex
	dirs   = map[string]*Server{}
)

// claimDir makes dir s's, unless another server holds it.
func (s *Server) claimDir() error {
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return err
	}
	dirsMu.Lock()
	defer dirsMu.Unlock()
	if o, ok := dirs[abs]; ok && o != s {
		return fmt.Errorf("%s is the directory of the Redis %s on port %d; give each Redis its own", s.Dir, o.Role, o.Port)
	}
	dirs[abs] = s
	return nil
}

// releaseDir gives dir up once s is stopped on purpose.
func (s *Server) releaseDir() {
	abs, err := filepath.Abs(s.Dir)
	if err != nil {
		return
	}
	dirsMu.Lock()
	defer dirsMu.Unlock()
	if dirs[abs] == s {
		delete(dirs, abs)
	}
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
	return StartMasterWith(dir, port, Security{}, extra...)
}

// StartMasterWith is StartMaster with sec.
func StartMasterWith(dir string, port int, sec Security, extra ...string) (*Server, error) {
	return start(dir, port, "master", sec, nil, extra)
}

// StartReplica starts a replica of master on port (0 picks a free one) with files
// in dir, which must not be master's.
func StartReplica(dir string, port int, master *Server, extra ...string) (*Server, error) {
	return start(dir, port, "replica", master.Security, master.replicaArgs(), extra)
}

// replicaArgs are the options of a replica of s: its address, and the password and
// TLS it asks for.
func (s *Server) replicaArgs() []string {
	a := []string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Port)}
	if s.Security.Password != "" {
		a = append(a, "--masterauth", s.Security.Password)
	}
	return a
}

// StartSentinel starts a sentinel watching master under name with the given quorum.
// Timeouts are short so that a failover completes within seconds.
func StartSentinel(dir string, port int, name string, master *Server, quorum int) (*Server, error) {
	return StartSentinelWith(dir, port, name, master, quorum, master.Security)
}

// StartSentinelWith is StartSentinel with the Sentinel's own sec (its TLS, and its
// default user's password), and conf lines added to its configuration (users of
// its own, for example). It gives master's password to master and, with master on
// TLS, talks TLS to it.
func StartSentinelWith(dir string, port int, name string, master *Server, quorum int, sec Security, conf ...string) (*Server, error) {
	if port == 0 {
		var err error
		if port, err = launch.FreePort(); err != nil {
			return nil, err
		}
	}
	path := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", port))
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
	if master.Security.Password != "" {
		body += fmt.Sprintf("sentinel auth-pass %s %s\n", name, master.Security.Password)
	}
	// The Sentinel's own settings as configuration lines: it rewrites its file, and
	// options given on its command line would be written into it twice.
	if sec.Password != "" {
		body += "requirepass " + sec.Password + "\n"
	}
	if t := sec.TLS; t != nil {
		auth := t.AuthClients
		if auth == "" {
			auth = "no"
		}
		body += fmt.Sprintf("port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-auth-clients %s\ntls-replication yes\n",
			port, t.CertFile, t.KeyFile, t.CAFile, auth)
	}
	for _, l := range conf {
		body += l + "\n"
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return nil, err
	}
	s := &Server{Port: port, Dir: dir, Role: "sentinel", Security: sec, args: []string{path, "--sentinel"}}
	return s, s.Start()
}

func start(dir string, port int, role string, sec Security, roleArgs, extra []string) (*Server, error) {
	if port == 0 {
		var err error
		if port, err = launch.FreePort(); err != nil {
			return nil, err
		}
	}
	args := append(baseArgs(dir, port, role), sec.args(port)...)
	args = append(args, roleArgs...)
	s := &Server{Port: port, Dir: dir, Role: role, Security: sec, args: append(args, extra...)}
	return s, s.Start()
}

// Start runs the process and waits until it answers (at most 10 s). It refuses a
// directory that another server started here holds.
func (s *Server) Start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	if err := s.claimDir(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.cmd != nil && !closed(s.done) {
		s.mu.Unlock()
		return fmt.Errorf("%s on port %d is already running", s.Role, s.Port)
	}
	cmd := exec.Command(bin, s.args...)
	// Redis dies with whoever started it, even if that process is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.releaseDir()
		return fmt.Errorf("start %s: %w", s.Role, err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		if s.done == done {
			s.exitErr = err
		}
		s.mu.Unlock()
		close(done)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			s.releaseDir()
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

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
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

// Exited is closed when the process that runs now (or ran last) has ended, whether
// it was stopped or died; nil before the first Start.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// ExitErr is how the last process ended (a *exec.ExitError says by which signal or
// code), valid once Exited is closed.
func (s *Server) ExitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exitErr
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
	s.releaseDir()
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
// client library, so it also works before anything else is set up. It speaks TLS
// and authenticates as the server's Security says.
func (s *Server) Do(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := s.dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	if p := s.Security.Password; p != "" {
		if _, err := roundTrip(c, r, "AUTH", p); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return roundTrip(c, r, args...)
}

// dial connects to the server, over TLS when it has TLS.
func (s *Server) dial(ctx context.Context) (net.Conn, error) {
	if t := s.Security.TLS; t != nil {
		d := tls.Dialer{Config: t.Client}
		return d.DialContext(ctx, "tcp", s.Addr())
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.Addr())
}

// roundTrip sends one command and reads its reply: a simple string, an integer or a
// bulk string; an error reply is returned as an error.
func roundTrip(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
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

// WaitLoaded waits until the server has loaded its data set (Start returns as soon
// as it answers, which it does while it loads its files).
func (s *Server) WaitLoaded(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := s.Info("persistence", "loading")
		if err == nil && v == "0" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s on port %d: still loading after %s (loading %q, err %v)", s.Role, s.Port, timeout, v, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
