package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// bench holds everything one run started, so that close stops exactly that.
type bench struct {
	opts            options
	dir             string
	master, replica *redisproc.Server
	mc, rc          *redis.Client // the bench's own clients, for INFO and preloading
	write, read     *launch.Proc
	base            *launch.Proc
	writeOutbox     *launch.Proc // cqrs-write with K_SINK, for the outbox phase only
	sink            *launch.Proc // the outbox's sink: the baseline binary answering 202
	basePath        string

	mu    sync.Mutex
	procs []*launch.Proc

	res results
}

// pageKey is where the baseline finds the page it serves.
const pageKey = "bench:page"

func (b *bench) run(ctx context.Context) error {
	started := time.Now()
	b.res.machine, b.res.loadBefore = machine(), loadavg()
	for _, name := range []string{"cqrs-write", "cqrs-read"} {
		if _, err := os.Stat(filepath.Join(b.opts.bin, name)); err != nil {
			return fmt.Errorf("%s not found in %s; run make build first (make bench does)", name, b.opts.bin)
		}
	}
	if err := b.startRedis(); err != nil {
		return err
	}
	if b.opts.clusterOnly {
		if err := b.clusters(ctx); err != nil {
			return err
		}
		b.res.loadAfter = loadavg()
		b.reportHeader(os.Stdout)
		fmt.Fprintln(os.Stdout)
		b.reportClusters(os.Stdout)
		return nil
	}
	progress("building the baseline function")
	var err error
	if b.basePath, err = launch.Build(b.dir, "./functions/tools/cqrs-bench/baseline"); err != nil {
		return err
	}

	progress("redis-benchmark SET on the master, GET on the replica (-c %d -n %d -P 1)", b.opts.conns, b.opts.rbCount)
	if b.res.rbSet, err = redisBenchmark(ctx, b.master.Port, "set", b.opts.conns, b.opts.rbCount); err != nil {
		return err
	}
	if b.res.rbGet, err = redisBenchmark(ctx, b.replica.Port, "get", b.opts.conns, b.opts.rbCount); err != nil {
		return err
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	if b.res.usedEmpty, err = usedMemory(ctx, b.mc); err != nil {
		return err
	}
	if err := b.startFunctions(ctx); err != nil {
		return err
	}

	// The read function with no Redis behind it: how far HTTP alone gets here with
	// this load generator, the ceiling of any HTTP function on this machine.
	progress("GET /health/liveness on cqrs-read (no Redis): %d connections for %s", b.opts.conns, b.opts.duration)
	if b.res.liveness, err = b.load(ctx, b.opts.conns, b.opts.duration, b.getter(b.read.URL()+"/health/liveness")); err != nil {
		return err
	}

	for i, n := range b.opts.sizes {
		if err := b.grow(ctx, n); err != nil {
			return err
		}
		if err := b.readAt(ctx, n); err != nil {
			return err
		}
		if i == 0 {
			// Creates run on the smallest store.
			if err := b.creates(ctx); err != nil {
				return err
			}
			if err := b.outbox(ctx); err != nil {
				return err
			}
			// The next size is filled from empty, so that it holds exactly its records.
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
	}
	b.res.rssWrite, b.res.rssRead, b.res.rssBase = rss(b.write.PID()), rss(b.read.PID()), rss(b.base.PID())

	if err := b.adversarial(ctx); err != nil {
		return err
	}
	if err := b.clusters(ctx); err != nil {
		return err
	}
	progress("cold start: exec to first 200 on /health/readiness, %d runs each", b.opts.coldRuns)
	if b.res.coldRead, err = b.coldStart(ctx, "cqrs-read", b.readEnv()); err != nil {
		return err
	}
	if b.res.coldWrite, err = b.coldStart(ctx, "cqrs-write", b.writeEnv()); err != nil {
		return err
	}
	b.res.loadAfter = loadavg()
	b.report(os.Stdout, time.Since(started))
	return nil
}

// grow fills the store up to n records and measures the master's memory per record.
func (b *bench) grow(ctx context.Context, n int) error {
	progress("filling the store to %s records through the store's create script", count(n))
	if err := b.preload(ctx, n); err != nil {
		return err
	}
	used, err := usedMemory(ctx, b.mc)
	if err != nil {
		return err
	}
	progress("measuring memory by key kind (MEMORY USAGE on samples)")
	kinds, err := perKind(ctx, b.mc, 2000)
	if err != nil {
		return err
	}
	b.res.sizes = append(b.res.sizes, sizeResult{records: n, bytesPerRecord: float64(used-b.res.usedEmpty) / float64(n), kinds: kinds})
	return nil
}

// readAt loads GET /records?limit=25 on cqrs-read and the baseline's GET of a stored
// page as large as the page the read function serves now.
func (b *bench) readAt(ctx context.Context, n int) error {
	url := b.read.URL() + "/records?limit=25"
	page, err := checkPage(ctx, url)
	if err != nil {
		return err
	}
	if err := b.mc.Set(ctx, pageKey, page, 0).Err(); err != nil {
		return err
	}
	if err := b.waitReplica(ctx); err != nil {
		return err
	}
	s := &b.res.sizes[len(b.res.sizes)-1]
	s.pageBytes = len(page)
	progress("GET /records?limit=25 at %s records (page of %d bytes): %d rounds of %s per side", count(n), len(page), b.opts.rounds, b.opts.duration)
	if s.read, err = b.rounds(ctx, b.rc, side{do: b.getter(b.base.URL() + "/records")}, side{do: b.getter(url)}); err != nil {
		return err
	}
	// What a page would cost if it were kept whole: one GET of it, one round.
	progress("GET /records/stored on the baseline (one GET of a stored page) at %s records: %s", count(n), b.opts.duration)
	cmdsBefore, cpuBefore := commandStats(ctx, b.rc), b.cpu()
	if s.stored, err = b.load(ctx, b.opts.conns, b.opts.duration, b.getter(b.base.URL()+"/records/stored")); err != nil {
		return err
	}
	s.storedCPU, s.storedCmds = b.cpu().since(cpuBefore), diff(commandStats(ctx, b.rc), cmdsBefore)
	return nil
}

// creates loads POST /records on cqrs-write and on the baseline with the same bodies.
func (b *bench) creates(ctx context.Context) error {
	c := newCorpus(1, 2)
	bodies := make([][]byte, 512)
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]string{"type": recordTypes[i%3], "text": c.text()})
	}
	progress("POST /records: %d rounds of %s per side", b.opts.rounds, b.opts.duration)
	var err error
	b.res.create, err = b.rounds(ctx, b.mc, side{do: b.poster(b.base.URL()+"/records", bodies)}, side{do: b.poster(b.write.URL()+"/records", bodies)})
	return err
}

