package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
)

// The functions on a Redis Cluster: what a create and a page cost on 1 master and on
// 3 masters, each with one replica, on this machine's loopback, per request and on
// each node. Two cores cannot show that more masters give more throughput; what
// they can show is where each request's work goes, from which docs/performance.md
// models the throughput of N masters on cores of their own.

// clusterMasters are the sizes of the clusters measured.
var clusterMasters = []int{1, 3}

// clusterPartitions is what REDIS_PARTITIONS would be left at: the store's
// partitions, each under one hash tag, which every page reads.
const clusterPartitions = redisenv.DefaultPartitions

// clusterSide is one cluster and the functions that use it.
type clusterSide struct {
	masters     int
	cluster     *redisproc.Cluster
	write, read *launch.Proc
	nodes       []clusterNode
}

// clusterNode is one node as the bench watches it: its own client for INFO and
// SLOWLOG (no key commands), and which shard it belongs to.
type clusterNode struct {
	name    string
	server  *redisproc.Server
	client  *redis.Client
	shard   int
	replica bool
}

// clusterResult is what one cluster's rounds measured.
type clusterResult struct {
	masters    int
	partitions int
	nodes      []string // names, in the order of each phase's nodes
	create     clusterPhase
	page       clusterPhase
	pageBytes  int
}

// clusterPhase is one workload's rounds on one cluster: the load phases, the CPU
// of the function, the load generator and every node, each node's commandstats;
// and the census of script calls from the nodes' SLOWLOGs during a phase apart, of
// censusRequests requests.
type clusterPhase struct {
	runs           []stats
	fnCPU          time.Duration
	loadCPU        time.Duration
	nodes          []nodePhase
	censusRequests int
}

type nodePhase struct {
	cpu    time.Duration
	cmds   map[string]callStat
	census census
}

func (b *bench) clusters(ctx context.Context) error {
	sides := make([]*clusterSide, 0, len(clusterMasters))
	defer func() {
		for _, s := range sides {
			s.close(b)
		}
	}()
	for _, m := range clusterMasters {
		s, err := b.startClusterSide(ctx, m)
		if s != nil {
			sides = append(sides, s)
		}
		if err != nil {
			return err
		}
	}
	res := make([]clusterResult, len(sides))
	for i, s := range sides {
		res[i] = clusterResult{masters: s.masters, partitions: clusterPartitions}
		for _, n := range s.nodes {
			res[i].nodes = append(res[i].nodes, n.name)
		}
	}
	c := newCorpus(5, 6)
	bodies := make([][]byte, 512)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]string{"type": recordTypes[i%3], "text": c.text()})
	}
	// Rounds alternate between the clusters, as between a function and its baseline.
	progress("POST /records on Redis Clusters of %v masters (one replica each, %d partitions): %d rounds of %s each",
		clusterMasters, clusterPartitions, b.opts.rounds, b.opts.duration)
	for round := range b.opts.rounds {
		for _, i := range alternate(len(sides), round) {
			s := sides[i]
			err := b.clusterPhase(ctx, s, &res[i].create, s.write, b.poster(s.write.URL()+"/records", bodies))
			if err != nil {
				return fmt.Errorf("creates on %d masters: %w", s.masters, err)
			}
		}
	}
	for i, s := range sides {
		if err := b.clusterCensus(ctx, s, &res[i].create, masterNodes, b.poster(s.write.URL()+"/records", bodies)); err != nil {
			return fmt.Errorf("creates on %d masters: %w", s.masters, err)
		}
	}
	for i, s := range sides {
		if err := s.waitReplicas(ctx); err != nil {
			return err
		}
		page, err := checkPage(ctx, s.read.URL()+"/records?limit=25")
		if err != nil {
			return fmt.Errorf("%d masters: %w", s.masters, err)
		}
		res[i].pageBytes = len(page)
	}
	progress("GET /records?limit=25 on the same clusters: %d rounds of %s each", b.opts.rounds, b.opts.duration)
	for round := range b.opts.rounds {
		for _, i := range alternate(len(sides), round) {
			s := sides[i]
			err := b.clusterPhase(ctx, s, &res[i].page, s.read, b.getter(s.read.URL()+"/records?limit=25"))
			if err != nil {
				return fmt.Errorf("pages on %d masters: %w", s.masters, err)
			}
		}
	}
	for i, s := range sides {
		if err := b.clusterCensus(ctx, s, &res[i].page, replicaNodes, b.getter(s.read.URL()+"/records?limit=25")); err != nil {
			return fmt.Errorf("pages on %d masters: %w", s.masters, err)
		}
	}
	for i := range res {
		cr, pr := median(res[i].create.runs), median(res[i].page.runs)
		progress("  %d masters: %.0f creates/s (p99 %s), %.0f pages/s (p99 %s)", res[i].masters, cr.rps, ms(cr.p99), pr.rps, ms(pr.p99))
	}
	b.res.clusters = res
	return nil
}

// alternate is the order in which n sides run in round: forwards in even rounds,
// backwards in odd ones.
func alternate(n, round int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
		if round%2 == 1 {
			out[i] = n - 1 - i
		}
	}
	return out
}

func masterNodes(n clusterNode) bool  { return !n.replica }
func replicaNodes(n clusterNode) bool { return n.replica }

