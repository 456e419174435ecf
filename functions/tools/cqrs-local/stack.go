package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// stack is what cqrs-local started, in order.
type stack struct {
	dir   string // the Redis files: master/ and replica/, or cluster/ (-cluster)
	keep  bool   // the user named dir: it outlives the stack
	out   *console
	redis []*redisproc.Server
	names map[*redisproc.Server]string // "redis-master", or a cluster node's "redis-m0"
	// cluster: the Redis are the nodes of a Redis Cluster (-cluster).
	cluster bool
	procs   []*service
	// deaths gets each child that ended while the stack runs; stopping is closed
	// when the stack stops them itself, and their ends are no news then.
	deaths   chan death
	stopping chan struct{}
	restarts map[string][]time.Time // of each child, within restartWindow
}

// service is a function or the UI: how to start it again, and the process that runs.
type service struct {
	name, bin, addr string
	port            int
	env             []string
	proc            *launch.Proc
}

// death is a child that ended on its own.
type death struct {
	name  string
	pid   int
	how   string
	redis *redisproc.Server // nil for a service
	svc   *service
}

// A child that dies is started again, up to restartLimit times within
// restartWindow; one that keeps dying (a corrupt AOF, a crash at every start) stops
// the stack instead of looping.
const (
	restartLimit  = 5
	restartWindow = time.Minute
)

// masterArgs make the master persist: every write is in its append-only file, and
// on disk, before it is acknowledged, so a master killed with kill -9 (or the
// machine) comes back from its files with every write it acknowledged. Not
// everysec: while a slow disk holds the last second's fsync, Redis answers writes it
// has not yet written to the file (up to 2 s of them), which a kill -9 then loses.
var masterArgs = []string{"--appendonly", "yes", "--appendfsync", "always"}

// redisSetup is what the functions are told of the Redis the stack started, and the
// banner's line about it.
type redisSetup struct {
	writeEnv, readEnv []string
	banner            string
}