// side is what one side of a workload sends, and what it waits for after each of its
// load phases before its CPU is read (nil: nothing), so that work a phase left
// behind (an outbox to drain) is counted in it.
type side struct {
	do    request
	after func(ctx context.Context) error
	// collect, when set, runs after the phase's CPU and commandstats were read.
	collect func(ctx context.Context) error
}

// rounds runs base and fn alternately, b.opts.rounds times each, the baseline first
// in odd rounds and second in even ones. It keeps the CPU each process used during
// each side's phases, and the commandstats of rdb during each side's.
func (b *bench) rounds(ctx context.Context, rdb *redis.Client, base, fn side) (pair, error) {
	p := pair{fnCPU: cpuTimes{}, baseCPU: cpuTimes{}, fnCmds: map[string]callStat{}, baseCmds: map[string]callStat{}}
	for i := range b.opts.rounds {
		order := []bool{true, false}
		if i%2 == 1 {
			order = []bool{false, true}
		}
		for _, isBase := range order {
			sd, cpu, cmds := fn, p.fnCPU, p.fnCmds
			if isBase {
				sd, cpu, cmds = base, p.baseCPU, p.baseCmds
			}
			cmdsBefore, cpuBefore := commandStats(ctx, rdb), b.cpu()
			s, err := b.load(ctx, b.opts.conns, b.opts.duration, sd.do)
			if err != nil {
				return p, err
			}
			if sd.after != nil {
				if err := sd.after(ctx); err != nil {
					return p, err
				}
			}
			cpu.add(b.cpu().since(cpuBefore))
			addCalls(cmds, diff(commandStats(ctx, rdb), cmdsBefore))
			if sd.collect != nil {
				if err := sd.collect(ctx); err != nil {
					return p, err
				}
			}
			if isBase {
				p.base = append(p.base, s)
			} else {
				p.fn = append(p.fn, s)
			}
		}
		progress("  round %d: function %.0f rps (p99 %s), baseline %.0f rps (p99 %s); load %s", i+1,
			p.fn[i].rps, ms(p.fn[i].p99), p.base[i].rps, ms(p.base[i].p99), loadavg())
	}
	return p, nil
}

func (b *bench) getter(url string) request {
	return func(ctx context.Context, c *http.Client, _, _ int) error {
		return send(ctx, c, http.MethodGet, url, nil, http.StatusOK)
	}
}

func (b *bench) poster(url string, bodies [][]byte) request {
	return func(ctx context.Context, c *http.Client, w, i int) error {
		return send(ctx, c, http.MethodPost, url, bodies[(w*7919+i)%len(bodies)], http.StatusCreated)
	}
}

// checkPage makes sure the measured request does the real work, a full page of 25
// served by the replica, and returns the page.
func checkPage(ctx context.Context, url string) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	if len(page.Records) != 25 || resp.Header.Get("X-Served-By") != "replica" {
		return nil, fmt.Errorf("GET %s: %d records served by %q, want 25 by the replica", url, len(page.Records), resp.Header.Get("X-Served-By"))
	}
	return body, nil
}
