// Command cqrs-local runs the whole CQRS stack on this machine: a Redis master and a
// replica (real redis-server processes, each in a directory of its own), the write
// and read functions and the UI, each as its own process, until Ctrl-C or SIGTERM.
// Then it stops every process it started and removes the temporary directory.
// With -cluster (make run CLUSTER=1) the Redis is a Redis Cluster of three masters
// and three replicas on free loopback ports, and the functions run in cluster mode.
//
// The master (every node of a cluster) keeps an append-only file. A child that dies is reported at once and
// started again: a Redis from its files, so a master killed with kill -9 comes back
// with every write it acknowledged. With -redis-dir (REDIS_DIR) the files live in a
// directory of the user's and outlive the stack, so the data survives the next run.
//
// The function and UI binaries are taken from the directory that holds cqrs-local
// itself, where make build writes them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

const name = "cqrs-local"

// Timeouts of the stack's life cycle.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the flags, each with an environment variable as its default.
type options struct {
	host                      string
	ui, write, read           int
	redisMaster, redisReplica int
	redisDir                  string
	binDir                    string
	cluster                   bool
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var errs []error
	port := func(p *int, flagName, env string, def int, what string) {
		v := def
		if s := os.Getenv(env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 65535 {
				errs = append(errs, fmt.Errorf("%s=%q: not a port number", env, s))
			}
			v = n
		}
		fs.IntVar(p, flagName, v, what+" (env "+env+"; 0 picks a free port)")
	}
	port(&o.ui, "ui-port", "UI_PORT", 8080, "port of the UI")
	port(&o.write, "write-port", "WRITE_PORT", 8081, "port of the write function")
	port(&o.read, "read-port", "READ_PORT", 8082, "port of the read function")
	port(&o.redisMaster, "redis-master-port", "REDIS_MASTER_PORT", 0, "port of the Redis master")
	port(&o.redisReplica, "redis-replica-port", "REDIS_REPLICA_PORT", 0, "port of the Redis replica")
	host := os.Getenv("LISTEN_HOST")
	if host == "" {
		host = "127.0.0.1"
	}
	fs.StringVar(&o.host, "listen-host", host, "address the UI and functions listen on (env LISTEN_HOST; 0.0.0.0 for all interfaces)")
	fs.StringVar(&o.redisDir, "redis-dir", os.Getenv("REDIS_DIR"), "directory for the Redis files, kept after exit so the data survives the next run (env REDIS_DIR; default: a temporary directory, removed on exit)")
	cluster := false
	if s := os.Getenv("REDIS_CLUSTER"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("REDIS_CLUSTER=%q: not 1 or 0 (true or false)", s))
		}
		cluster = b
	}
	fs.BoolVar(&o.cluster, "cluster", cluster, "a Redis Cluster of three masters and three replicas on free loopback ports, the functions in cluster mode (env REDIS_CLUSTER=1; make run CLUSTER=1)")
	fs.StringVar(&o.binDir, "bin", "", "directory holding cqrs-write, cqrs-read and cqrs-ui (default: the directory of this program)")
	if err := errors.Join(errs...); err != nil {
		return o, err
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for _, p := range []struct {
		v    int
		flag string
	}{{o.ui, "ui-port"}, {o.write, "write-port"}, {o.read, "read-port"}, {o.redisMaster, "redis-master-port"}, {o.redisReplica, "redis-replica-port"}} {
		if p.v < 0 || p.v > 65535 {
			return o, fmt.Errorf("-%s=%d: not a port number", p.flag, p.v)
		}
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.cluster {
		for _, p := range []struct {
			v          int
			flag, name string
		}{{o.redisMaster, "redis-master-port", "REDIS_MASTER_PORT"}, {o.redisReplica, "redis-replica-port", "REDIS_REPLICA_PORT"}} {
			if p.v != 0 {
				return o, fmt.Errorf("-%s (%s) is for one master and its replica; with -cluster the six nodes take free loopback ports, leave it unset", p.flag, p.name)
			}
		}
	}
	return o, nil
}

// run starts the stack, keeps it running (restarting what dies) until ctx ends or a
// process cannot be kept running, and stops it.
// unsignal restores default signal handling so that a second Ctrl-C ends cqrs-local
// at once; its children die with it (Pdeathsig).
func run(ctx context.Context, unsignal func(), args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	if _, err := redisproc.Binary(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if o.binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintf(stderr, "%s: cannot find my own directory: %v\n", name, err)
			return 1
		}
		o.binDir = filepath.Dir(exe)
	}
	bins := map[string]string{}
	for _, b := range []string{"cqrs-write", "cqrs-read", "cqrs-ui"} {
		p := filepath.Join(o.binDir, b)
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(stderr, "%s: %s is missing next to %s; run make build (make run does it)\n", name, b, name)
			return 1
		}
		bins[b] = p
	}
	// Every port is checked before anything starts, so a taken one is one clear line
	// and not a stack that half runs on someone else's Redis.
	for _, p := range []struct {
		host string
		port *int
		what string
		hint string
		// picksOwn: the process finds a free port itself when it starts with 0.
		picksOwn bool
	}{
		{o.host, &o.ui, "UI", "-ui-port or UI_PORT", false},
		{o.host, &o.write, "write function", "-write-port or WRITE_PORT", false},
		{o.host, &o.read, "read function", "-read-port or READ_PORT", false},
		// Redis listens on loopback only, whatever -listen-host says.
		{"127.0.0.1", &o.redisMaster, "Redis master", "-redis-master-port or REDIS_MASTER_PORT", true},
		{"127.0.0.1", &o.redisReplica, "Redis replica", "-redis-replica-port or REDIS_REPLICA_PORT", true},
	} {
		if *p.port == 0 && p.picksOwn {
			continue
		}
		if err := claimPort(p.host, p.port); err != nil {
			fmt.Fprintf(stderr, "%s: port %d for the %s is not free (%v); choose another with %s\n", name, *p.port, p.what, err, p.hint)
			return 1
		}
	}

	dir, keep := o.redisDir, o.redisDir != ""
	if keep {
		unlock, err := lockDir(dir)
		if err != nil {
			fmt.Fprintf(stderr, "%s: -redis-dir %s: %v\n", name, dir, err)
			return 1
		}
		defer unlock()
	} else {
		var err error
		if dir, err = os.MkdirTemp("", "cqrs-local-"); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
	}
	out := &console{w: stdout}
	s := &stack{dir: dir, keep: keep, out: out}
	code := s.start(ctx, o, bins)
	if code == 0 {
		code = s.wait(ctx)
	}
	unsignal()
	s.stop()
	return code
}

// claimPort checks that host:*port can be listened on; port 0 becomes a free port.
func claimPort(host string, port *int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	*port = l.Addr().(*net.TCPAddr).Port
	return l.Close()
}

// lockDir makes dir if needed and locks it for this process: two stacks on one
// directory would write one append-only file from two masters.
func lockDir(dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".cqrs-local.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("another cqrs-local uses it; give this one another directory")
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
