package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// census counts the script calls in one node's SLOWLOG: by partition (the hash tag
// of their first key), those whose keys span more than one hash tag (which a Redis
// Cluster would refuse, and which no create or page script may send), and their time.
type census struct {
	calls    int
	total    time.Duration
	byPart   map[int]int
	mixed    int // keys under more than one hash tag
	untagged int // a first key with no partition's hash tag
}

// add counts the calls of log that are EVALSHA with at least createKeys keys (the
// create script) or EVALSHA_RO (the page script), for a store of partitions.
func (c *census) add(log []redis.SlowLog, partitions int) {
	if c.byPart == nil {
		c.byPart = map[int]int{}
	}
	for _, e := range log {
		keys, ok := scriptKeys(e.Args)
		if !ok {
			continue
		}
		c.calls++
		c.total += e.Duration
		tag := hashTag(keys[0])
		p, ok := partitionOf(tag, partitions)
		if !ok {
			c.untagged++
			continue
		}
		for _, k := range keys[1:] {
			if hashTag(k) != tag {
				c.mixed++
				break
			}
		}
		c.byPart[p]++
	}
}

// scriptKeys are the keys of a create or page script call as SLOWLOG shows them
// (it keeps at most 32 arguments, the last then saying how many more there were).
func scriptKeys(args []string) ([]string, bool) {
	if len(args) < 4 {
		return nil, false
	}
	n, err := strconv.Atoi(args[2])
	if err != nil || n < 1 {
		return nil, false
	}
	switch strings.ToLower(args[0]) {
	case "evalsha":
		if n < createKeys {
			return nil, false
		}
	case "evalsha_ro":
	default:
		return nil, false
	}
	keys := args[3:min(len(args), 3+n)]
	if last := keys[len(keys)-1]; len(keys) > 1 && strings.HasPrefix(last, "... (") {
		keys = keys[:len(keys)-1]
	}
	return keys, true
}

// hashTag is the part of key that Redis Cluster hashes: what lies between the first
// '{' and the next '}', when that is not empty; otherwise the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// partitionOf is the partition whose hash tag is tag ("p7": 7), if it is one of
// partitions.
func partitionOf(tag string, partitions int) (int, bool) {
	digits, ok := strings.CutPrefix(tag, "p")
	if !ok {
		return 0, false
	}
	p, err := strconv.Atoi(digits)
	if err != nil || p < 0 || p >= partitions || strconv.Itoa(p) != digits {
		return 0, false
	}
	return p, true
}

// clusterCost is one workload on one cluster, per request.
type clusterCost struct {
	requests int
	rps      float64
	p50, p99 time.Duration
	fnCPU    float64 // the function's CPU, µs
	loadCPU  float64 // the load generator's
	nodes    []nodeCost
	// scriptCalls is the script calls per request on the watched nodes during the
	// census (SLOWLOG), scriptTime their time per request.
	scriptCalls float64
	scriptTime  float64
	// perPartition is the least and most script calls per request a partition got;
	// shardsPerPartition the most nodes one partition's calls ran on.
	perPartition       [2]float64
	shardsPerPartition int
	mixed, untagged    int
}

// nodeCost is one node's share of a request.
type nodeCost struct {
	name       string
	cpu        float64 // µs, /proc
	calls      float64 // script calls (commandstats)
	redis      float64 // their time, µs (commandstats)
	partitions int     // partitions whose calls it ran (SLOWLOG)
}

// newClusterCost divides ph by its requests; cmd is the script command whose
// commandstats line counts (evalsha for creates, evalsha_ro for pages).
func newClusterCost(ph clusterPhase, names []string, partitions int, cmd string) clusterCost {
	n := requests(ph.runs)
	m := median(ph.runs)
	c := clusterCost{requests: n, rps: m.rps, p50: m.p50, p99: m.p99}
	if n == 0 {
		return c
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
	c.fnCPU, c.loadCPU = per(ph.fnCPU), per(ph.loadCPU)
	byPart := make([]int, partitions)
	shards := make([]int, partitions)
	var calls int
	var total time.Duration
	for i, np := range ph.nodes {
		nc := nodeCost{name: names[i], cpu: per(np.cpu), calls: callsPerRequest(np.cmds, cmd, n), redis: usecPerRequest(np.cmds, cmd, n)}
		for p, k := range np.census.byPart {
			byPart[p] += k
			shards[p]++
		}
		nc.partitions = len(np.census.byPart)
		calls += np.census.calls
		total += np.census.total
		c.mixed += np.census.mixed
		c.untagged += np.census.untagged
		c.nodes = append(c.nodes, nc)
	}
	if cn := ph.censusRequests; cn > 0 {
		c.scriptCalls = float64(calls) / float64(cn)
		c.scriptTime = float64(total.Nanoseconds()) / 1e3 / float64(cn)
	}
	c.perPartition = [2]float64{-1, 0}
	for p := range partitions {
		v := 0.0
		if ph.censusRequests > 0 {
			v = float64(byPart[p]) / float64(ph.censusRequests)
		}
		if c.perPartition[0] < 0 || v < c.perPartition[0] {
			c.perPartition[0] = v
		}
		c.perPartition[1] = max(c.perPartition[1], v)
		c.shardsPerPartition = max(c.shardsPerPartition, shards[p])
	}
	return c
}
