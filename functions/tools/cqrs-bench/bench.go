package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// bench holds everything one run started, so that close stops exactly that.
type bench struct {
	opts            options
	dir             string
	master, replica *redisproc.Server
	write, read     *launch.Proc
	writeURL        string
	readURL         string

	mu    sync.Mutex
	procs []*launch.Proc

	rows              []row
	createUsec        float64
	pageUsec          []float64
	rssWrite, rssRead memory
	cold              []time.Duration
}

// row is one line of the result table; base is the raw Redis figure it is compared to.
type row struct {
	name     string
	stats    stats
	base     *stats
	baseName string
}

func (b *bench) startRedis() error {
	if _, err := redisproc.Binary(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "cqrs-bench-")
	if err != nil {
		return err
	}
	b.dir = dir
	if b.master, err = redisproc.StartMaster(dir, 0); err != nil {
		return fmt.Errorf("start master: %w", err)
	}
	if b.replica, err = redisproc.StartReplica(dir, 0, b.master); err != nil {
		return fmt.Errorf("start replica: %w", err)
	}
	progress("redis master on %s, replica on %s", b.master.Addr(), b.replica.Addr())
	return b.replica.WaitLinkUp(10 * time.Second)
}

// flush empties the master and waits until the replica is empty too.
func (b *bench) flush(ctx context.Context) error {
	if _, err := b.master.Do("FLUSHALL"); err != nil {
		return fmt.Errorf("flushall: %w", err)
	}
	return poll(ctx, 10*time.Second, "replica to apply FLUSHALL", func() bool {
		n, err := b.replica.Do("DBSIZE")
		return err == nil && n == "0"
	})
}