func (s *stack) start(ctx context.Context, o options, bins map[string]string) int {
	s.deaths = make(chan death, 8)
	s.stopping = make(chan struct{})
	s.restarts = map[string][]time.Time{}
	s.names = map[*redisproc.Server]string{}
	if s.keep {
		s.out.linef("redis dir %s (kept after exit)", s.dir)
	} else {
		s.out.linef("temp dir %s", s.dir)
	}
	startRedis := s.startReplication
	if o.cluster {
		startRedis = s.startCluster
	}
	rs, code := startRedis(o)
	if code != 0 {
		return code
	}

	addr := func(port int) string { return net.JoinHostPort(o.host, strconv.Itoa(port)) }
	local := func(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
	for _, svc := range []*service{
		{name: "write", bin: bins["cqrs-write"], port: o.write, env: rs.writeEnv},
		{name: "read", bin: bins["cqrs-read"], port: o.read, env: rs.readEnv},
		{name: "ui", bin: bins["cqrs-ui"], port: o.ui, env: []string{"WRITE_URL=" + local(o.write), "READ_URL=" + local(o.read)}},
	} {
		svc.addr = addr(svc.port)
		svc.env = append([]string{"LISTEN_ADDRESS=" + svc.addr}, svc.env...)
		s.procs = append(s.procs, svc)
		if code := s.spawn(ctx, svc, "started"); code != 0 {
			return code
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
  redis   %s

Press Ctrl-C to stop everything.

`, url(o.ui), url(o.write), url(o.read), rs.banner))
	return 0
}

// startReplication starts a Redis master and its replica, each in a directory of
// its own.
func (s *stack) startReplication(o options) (redisSetup, int) {
	// Each Redis in a directory of its own: a shared one would mix their dump.rdb,
	// and a restarted master would load the replica's.
	masterDir, replicaDir := filepath.Join(s.dir, "master"), filepath.Join(s.dir, "replica")
	for _, d := range []string{masterDir, replicaDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			s.out.linef("%v", err)
			return redisSetup{}, 1
		}
	}
	master, err := redisproc.StartMaster(masterDir, o.redisMaster, masterArgs...)
	if err != nil {
		s.out.linef("redis master: %v", err)
		return redisSetup{}, 1
	}
	s.addRedis(master, "redis-master")
	replica, err := redisproc.StartReplica(replicaDir, o.redisReplica, master)
	if err != nil {
		s.out.linef("redis replica: %v", err)
		return redisSetup{}, 1
	}
	s.addRedis(replica, "redis-replica")
	if err := replica.WaitLinkUp(10 * time.Second); err != nil {
		s.out.linef("%v", err)
		return redisSetup{}, 1
	}
	return redisSetup{
		writeEnv: []string{"REDIS_ADDR=" + master.Addr()},
		readEnv:  []string{"REDIS_ADDR=" + replica.Addr(), "REDIS_MASTER_ADDR=" + master.Addr()},
		banner:   fmt.Sprintf("master %s, replica %s", master.Addr(), replica.Addr()),
	}, 0
}

// The local Redis Cluster: three masters, each with one replica.
const (
	clusterMasters  = 3
	clusterReplicas = 1
)

// startCluster starts a Redis Cluster on free loopback ports, each node in a
// directory of its own under cluster/ and with an append-only file (a failover
// makes a replica a master, so every node keeps one), or, when a kept directory
// holds one already, starts its nodes again from their files on their ports. Both
// functions get every node as a seed; REDIS_PARTITIONS, if set, reaches both alike.
func (s *stack) startCluster(o options) (redisSetup, int) {
	dir := filepath.Join(s.dir, "cluster")
	start := func() (*redisproc.Cluster, error) {
		return redisproc.StartCluster(dir, clusterMasters, clusterReplicas, masterArgs...)
	}
	if redisproc.HasCluster(dir) {
		s.out.linef("starting the Redis Cluster in %s again, each node from its files", dir)
		start = func() (*redisproc.Cluster, error) {
			return redisproc.ResumeCluster(dir, clusterMasters, clusterReplicas, masterArgs...)
		}
	} else {
		s.out.linef("starting a Redis Cluster of %d masters, each with %d replica, in %s", clusterMasters, clusterReplicas, dir)
	}
	c, err := start()
	if err != nil {
		s.out.linef("redis cluster: %v", err)
		return redisSetup{}, 1
	}
	s.cluster = true
	for i, m := range c.Masters {
		s.addRedis(m, fmt.Sprintf("redis-m%d", i))
		for j, r := range c.Replicas[i] {
			s.addRedis(r, fmt.Sprintf("redis-m%d-r%d", i, j))
		}
	}
	var masters, replicas []string
	for _, n := range c.All() {
		// Roles as they are now: a node may have been a replica in the last run.
		if role, _ := n.Info("replication", "role"); role == "slave" {
			replicas = append(replicas, n.Addr())
		} else {
			masters = append(masters, n.Addr())
		}
	}
	seeds := "REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ",")
	return redisSetup{
		writeEnv: []string{seeds},
		readEnv:  []string{seeds},
		banner: fmt.Sprintf("cluster, masters %s; replicas %s",
			strings.Join(masters, ", "), strings.Join(replicas, ", ")),
	}, 0
}

// addRedis takes r, started, into the stack under name: stopped with it, and
// restarted when it dies.
func (s *stack) addRedis(r *redisproc.Server, name string) {
	s.redis = append(s.redis, r)
	s.names[r] = name
	s.watchRedis(r)
	s.out.linef("started %s pid=%d addr=%s", name, r.PID(), r.Addr())
}

// wait runs until ctx ends (0), restarting every child that dies as it dies, and
// stops the stack (1) when one cannot be started again or keeps dying.
func (s *stack) wait(ctx context.Context) int {
	for {
		select {
		case <-ctx.Done():
			s.out.linef("stopping")
			return 0
		case d := <-s.deaths:
			if code := s.revive(ctx, d); code != 0 || ctx.Err() != nil {
				return code
			}
		}
	}
}

// revive reports a child's death at once and starts it again: a Redis from its own
// files (the master from its append-only file; the replica then syncs from the
// master), a function or the UI as it was started, as Kubernetes restarts a
// container that exits. Either way the stack keeps the addresses it printed.
func (s *stack) revive(ctx context.Context, d death) int {
	s.out.linef("%s pid=%d died (%s)", d.name, d.pid, d.how)
	now := time.Now()
	recent := []time.Time{now}
	for _, t := range s.restarts[d.name] {
		if now.Sub(t) < restartWindow {
			recent = append(recent, t)
		}
	}
	s.restarts[d.name] = recent
	if len(recent) > restartLimit {
		s.out.linef("%s died %d times within %s; stopping the rest", d.name, len(recent), restartWindow)
		return 1
	}
	if d.svc != nil {
		return s.spawn(ctx, d.svc, "restarted")
	}
	r := d.redis
	if err := r.Start(); err != nil {
		s.out.linef("cannot restart %s: %v; stopping the rest", d.name, err)
		return 1
	}
	s.watchRedis(r)
	from := "from its append-only file"
	switch {
	case s.cluster:
		from = "from its files; it rejoins the cluster"
	case r.Role == "replica":
		from = "from its files; it syncs from the master"
	}
	s.out.linef("restarted %s pid=%d addr=%s %s", d.name, r.PID(), r.Addr(), from)
	return 0
}

// watchRedis reports on s.deaths when the process r runs now ends, unless the stack
// stopped it.
func (s *stack) watchRedis(r *redisproc.Server) {
	done, pid, name := r.Exited(), r.PID(), s.names[r]
	go func() {
		<-done
		d := death{name: name, pid: pid, how: exitHow(r.ExitErr()), redis: r}
		select {
		case s.deaths <- d:
		case <-s.stopping:
		}
	}()
}

// stop ends the processes in reverse order, SIGTERM first so that they drain and
// Redis closes its files, then removes the temporary directory (never one the user
// named).
func (s *stack) stop() {
	close(s.stopping)
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i].proc
		if p == nil {
			continue
		}
		if !p.Stop(stopTimeout) {
			s.out.linef("%s did not stop in %s; killed it", p.Name, stopTimeout)
		}
		s.out.linef("stopped %s pid=%d", p.Name, p.PID())
	}
	for i := len(s.redis) - 1; i >= 0; i-- {
		r := s.redis[i]
		pid := r.PID()
		r.Stop()
		s.out.linef("stopped %s pid=%d", s.names[r], pid)
	}
	if s.keep {
		s.out.linef("kept redis dir %s", s.dir)
		return
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.out.linef("cannot remove %s: %v", s.dir, err)
		return
	}
	s.out.linef("removed temp dir %s", s.dir)
}

// spawn starts svc, its output prefixed with its name, waits until it is ready and
// reports on s.deaths when it ends. verb says which start this is.
func (s *stack) spawn(ctx context.Context, svc *service, verb string) int {
	w := &prefixed{out: s.out, prefix: svc.name}
	// Own process group: a Ctrl-C in the terminal reaches cqrs-local only, which
	// stops the processes in order.
	p, err := launch.Start(launch.Spec{Name: svc.name, Path: svc.bin, Env: svc.env, Inherit: true, Port: svc.port, Output: w, OwnGroup: true})
	if err != nil {
		s.out.linef("%v", err)
		return 1
	}
	svc.proc = p
	s.out.linef("%s %s pid=%d addr=%s", verb, svc.name, p.PID(), svc.addr)
	go func() {
		<-p.Done()
		w.flush()
		select {
		case s.deaths <- death{name: svc.name, pid: p.PID(), how: exitHow(p.Err()), svc: svc}:
		case <-s.stopping:
		}
	}()
	if err := p.WaitReady(ctx, readyTimeout); err != nil {
		select {
		case <-p.Done():
			if verb == "restarted" {
				// Its death is on s.deaths: counted, and restarted within the limit.
				return 0
			}
		default:
		}
		if ctx.Err() != nil {
			return 0
		}
		s.out.linef("%v", err)
		return 1
	}
	return 0
}

// exitHow says how a process ended: by which signal, or with which exit status.
func exitHow(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
