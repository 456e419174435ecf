package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// results is everything a run measured, for the report.
type results struct {
	machine               string
	loadBefore, loadAfter string
	rbSet, rbGet          stats
	liveness              stats
	usedEmpty             int64
	create                pair
	outbox                pair            // creates with the outbox off (base) and on (fn)
	outboxScripts         [2]scriptSums   // the master's scripts, outbox off and on
	clusters              []clusterResult // the functions on Redis Clusters of clusterMasters
	sizes                 []sizeResult
	adv                   advResult
	rssWrite, rssRead     memory
	rssBase               memory
	coldRead, coldWrite   []time.Duration
}

// pair is one workload's rounds, function and baseline, with the CPU every process
// used during each side's phases and Redis' commandstats during each side's.
type pair struct {
	fn, base         []stats
	fnCPU, baseCPU   cpuTimes
	fnCmds, baseCmds map[string]callStat
}

// requests is how many requests the rounds of one side completed.
func requests(ss []stats) int {
	n := 0
	for _, s := range ss {
		n += s.requests
	}
	return n
}

// sizeResult is what was measured at one store size.
type sizeResult struct {
	records        int
	bytesPerRecord float64
	kinds          []kindStat
	read           pair
	pageBytes      int
	// stored is GET /records/stored on the baseline: one GET of a page kept whole.
	stored     stats
	storedCPU  cpuTimes
	storedCmds map[string]callStat
}

// median returns the round with the median rps (the lower one of two).
func median(ss []stats) stats {
	if len(ss) == 0 {
		return stats{}
	}
	s := slices.Clone(ss)
	slices.SortFunc(s, func(a, b stats) int { return cmp.Compare(a.rps, b.rps) })
	return s[(len(s)-1)/2]
}

func minMax(ss []stats) (lo, hi float64) {
	for i, s := range ss {
		if i == 0 || s.rps < lo {
			lo = s.rps
		}
		if s.rps > hi {
			hi = s.rps
		}
	}
	return lo, hi
}

// callStat is one command's line of INFO commandstats.
type callStat struct {
	calls int64
	usec  int64
}

// perCallSince is the server-side time per call since before, in microseconds.
func (c callStat) perCallSince(before callStat) float64 {
	if c.calls <= before.calls {
		return 0
	}
	return float64(c.usec-before.usec) / float64(c.calls-before.calls)
}

// commandStats parses INFO commandstats: calls and usec per command. Commands that
// scripts call are counted there too, each with its own time.
func commandStats(ctx context.Context, rdb *redis.Client) map[string]callStat {
	out := map[string]callStat{}
	v, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return out
	}
	for _, l := range strings.Split(v, "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(l, "cmdstat_") {
			continue
		}
		c, err := redisproc.ParseCommandStat(rest)
		if err != nil {
			continue
		}
		out[name] = callStat{calls: c.Calls, usec: c.Usec}
	}
	return out
}

// addCalls adds d to the totals in into.
func addCalls(into, d map[string]callStat) {
	for k, v := range d {
		c := into[k]
		into[k] = callStat{calls: c.calls + v.calls, usec: c.usec + v.usec}
	}
}

func diff(after, before map[string]callStat) map[string]callStat {
	out := map[string]callStat{}
	for k, a := range after {
		b := before[k]
		if a.calls > b.calls {
			out[k] = callStat{calls: a.calls - b.calls, usec: a.usec - b.usec}
		}
	}
	return out
}

// cpuTimes is the CPU time each process of the run has used.
type cpuTimes map[string]time.Duration

// Process names in cpuTimes.
const (
	procWrite       = "cqrs-write"
	procWriteOutbox = "cqrs-write, outbox on"
	procRead        = "cqrs-read"
	procBase        = "baseline"
	procSink        = "sink"
	procMaster      = "redis master"
	procReplica     = "redis replica"
	procLoad        = "load generator (cqrs-bench)"
)

func (b *bench) cpu() cpuTimes {
	pids := map[string]int{procWrite: b.write.PID(), procRead: b.read.PID(), procBase: b.base.PID(),
		procMaster: b.master.PID(), procReplica: b.replica.PID(), procLoad: os.Getpid()}
	if b.writeOutbox != nil {
		pids[procWriteOutbox] = b.writeOutbox.PID()
	}
	if b.sink != nil {
		pids[procSink] = b.sink.PID()
	}
	out := cpuTimes{}
	for name, pid := range pids {
		out[name] = procCPU(pid)
	}
	return out
}

// perRequest is process proc's CPU per request over n requests, in microseconds
// (0 when there were none).
func (c cpuTimes) perRequest(proc string, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(c[proc].Nanoseconds()) / 1e3 / float64(n)
}

// usecPerRequest is the Redis time of command name per request over n requests
// (0 when there were none). A script's line includes the commands it called.
func usecPerRequest(cmds map[string]callStat, name string, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(cmds[name].usec) / float64(n)
}

// callsPerRequest is how often command name ran per request over n requests.
func callsPerRequest(cmds map[string]callStat, name string, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(cmds[name].calls) / float64(n)
}

func (c cpuTimes) add(d cpuTimes) {
	for k, v := range d {
		c[k] += v
	}
}

func (c cpuTimes) since(before cpuTimes) cpuTimes {
	out := cpuTimes{}
	for k, v := range c {
		out[k] = v - before[k]
	}
	return out
}

// procCPU is user + system time of pid from /proc (in clock ticks of 10 ms).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}