func poll(ctx context.Context, timeout time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(timeout)
	for !done() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// startProc runs a built function with env (plus PATH and a free PORT), its output
// going to a log file beside the Redis logs.
func (b *bench) startProc(name string, env ...string) (*launch.Proc, error) {
	log, err := os.OpenFile(filepath.Join(b.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	p, err := launch.Start(launch.Spec{Name: name, Path: filepath.Join(b.opts.bin, name), Env: env, Output: log})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// stopProc kills one process this run started and reaps it.
func (b *bench) stopProc(p *launch.Proc) {
	b.mu.Lock()
	b.procs = slices.DeleteFunc(b.procs, func(q *launch.Proc) bool { return q == p })
	b.mu.Unlock()
	p.Kill()
}

func (b *bench) readEnv() []string {
	return []string{"REDIS_ADDR=" + b.replica.Addr(), "REDIS_MASTER_ADDR=" + b.master.Addr()}
}

func (b *bench) startFunctions(ctx context.Context) error {
	var err error
	if b.write, err = b.startProc("cqrs-write", "REDIS_ADDR="+b.master.Addr()); err != nil {
		return err
	}
	if b.read, err = b.startProc("cqrs-read", b.readEnv()...); err != nil {
		return err
	}
	b.writeURL, b.readURL = b.write.URL(), b.read.URL()
	for _, p := range []*launch.Proc{b.write, b.read} {
		if err := p.WaitReady(ctx, 10*time.Second); err != nil {
			return fmt.Errorf("%w (logs in %s)", err, b.dir)
		}
	}
	progress("cqrs-write on %s, cqrs-read on %s", b.writeURL, b.readURL)
	return nil
}

// words is the vocabulary of generated texts, so that word indexes are shared the way
// they are in real text rather than one per record.
var words = strings.Fields(`redis replica master knative function scale zero event
broker trigger query command record blog post comment review sample cluster service
revision route traffic latency throughput cache stream index search page cursor seq
write read fallback health probe queue proxy metrics pod container image build deploy
hello world go lua script atomic replication lag wait budget limit type text time`)

func text(r *rand.Rand) string {
	n := 4 + r.IntN(9)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = words[r.IntN(len(words))]
	}
	return strings.Join(parts, " ")
}

func (b *bench) loadCreate(ctx context.Context) (stats, error) {
	r := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, 256)
	types := []string{"bp", "cmt", "rvw"}
	for i := range bodies {
		bodies[i], _ = json.Marshal(map[string]string{"type": types[i%3], "text": text(r)})
	}
	c := newClient(b.opts.conns)
	defer c.CloseIdleConnections()
	url := b.writeURL + "/records"
	return load(ctx, b.opts.conns, b.opts.duration, func(ctx context.Context, w, i int) error {
		return send(ctx, c, http.MethodPost, url, bodies[(w*7919+i)%len(bodies)], http.StatusCreated)
	})
}

func (b *bench) loadPage(ctx context.Context, d time.Duration) (stats, error) {
	c := newClient(b.opts.conns)
	defer c.CloseIdleConnections()
	url := b.readURL + "/records?limit=25"
	if err := checkPage(ctx, c, url); err != nil {
		return stats{}, err
	}
	return load(ctx, b.opts.conns, d, func(ctx context.Context, _, _ int) error {
		return send(ctx, c, http.MethodGet, url, nil, http.StatusOK)
	})
}

// loadLiveness loads the read function's liveness probe, which touches no Redis.
func (b *bench) loadLiveness(ctx context.Context) (stats, error) {
	c := newClient(b.opts.conns)
	defer c.CloseIdleConnections()
	url := b.readURL + "/health/liveness"
	return load(ctx, b.opts.conns, b.opts.duration, func(ctx context.Context, _, _ int) error {
		return send(ctx, c, http.MethodGet, url, nil, http.StatusOK)
	})
}

// checkPage makes sure the measured request does the real work: a full page of 25,
// served by the replica.
func checkPage(ctx context.Context, c *http.Client, url string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	if len(page.Records) != 25 || resp.Header.Get("X-Served-By") != "replica" {
		return fmt.Errorf("GET %s: %d records served by %q, want 25 by the replica", url, len(page.Records), resp.Header.Get("X-Served-By"))
	}
	return nil
}

// preload fills the store up to n records with the store's own create script from
// many goroutines, so the keys and indexes are exactly what cqrs-write writes, then
// waits until the replica has applied them all.
func (b *bench) preload(ctx context.Context, n int) error {
	rdb := store.NewClient(store.Options{Addr: b.master.Addr(), PoolSize: 64})
	defer rdb.Close()
	st := store.New(rdb)
	have, err := st.Seq(ctx)
	if err != nil {
		return err
	}
	todo := int64(n) - have
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	types := []string{"bp", "cmt", "rvw"}
	start := time.Now()
	for w := range 48 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), uint64(have)))
			for ctx.Err() == nil {
				i := next.Add(1)
				if i > todo {
					return
				}
				_, err := st.Create(ctx, store.NewRecord{
					ID: fmt.Sprintf("pre%x%06x", have+i, r.Uint32()), Type: types[i%3], Text: text(r),
					CreatedAt: time.Now(),
				}, 0, 0)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("preload: %w", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	want := strconv.Itoa(n)
	if err := poll(ctx, 30*time.Second, "replica to reach seq "+want, func() bool {
		s, err := b.replica.Do("GET", "cqrs:seq")
		return err == nil && s == want
	}); err != nil {
		return err
	}
	if todo > 0 {
		progress("  %d records in %s (%.0f creates/s in-process)", todo, time.Since(start).Round(time.Millisecond), float64(todo)/time.Since(start).Seconds())
	}
	return nil
}

// coldStart execs cqrs-read runs times and measures exec to the first 200 on
// /health/readiness (Redis connected, scripts loaded).
func (b *bench) coldStart(ctx context.Context, runs int) ([]time.Duration, error) {
	var out []time.Duration
	for range runs {
		t := time.Now()
		p, err := b.startProc("cqrs-read", b.readEnv()...)
		if err != nil {
			return nil, err
		}
		err = p.WaitReady(ctx, 10*time.Second)
		d := time.Since(t)
		b.stopProc(p)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	slices.Sort(out)
	return out, nil
}

// memory is a process' resident set now and at its peak, in KiB.
type memory struct{ rss, hwm int }

func rss(pid int) memory {
	var m memory
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		switch k {
		case "VmRSS":
			m.rss = n
		case "VmHWM":
			m.hwm = n
		}
	}
	return m
}

// callStat is one command's line of INFO commandstats.
type callStat struct {
	calls int
	usec  int
}

func redisCalls(s *redisproc.Server, cmd string) callStat {
	var c callStat
	v, err := s.Info("commandstats", "cmdstat_"+cmd)
	if err != nil {
		return c
	}
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		n, _ := strconv.Atoi(val)
		switch k {
		case "calls":
			c.calls = n
		case "usec":
			c.usec = n
		}
	}
	return c
}

// pageCalls counts pages (one read-only script call each) and their Redis time,
// which includes every command the script runs.
func pageCalls(s *redisproc.Server) callStat { return redisCalls(s, "evalsha_ro") }

// perCallSince is the server-side time per call since before, in microseconds.
func (c callStat) perCallSince(before callStat) float64 {
	if c.calls <= before.calls {
		return 0
	}
	return float64(c.usec-before.usec) / float64(c.calls-before.calls)
}

// close stops every process this run started, by its own handle, and removes the
// temporary directory.
func (b *bench) close() {
	b.mu.Lock()
	procs := b.procs
	b.procs = nil
	b.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
	var errs []error
	for _, s := range []*redisproc.Server{b.replica, b.master} {
		if s != nil {
			errs = append(errs, s.Kill())
		}
	}
	if err := errors.Join(errs...); err != nil {
		progress("stopping redis: %v", err)
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
