package main

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	l := make([]time.Duration, 100)
	for i := range l {
		l[i] = time.Duration(i+1) * time.Millisecond
	}
	rand.Shuffle(len(l), func(i, j int) { l[i], l[j] = l[j], l[i] })
	got := summarize(l, 2*time.Second)
	want := stats{requests: 100, rps: 50, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond}
	if got != want {
		t.Errorf("summarize(1..100 ms in 2 s) = %+v, want %+v", got, want)
	}
	for _, tt := range []struct {
		n        int
		p50, p99 time.Duration
	}{{1, 1, 1}, {2, 1, 2}, {3, 2, 3}, {200, 100, 198}} {
		l := make([]time.Duration, tt.n)
		for i := range l {
			l[i] = time.Duration(tt.n - i)
		}
		if s := summarize(l, time.Second); s.p50 != tt.p50 || s.p99 != tt.p99 {
			t.Errorf("summarize(1..%d): p50 %d p99 %d, want %d %d", tt.n, s.p50, s.p99, tt.p50, tt.p99)
		}
	}
	if got := summarize(nil, time.Second); got != (stats{}) {
		t.Errorf("summarize(nothing) = %+v, want zero", got)
	}
}

func TestMedianMinMaxRequests(t *testing.T) {
	rounds := []stats{{rps: 10.9, requests: 3}, {rps: 10.2, requests: 4}, {rps: 10.5, requests: 5}, {rps: 12, requests: 6}}
	if got := median(rounds); got.rps != 10.5 {
		t.Errorf("median rps = %v, want 10.5 (the lower of the middle two)", got.rps)
	}
	if got := median(rounds[:3]); got.rps != 10.5 {
		t.Errorf("median of three = %v, want 10.5", got.rps)
	}
	if rounds[0].rps != 10.9 {
		t.Errorf("median reordered its input")
	}
	if lo, hi := minMax(rounds); lo != 10.2 || hi != 12 {
		t.Errorf("minMax = %v..%v, want 10.2..12", lo, hi)
	}
	if got := requests(rounds); got != 18 {
		t.Errorf("requests = %d, want 18", got)
	}
	if got := median(nil); got != (stats{}) {
		t.Errorf("median(nothing) = %+v, want zero", got)
	}
}

func TestCommandStatDiff(t *testing.T) {
	before := map[string]callStat{"evalsha": {calls: 10, usec: 100}, "get": {calls: 5, usec: 5}}
	after := map[string]callStat{"evalsha": {calls: 110, usec: 4500}, "get": {calls: 5, usec: 5}, "set": {calls: 2, usec: 6}}
	got := diff(after, before)
	if len(got) != 2 || got["evalsha"] != (callStat{calls: 100, usec: 4400}) || got["set"] != (callStat{calls: 2, usec: 6}) {
		t.Errorf("diff = %v, want evalsha 100 calls 4400 µs and set 2 calls 6 µs, nothing for get", got)
	}
	if got := after["evalsha"].perCallSince(before["evalsha"]); got != 44 {
		t.Errorf("perCallSince = %v µs, want 44", got)
	}
	if got := after["get"].perCallSince(before["get"]); got != 0 {
		t.Errorf("perCallSince without calls = %v, want 0", got)
	}
}

func TestCPUTimes(t *testing.T) {
	start := cpuTimes{"cqrs-write": time.Second, "baseline": 2 * time.Second}
	now := cpuTimes{"cqrs-write": 3 * time.Second, "baseline": 2500 * time.Millisecond}
	phase := now.since(start)
	if phase["cqrs-write"] != 2*time.Second || phase["baseline"] != 500*time.Millisecond {
		t.Errorf("since = %v, want 2s and 500ms", phase)
	}
	total := cpuTimes{}
	total.add(phase)
	total.add(phase)
	if total["cqrs-write"] != 4*time.Second {
		t.Errorf("add twice = %v, want 4s", total)
	}
}

func TestKindEstimate(t *testing.T) {
	if got := (kindStat{keys: 1000, sampled: 10, bytes: 560}).estimate(); got != 56000 {
		t.Errorf("estimate = %v, want 56000 (56 bytes a key over 1000 keys)", got)
	}
	if got := (kindStat{keys: 5}).estimate(); got != 0 {
		t.Errorf("estimate without samples = %v, want 0", got)
	}
	for key, want := range map[string]string{
		"cqrs:{p0}:docs": "docs", "cqrs:{p12}:ix:w:hello": "ix:w", "cqrs:{p0}:ix:a": "ix:a", "cqrs:{p1}:idem:http:k": "idem",
		"cqrs:{p0}:seq": "seq", "cqrs:idx:word:x": "idx:word", "cqrs:rec:abc": "rec",
	} {
		if got := keyKind(key); got != want {
			t.Errorf("keyKind(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestReportArithmetic: the report divides what was measured by what was done, as
// its headings say: CPU and Redis time per request, ratios of function to baseline.
func TestReportArithmetic(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	b := &bench{opts: options{conns: 32, rounds: 1, duration: time.Second, advRecords: 10}}
	b.res = results{
		machine: "test machine",
		create: pair{
			fn:       []stats{{requests: 1000, rps: 1000, p50: ms(2), p99: ms(9)}},
			base:     []stats{{requests: 2000, rps: 2000, p50: ms(1), p99: ms(6)}},
			fnCPU:    cpuTimes{"cqrs-write": ms(92), "redis master": ms(30)},
			baseCPU:  cpuTimes{"baseline": ms(82)},
			fnCmds:   map[string]callStat{"evalsha": {calls: 1000, usec: 44000}, "incr": {calls: 1000, usec: 1000}},
			baseCmds: map[string]callStat{"evalsha": {calls: 2000, usec: 80000}},
		},
		sizes: []sizeResult{{records: 1000, bytesPerRecord: 512.4, pageBytes: 4000, read: pair{
			fn:     []stats{{requests: 500, rps: 500, p50: ms(3), p99: ms(12)}},
			base:   []stats{{requests: 1000, rps: 1000}},
			fnCPU:  cpuTimes{"cqrs-read": ms(50), "redis replica": ms(20)},
			fnCmds: map[string]callStat{"evalsha_ro": {calls: 500, usec: 22000}},
		}}},
	}
	var out bytes.Buffer
	b.report(&out, time.Minute)
	for _, want := range []string{
		"Machine: test machine;",
		"| POST /records (create), Zipf corpus | 1000 (1000..1000) | 2000 | 0.50 | 2.00 ms / 1.00 ms | 9.00 ms / 6.00 ms | 1.50 |",
		"| create, cqrs-write | 92.0 µs | 30.0 µs | 0.0 µs | 0.0 µs |",
		"| create, baseline | 41.0 µs |",
		"| read at 1k, cqrs-read | 100.0 µs | 0.0 µs | 40.0 µs |",
		"- create, cqrs-write: the master's commands (a script's line includes its commands' lines), per request: EVALSHA 1.00× 44.00 µs; INCR 1.00× 1.00 µs",
		"- create, baseline: the master's commands, per request: EVALSHA 1.00× 40.00 µs",
		"| create | 92.0 / 41.0 µs | 2.24 | 0.50 | 9.00 ms / 6.00 ms | 1.50 | 44.0 / 40.0 µs |",
		"| 25 newest at 1k records | 100.0 / 0.0 µs | - | 0.50 | 12.00 ms / 0.00 ms | - | 44.0 / 0.0 µs |",
		"| 1k | 512 | 3.00 ms | 12.00 ms | 44.0 |",
		"Redis time per create script (EVALSHA on the master, commandstats): 44.0 µs.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("report:\n%s", out.String())
	}
}