// clusterPhase runs one load phase on s and adds what it cost to into.
func (b *bench) clusterPhase(ctx context.Context, s *clusterSide, into *clusterPhase, fn *launch.Proc, do request) error {
	into.init(len(s.nodes))
	cmdsBefore := make([]map[string]callStat, len(s.nodes))
	cpuBefore := make([]time.Duration, len(s.nodes))
	for i, n := range s.nodes {
		cmdsBefore[i], cpuBefore[i] = commandStats(ctx, n.client), procCPU(n.server.PID())
	}
	fnBefore, loadBefore := procCPU(fn.PID()), procCPU(os.Getpid())
	st, err := b.load(ctx, b.opts.conns, b.opts.duration, do)
	if err != nil {
		return err
	}
	into.runs = append(into.runs, st)
	into.fnCPU += procCPU(fn.PID()) - fnBefore
	into.loadCPU += procCPU(os.Getpid()) - loadBefore
	for i, n := range s.nodes {
		np := &into.nodes[i]
		np.cpu += procCPU(n.server.PID()) - cpuBefore[i]
		addCalls(np.cmds, diff(commandStats(ctx, n.client), cmdsBefore[i]))
	}
	return nil
}

// clusterCensus runs one more, short load phase on s with the SLOWLOG of the nodes
// that watch selects (the masters for creates, the replicas for pages) keeping every
// command, and counts their script calls into into. Requests still running when the
// phase ends are let finish, so that every script call counted belongs to a request
// counted.
func (b *bench) clusterCensus(ctx context.Context, s *clusterSide, into *clusterPhase, watch func(clusterNode) bool, do request) error {
	into.init(len(s.nodes))
	var restores []func()
	defer func() {
		for _, r := range restores {
			r()
		}
	}()
	for _, n := range s.nodes {
		if watch(n) {
			restore, err := slowlogAll(ctx, n.client)
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			restores = append(restores, restore)
		}
	}
	finish := func(_ context.Context, c *http.Client, w, i int) error { return do(ctx, c, w, i) }
	st, err := b.load(ctx, b.opts.conns, censusTime, finish)
	if err != nil {
		return err
	}
	into.censusRequests += st.requests
	for i, n := range s.nodes {
		if watch(n) {
			log, err := takeSlowlog(ctx, n.client)
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			into.nodes[i].census.add(log, clusterPartitions)
		}
	}
	return nil
}

// censusTime is how long the census phase runs: every script call it makes stays
// in a SLOWLOG until it is read.
const censusTime = time.Second

func (ph *clusterPhase) init(nodes int) {
	if ph.nodes != nil {
		return
	}
	ph.nodes = make([]nodePhase, nodes)
	for i := range ph.nodes {
		ph.nodes[i].cmds = map[string]callStat{}
	}
}

// startClusterSide starts a cluster of masters masters with a replica each, and
// cqrs-write and cqrs-read on it. On an error it returns what it started, for close.
func (b *bench) startClusterSide(ctx context.Context, masters int) (*clusterSide, error) {
	progress("starting a Redis Cluster of %d masters and %d replicas", masters, masters)
	dir := filepath.Join(b.dir, fmt.Sprintf("cluster%d", masters))
	c, err := redisproc.StartCluster(dir, masters, 1)
	if err != nil {
		return nil, fmt.Errorf("start a Redis Cluster of %d masters: %w", masters, err)
	}
	s := &clusterSide{masters: masters, cluster: c}
	for i, m := range c.Masters {
		s.nodes = append(s.nodes, clusterNode{name: fmt.Sprintf("master %d", i+1), server: m, shard: i})
	}
	for i, rs := range c.Replicas {
		for _, r := range rs {
			s.nodes = append(s.nodes, clusterNode{name: fmt.Sprintf("replica of master %d", i+1), server: r, shard: i, replica: true})
		}
	}
	for i := range s.nodes {
		s.nodes[i].client = redis.NewClient(&redis.Options{Addr: s.nodes[i].server.Addr(), PoolSize: 4, ReadTimeout: 10 * time.Second})
	}
	env := []string{"REDIS_CLUSTER_ADDRS=" + strings.Join(c.Addrs(), ","), "REDIS_PARTITIONS=" + strconv.Itoa(clusterPartitions)}
	name := fmt.Sprintf("cluster%d", masters)
	if s.write, err = b.startProc("cqrs-write-"+name, filepath.Join(b.opts.bin, "cqrs-write"), env...); err != nil {
		return s, err
	}
	if s.read, err = b.startProc("cqrs-read-"+name, filepath.Join(b.opts.bin, "cqrs-read"), env...); err != nil {
		return s, err
	}
	for _, p := range []*launch.Proc{s.write, s.read} {
		if err := p.WaitReady(ctx, 20*time.Second); err != nil {
			return s, fmt.Errorf("%w (logs in %s)", err, b.dir)
		}
	}
	return s, nil
}

// waitReplicas waits until every replica has applied what its master sent.
func (s *clusterSide) waitReplicas(ctx context.Context) error {
	for i, m := range s.cluster.Masters {
		for _, r := range s.cluster.Replicas[i] {
			err := poll(ctx, 60*time.Second, "cluster replicas to catch up", func() bool {
				mo, err1 := m.Info("replication", "master_repl_offset")
				ro, err2 := r.Info("replication", "slave_repl_offset")
				return err1 == nil && err2 == nil && mo == ro
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *clusterSide) close(b *bench) {
	for _, p := range []*launch.Proc{s.write, s.read} {
		if p != nil {
			b.stopProc(p)
		}
	}
	for _, n := range s.nodes {
		if n.client != nil {
			n.client.Close()
		}
	}
	s.cluster.Kill()
}
