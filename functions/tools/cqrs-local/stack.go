package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// stack is what cqrs-local started, in order.
type stack struct {
	dir    string
	out    *console
	redis  []*redisproc.Server
	procs  []*launch.Proc
	exited chan *launch.Proc
}

func (s *stack) start(ctx context.Context, o options, bins map[string]string) int {
	s.exited = make(chan *launch.Proc, 4)
	s.out.linef("temp dir %s", s.dir)
	master, err := redisproc.StartMaster(s.dir, o.redisMaster)
	if err != nil {
		s.out.linef("redis master: %v", err)
		return 1
	}
	s.redis = append(s.redis, master)
	s.out.linef("started redis-master pid=%d addr=%s", master.PID(), master.Addr())
	replica, err := redisproc.StartReplica(s.dir, o.redisReplica, master)
	if err != nil {
		s.out.linef("redis replica: %v", err)
		return 1
	}
	s.redis = append(s.redis, replica)
	s.out.linef("started redis-replica pid=%d addr=%s", replica.PID(), replica.Addr())
	if err := replica.WaitLinkUp(10 * time.Second); err != nil {
		s.out.linef("%v", err)
		return 1
	}

	addr := func(port int) string { return net.JoinHostPort(o.host, strconv.Itoa(port)) }
	local := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	steps := []struct {
		name, bin string
		port      int
		env       []string
	}{
		{"write", bins["cqrs-write"], o.write, []string{"REDIS_ADDR=" + master.Addr()}},
		{"read", bins["cqrs-read"], o.read, []string{"REDIS_ADDR=" + replica.Addr(), "REDIS_MASTER_ADDR=" + master.Addr()}},
		{"ui", bins["cqrs-ui"], o.ui, []string{"WRITE_URL=" + local(o.write), "READ_URL=" + local(o.read)}},
	}
	for _, st := range steps {
		p, err := s.spawn(st.name, st.bin, st.port, append([]string{"LISTEN_ADDRESS=" + addr(st.port)}, st.env...))
		if err != nil {
			s.out.linef("%v", err)
			return 1
		}
		s.out.linef("started %s pid=%d addr=%s", st.name, p.PID(), addr(st.port))
		if err := p.WaitReady(ctx, readyTimeout); err != nil {
			if ctx.Err() != nil {
				return 0
			}
			s.out.linef("%v", err)
			return 1
		}
	}
	host := "localhost"
	if o.host != "127.0.0.1" && o.host != "0.0.0.0" && o.host != "" {
		host = o.host
	}
	url := func(port int) string { return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) }
	s.out.linef("ready")
	s.out.raw(fmt.Sprintf(`
  UI      %s
  write   %s   (POST /records)
  read    %s   (GET /records)
  redis   master %s, replica %s

Press Ctrl-C to stop everything.

`, url(o.ui), url(o.write), url(o.read), master.Addr(), replica.Addr()))
	return 0
}

// wait blocks until ctx ends (0) or a process exits on its own (1).
func (s *stack) wait(ctx context.Context) int {
	select {
	case <-ctx.Done():
		s.out.linef("stopping")
		return 0
	case p := <-s.exited:
		s.out.linef("%s exited on its own (%v); stopping the rest", p.Name, p.Err())
		return 1
	}
}

// stop ends the processes in reverse order, SIGTERM first so that they drain, then
// removes the temporary directory.
func (s *stack) stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		if !p.Stop(stopTimeout) {
			s.out.linef("%s did not stop in %s; killed it", p.Name, stopTimeout)
		}
		s.out.linef("stopped %s pid=%d", p.Name, p.PID())
	}
	for i := len(s.redis) - 1; i >= 0; i-- {
		r := s.redis[i]
		pid := r.PID()
		r.Stop()
		s.out.linef("stopped redis-%s pid=%d", r.Role, pid)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.out.linef("cannot remove %s: %v", s.dir, err)
		return
	}
	s.out.linef("removed temp dir %s", s.dir)
}

// spawn starts one function or the UI, its output prefixed with its name, and
// reports on s.exited when it ends.
func (s *stack) spawn(procName, bin string, port int, env []string) (*launch.Proc, error) {
	w := &prefixed{out: s.out, prefix: procName}
	// Own process group: a Ctrl-C in the terminal reaches cqrs-local only, which
	// stops the processes in order.
	p, err := launch.Start(launch.Spec{Name: procName, Path: bin, Env: env, Inherit: true, Port: port, Output: w, OwnGroup: true})
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	go func() {
		<-p.Done()
		w.flush()
		select {
		case s.exited <- p:
		default:
		}
	}()
	return p, nil
}
