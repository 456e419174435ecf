package main

import (
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPerRequest(t *testing.T) {
	c := cpuTimes{procWrite: 90 * time.Millisecond}
	if got := c.perRequest(procWrite, 1000); !near(got, 90) {
		t.Errorf("perRequest(90 ms, 1000) = %v µs, want 90", got)
	}
	if got := c.perRequest(procWrite, 0); got != 0 {
		t.Errorf("perRequest over no requests = %v, want 0", got)
	}
	cmds := map[string]callStat{"evalsha": {calls: 2000, usec: 88000}}
	if got := usecPerRequest(cmds, "evalsha", 1000); !near(got, 88) {
		t.Errorf("usecPerRequest = %v, want 88", got)
	}
	if got := callsPerRequest(cmds, "evalsha", 1000); !near(got, 2) {
		t.Errorf("callsPerRequest = %v, want 2", got)
	}
	if got := perCall(cmds["evalsha"]); !near(got, 44) {
		t.Errorf("perCall = %v, want 44", got)
	}
	if got := perCall(callStat{}); got != 0 {
		t.Errorf("perCall without calls = %v, want 0", got)
	}
	into := map[string]callStat{"get": {calls: 1, usec: 2}}
	addCalls(into, map[string]callStat{"get": {calls: 3, usec: 4}, "set": {calls: 5, usec: 6}})
	if into["get"] != (callStat{calls: 4, usec: 6}) || into["set"] != (callStat{calls: 5, usec: 6}) {
		t.Errorf("addCalls = %v, want get 4/6 and set 5/6", into)
	}
}

// TestCost: the key table divides each side's own CPU and Redis time by that side's
// requests, and takes rps and p99 from the median rounds.
func TestCost(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	p := pair{
		fn:       []stats{{requests: 1000, rps: 900, p99: ms(9)}, {requests: 1000, rps: 1000, p99: ms(8)}, {requests: 1000, rps: 1100, p99: ms(7)}},
		base:     []stats{{requests: 2000, rps: 2000, p99: ms(6)}},
		fnCPU:    cpuTimes{procRead: ms(300), procBase: ms(999)},
		baseCPU:  cpuTimes{procBase: ms(100), procRead: ms(999)},
		fnCmds:   map[string]callStat{"evalsha_ro": {calls: 3000, usec: 120000}},
		baseCmds: map[string]callStat{"evalsha_ro": {calls: 2000, usec: 76000}},
	}
	got := newCost("page", p, procRead, "evalsha_ro")
	want := cost{name: "page", cpu: [2]float64{100, 50}, rps: [2]float64{1000, 2000}, p99: [2]time.Duration{ms(8), ms(6)}, redis: [2]float64{40, 38}}
	if got != want {
		t.Errorf("newCost = %+v, want %+v", got, want)
	}
}

// TestOutboxCost: the outbox's share is what the rounds with it on cost beyond the
// rounds with it off, per create; the scripts' times come from the SLOWLOG, told
// apart by their number of keys, and the create script's extra is its XADD and one
// XLEN.
func TestOutboxCost(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	p := pair{
		base:    []stats{{requests: 1000, rps: 1000, p99: ms(5)}},
		fn:      []stats{{requests: 500, rps: 500, p99: ms(10)}},
		baseCPU: cpuTimes{procWrite: ms(80), procMaster: ms(40)},
		fnCPU:   cpuTimes{procWriteOutbox: ms(60), procSink: ms(10), procMaster: ms(30), procWrite: ms(7)},
		// Off: one create script per create, 40 µs each.
		baseCmds: map[string]callStat{"evalsha": {calls: 1000, usec: 40000}},
		// On: 500 creates and 50 relay scripts; 550 XLEN (one per create, one per
		// take) of 2 µs each, 500 XADD of 3 µs each.
		fnCmds: map[string]callStat{"evalsha": {calls: 550, usec: 30000}, "xlen": {calls: 550, usec: 1100}, "xadd": {calls: 500, usec: 1500}},
	}
	entry := func(d time.Duration, keys string) redis.SlowLog {
		return redis.SlowLog{Duration: d, Args: []string{"evalsha", "0123abcd", keys}}
	}
	var sums [2]scriptSums
	sums[0].add([]redis.SlowLog{entry(us(40), "29"), entry(us(44), "12"), entry(us(9), "5"), {Args: []string{"info"}}})
	var on []redis.SlowLog
	for range 500 {
		on = append(on, entry(us(46), "20"))
	}
	for range 25 {
		on = append(on, entry(us(100), "5"), entry(us(60), "4"))
	}
	sums[1].add(append(on, entry(us(5000), "x"), entry(us(5000), "2")))
	got := newOutboxCost(p, sums)
	want := outboxCost{
		creates:      [2]int{1000, 500},
		writeCPU:     [2]float64{80, 120},
		relayCPU:     40,
		sinkCPU:      20,
		master:       [2]float64{40, 60},
		scripts:      [2]float64{40, 60},
		createScript: [2]float64{42, 46},
		entry:        5,   // XADD 3 µs a create + one XLEN of 2 µs
		relayCalls:   0.1, // 50 calls for 500 creates
		relayRedis:   8,   // 25 × (100 + 60) µs over 500 creates
		rps:          [2]float64{1000, 500},
		p99:          [2]time.Duration{ms(5), ms(10)},
	}
	if got != want {
		t.Errorf("newOutboxCost =\n%+v, want\n%+v", got, want)
	}
	if sums[0].take != (scriptSum{calls: 1, total: us(9)}) {
		t.Errorf("off side's take scripts = %+v, want the one of 5 keys", sums[0].take)
	}
	if got := newOutboxCost(pair{}, [2]scriptSums{}); got.creates[1] != 0 || got.relayRedis != 0 {
		t.Errorf("newOutboxCost of nothing = %+v, want zeros", got)
	}
}

// TestPageScriptTimes: SLOWLOG entries of page scripts are split by their number of
// keys (a plain page has one index, a search several), other commands ignored.
func TestPageScriptTimes(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	entry := func(d time.Duration, args ...string) redis.SlowLog { return redis.SlowLog{Duration: d, Args: args} }
	var log []redis.SlowLog
	for i := 1; i <= 50; i++ {
		log = append(log, entry(us(i*10), "EVALSHA_RO", "abc", "20", "k1"))
	}
	log = append(log,
		entry(us(30), "evalsha_ro", "abc", "4", "seq"),
		entry(us(50), "EVALSHA_RO", "abc", "4", "seq"),
		entry(us(5000), "EXEC"),
		entry(us(7), "EVALSHA_RO"),
	)
	search, plain := pageScriptTimes(log)
	if want := (scriptTimes{calls: 50, mean: us(255), p99: us(500), max: us(500)}); search != want {
		t.Errorf("search = %+v, want %+v", search, want)
	}
	if want := (scriptTimes{calls: 2, mean: us(40), p99: us(50), max: us(50)}); plain != want {
		t.Errorf("plain = %+v, want %+v", plain, want)
	}
	if s, p := pageScriptTimes(nil); s != (scriptTimes{}) || p != (scriptTimes{}) {
		t.Errorf("pageScriptTimes(nothing) = %+v, %+v, want zeros", s, p)
	}
}
