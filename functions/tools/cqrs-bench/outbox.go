package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// outbox measures what the outbox adds to a create: the same creates on cqrs-write
// without a sink (the outbox off) and on a second cqrs-write whose K_SINK is a small
// sink on loopback that answers 202 (the outbox on: the create script also appends
// the entry, and the relay takes, publishes and settles it), in alternating rounds.
// After each of the second's rounds it waits until the outbox is empty, so that the
// relay's work for that round's creates is counted in it.
func (b *bench) outbox(ctx context.Context) error {
	var err error
	if b.sink, err = b.startProc(procSink, b.basePath, "SINK=1"); err != nil {
		return err
	}
	defer func() { b.stopProc(b.sink); b.sink = nil }()
	env := append(b.writeEnv(), "K_SINK="+b.sinkURL())
	if b.writeOutbox, err = b.startProc(procWriteOutbox, filepath.Join(b.opts.bin, "cqrs-write"), env...); err != nil {
		return err
	}
	defer func() { b.stopProc(b.writeOutbox); b.writeOutbox = nil }()
	for _, p := range []interface {
		WaitReady(context.Context, time.Duration) error
	}{b.sink, b.writeOutbox} {
		if err := p.WaitReady(ctx, 10*time.Second); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, b.dir)
		}
	}
	c := newCorpus(3, 4)
	bodies := make([][]byte, 512)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]string{"type": recordTypes[i%3], "text": c.text()})
	}
	// The master's SLOWLOG keeps every command while this runs, so that each script's
	// time is known apart: the create script's, the relay's take and settle.
	restore, err := slowlogAll(ctx, b.mc)
	if err != nil {
		return err
	}
	defer restore()
	collect := func(into *scriptSums) func(context.Context) error {
		return func(ctx context.Context) error {
			log, err := takeSlowlog(ctx, b.mc)
			into.add(log)
			return err
		}
	}
	progress("POST /records, outbox off (no K_SINK) and on (K_SINK: a sink answering 202): %d rounds of %s per side", b.opts.rounds, b.opts.duration)
	b.res.outbox, err = b.rounds(ctx, b.mc,
		side{do: b.poster(b.write.URL()+"/records", bodies), collect: collect(&b.res.outboxScripts[0])},
		side{do: b.poster(b.writeOutbox.URL()+"/records", bodies), after: b.drained, collect: collect(&b.res.outboxScripts[1])})
	return err
}

// scriptSums are the master's script calls by kind, from its SLOWLOG: the create
// script, the relay's take and settle scripts, told apart by their number of keys.
type scriptSums struct {
	create, take, settle scriptSum
}

type scriptSum struct {
	calls int
	total time.Duration
}

// perCall is the mean time of a call in microseconds.
func (s scriptSum) perCall() float64 {
	if s.calls == 0 {
		return 0
	}
	return float64(s.total.Nanoseconds()) / 1e3 / float64(s.calls)
}

// Keys of the scripts (see functions/store): the create script names nine and then
// its words' indexes, the take script five, the settle script four.
const (
	createKeys = 9
	takeKeys   = 5
	settleKeys = 4
)

func (s *scriptSums) add(log []redis.SlowLog) {
	for _, e := range log {
		if len(e.Args) < 3 || !strings.EqualFold(e.Args[0], "evalsha") {
			continue
		}
		n, err := strconv.Atoi(e.Args[2])
		var into *scriptSum
		switch {
		case err != nil:
			continue
		case n >= createKeys:
			into = &s.create
		case n == takeKeys:
			into = &s.take
		case n == settleKeys:
			into = &s.settle
		default:
			continue
		}
		into.calls++
		into.total += e.Duration
	}
}

func (b *bench) sinkURL() string { return b.sink.URL() + "/" }

// drained waits until the relay has published every outbox entry.
func (b *bench) drained(ctx context.Context) error {
	st := store.New(b.mc)
	var left int64
	err := poll(ctx, 60*time.Second, "the outbox to drain", func() bool {
		s, err := st.Outbox(ctx)
		left = s.Pending
		return err == nil && s.Pending == 0 && s.Dead == 0
	})
	if err != nil {
		return fmt.Errorf("%w: %d entries left (dead letters mean the sink refused events; logs in %s)", err, left, b.dir)
	}
	return nil
}

// outboxCost is what the outbox adds to a create, from the rounds with it off and on
// in the same run; every figure is per create.
type outboxCost struct {
	creates [2]int // off, on
	// writeCPU is cqrs-write's CPU per create, off and on; the difference is the
	// relay's (taking, publishing and settling entries; the create path is the same
	// but for one non-blocking wake-up of the relay).
	writeCPU [2]float64
	relayCPU float64
	sinkCPU  float64    // the sink's, which any consumer pays
	master   [2]float64 // the master's CPU per create, off and on (/proc)
	// scripts is the master's EVALSHA time per create (commandstats), off and on: on,
	// it holds the create scripts and the relay's take and settle scripts.
	scripts [2]float64
	// createScript is the create script's time per call (SLOWLOG), off and on; on,
	// it also checks the outbox's length and appends the entry.
	createScript [2]float64
	// entry is the outbox commands' own time in the create script (XLEN for the cap,
	// XADD of the entry) per create (commandstats).
	entry float64
	// relayCalls is the relay's take and settle calls per create, relayRedis their
	// time per create (SLOWLOG).
	relayCalls float64
	relayRedis float64
	// rps and p99 of the median rounds, off and on.
	rps [2]float64
	p99 [2]time.Duration
}

func newOutboxCost(p pair, sums [2]scriptSums) outboxCost {
	var c outboxCost
	c.creates = [2]int{requests(p.base), requests(p.fn)}
	c.writeCPU = [2]float64{p.baseCPU.perRequest(procWrite, c.creates[0]), p.fnCPU.perRequest(procWriteOutbox, c.creates[1])}
	c.relayCPU = c.writeCPU[1] - c.writeCPU[0]
	c.sinkCPU = p.fnCPU.perRequest(procSink, c.creates[1])
	c.master = [2]float64{p.baseCPU.perRequest(procMaster, c.creates[0]), p.fnCPU.perRequest(procMaster, c.creates[1])}
	c.scripts = [2]float64{usecPerRequest(p.baseCmds, "evalsha", c.creates[0]), usecPerRequest(p.fnCmds, "evalsha", c.creates[1])}
	c.createScript = [2]float64{sums[0].create.perCall(), sums[1].create.perCall()}
	if n := c.creates[1]; n > 0 {
		// The create script checks XLEN once per create and XADDs once; take scripts
		// read XLEN too, so only one XLEN per create, at its mean time, is the create's.
		xlen := p.fnCmds["xlen"]
		perXlen := 0.0
		if xlen.calls > 0 {
			perXlen = float64(xlen.usec) / float64(xlen.calls)
		}
		c.entry = usecPerRequest(p.fnCmds, "xadd", n) + perXlen
		relay := sums[1].take.total + sums[1].settle.total
		c.relayCalls = float64(sums[1].take.calls+sums[1].settle.calls) / float64(n)
		c.relayRedis = float64(relay.Nanoseconds()) / 1e3 / float64(n)
	}
	off, on := median(p.base), median(p.fn)
	c.rps, c.p99 = [2]float64{off.rps, on.rps}, [2]time.Duration{off.p99, on.p99}
	return c
}
