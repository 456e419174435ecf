package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestHashTag(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"cqrs:{p7}:docs", "p7"},
		{"cqrs:{p7}:ix:w:{x}", "p7"}, // the first {...} decides
		{"cqrs:{}:docs", "cqrs:{}:docs"},
		{"cqrs:{p7", "cqrs:{p7"},
		{"plain", "plain"},
	} {
		if got := hashTag(tc.key); got != tc.want {
			t.Errorf("hashTag(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestPartitionOf(t *testing.T) {
	for _, tc := range []struct {
		tag  string
		want int
		ok   bool
	}{
		{"p0", 0, true}, {"p15", 15, true}, {"p16", 0, false}, {"p07", 0, false}, {"p-1", 0, false}, {"q1", 0, false}, {"p", 0, false},
	} {
		got, ok := partitionOf(tc.tag, 16)
		if got != tc.want || ok != tc.ok {
			t.Errorf("partitionOf(%q, 16) = %d, %v, want %d, %v", tc.tag, got, ok, tc.want, tc.ok)
		}
	}
}

func TestScriptKeys(t *testing.T) {
	create := []string{"evalsha", "abc", "12"}
	for i := range 12 {
		create = append(create, fmt.Sprintf("cqrs:{p3}:k%d", i))
	}
	// SLOWLOG keeps 32 arguments at most, the last saying how many more there were.
	long := []string{"EVALSHA", "abc", "40"}
	for i := range 28 {
		long = append(long, fmt.Sprintf("cqrs:{p3}:k%d", i))
	}
	long = append(long, "... (20 more arguments)")
	for _, tc := range []struct {
		name string
		args []string
		want int // keys; -1: not a script call counted
	}{
		{"create script", create, 12},
		{"clipped by SLOWLOG", long, 28},
		{"page script", []string{"evalsha_ro", "abc", "3", "cqrs:{p1}:seq", "cqrs:{p1}:epoch", "cqrs:{p1}:docs", "0", "25"}, 3},
		{"a script of few keys (the relay's)", []string{"evalsha", "abc", "5", "a", "b", "c", "d", "e"}, -1},
		{"another command", []string{"get", "cqrs:{p1}:seq", "x", "y"}, -1},
		{"no keys", []string{"evalsha_ro", "abc", "0", "x"}, -1},
		{"bad key count", []string{"evalsha_ro", "abc", "x", "y"}, -1},
	} {
		keys, ok := scriptKeys(tc.args)
		if tc.want < 0 {
			if ok {
				t.Errorf("%s: counted, keys %q; want it left out", tc.name, keys)
			}
			continue
		}
		if !ok || len(keys) != tc.want {
			t.Errorf("%s: %d keys (%v), want %d", tc.name, len(keys), ok, tc.want)
		}
	}
}

func TestCensus(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	page := func(p int, d time.Duration) redis.SlowLog {
		k := fmt.Sprintf("cqrs:{p%d}:", p)
		return redis.SlowLog{Duration: d, Args: []string{"evalsha_ro", "abc", "3", k + "seq", k + "epoch", k + "docs", "0", "25"}}
	}
	var c census
	c.add([]redis.SlowLog{page(0, us(10)), page(1, us(20)), page(1, us(30))}, 4)
	c.add([]redis.SlowLog{
		{Duration: us(40), Args: []string{"evalsha_ro", "abc", "2", "cqrs:{p2}:seq", "cqrs:{p3}:docs"}}, // two tags
		{Duration: us(50), Args: []string{"evalsha_ro", "abc", "1", "cqrs:seq"}},                        // no partition
		{Duration: us(60), Args: []string{"get", "cqrs:{p0}:seq", "x", "y"}},                            // not a script
	}, 4)
	if c.calls != 5 || c.total != us(150) || c.mixed != 1 || c.untagged != 1 {
		t.Errorf("census = %d calls, %s, %d mixed, %d untagged; want 5, 150µs, 1, 1", c.calls, c.total, c.mixed, c.untagged)
	}
	if want := map[int]int{0: 1, 1: 2, 2: 1}; !equalMaps(c.byPart, want) {
		t.Errorf("by partition = %v, want %v", c.byPart, want)
	}
}

func equalMaps(a, b map[int]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestClusterCost: per-request figures divide the rounds' CPU and commandstats by
// the rounds' requests, and the census by the census' own requests; every
// partition's calls are counted across nodes.
func TestClusterCost(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	ph := clusterPhase{
		runs:    []stats{{requests: 1000, rps: 500, p99: ms(9)}, {requests: 1000, rps: 600, p99: ms(7)}, {requests: 2000, rps: 700, p99: ms(5)}},
		fnCPU:   ms(400),
		loadCPU: ms(100),
		nodes: []nodePhase{
			{cpu: ms(200), cmds: map[string]callStat{"evalsha_ro": {calls: 4000, usec: 120000}},
				census: census{calls: 200, total: ms(6), byPart: map[int]int{0: 100, 1: 100}}},
			{cpu: ms(20), cmds: map[string]callStat{}, census: census{calls: 99, total: ms(3), byPart: map[int]int{2: 99}, mixed: 1}},
		},
		censusRequests: 100,
	}
	got := newClusterCost(ph, []string{"replica of master 1", "replica of master 2"}, 3, "evalsha_ro")
	want := clusterCost{
		requests: 4000, rps: 600, p99: ms(7), fnCPU: 100, loadCPU: 25,
		nodes: []nodeCost{
			{name: "replica of master 1", cpu: 50, calls: 1, redis: 30, partitions: 2},
			{name: "replica of master 2", cpu: 5, partitions: 1},
		},
		scriptCalls: 2.99, scriptTime: 90, perPartition: [2]float64{0.99, 1}, shardsPerPartition: 1, mixed: 1,
	}
	got.p50 = 0
	if !near(got.scriptCalls, want.scriptCalls) {
		t.Errorf("scriptCalls = %v, want %v", got.scriptCalls, want.scriptCalls)
	}
	got.scriptCalls = want.scriptCalls
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("newClusterCost =\n%+v, want\n%+v", got, want)
	}
	// A partition that no call reached counts as 0 calls per request.
	if got := newClusterCost(ph, []string{"a", "b"}, 4, "evalsha_ro"); got.perPartition[0] != 0 {
		t.Errorf("with a partition no call reached, least = %v, want 0", got.perPartition[0])
	}
	if got := newClusterCost(clusterPhase{}, nil, 3, "evalsha"); got.requests != 0 || got.fnCPU != 0 {
		t.Errorf("newClusterCost of nothing = %+v, want zeros", got)
	}
}

func TestAlternate(t *testing.T) {
	if got := alternate(3, 0); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("alternate(3, 0) = %v, want 0 1 2", got)
	}
	if got := alternate(3, 1); !slices.Equal(got, []int{2, 1, 0}) {
		t.Errorf("alternate(3, 1) = %v, want 2 1 0", got)
	}
}
