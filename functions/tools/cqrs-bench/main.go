// Command cqrs-bench measures the built functions next to the Redis they run on: it
// starts its own Redis master and replica on free loopback ports, runs
// redis-benchmark SET on the master and GET on the replica as the ceiling, then loads
// bin/cqrs-write and bin/cqrs-read over keep-alive HTTP with the same concurrency and
// prints one Markdown table: throughput, median and 99th percentile latency, and the
// ratio to raw Redis; then read latency at 1k and 100k records, cold start and
// memory. It sends traffic only to the processes it started and stops them at the end.
//
// Run it with make bench (which builds bin/ first), or:
//
//	go run ./functions/tools/cqrs-bench [-short] [-bin bin] [-conns 32] [-duration 5s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin       string
	conns     int
	duration  time.Duration
	rbCount   int // requests per redis-benchmark test
	large     int // records for the large read
	coldRuns  int
	largeRead time.Duration
}

func main() {
	o := options{}
	short := flag.Bool("short", false, "a quicker, rougher run (about 30 s)")
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the built cqrs-write and cqrs-read")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections, for redis-benchmark and the functions alike")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each HTTP load phase runs")
	flag.Parse()
	o.rbCount, o.large, o.coldRuns, o.largeRead = 200000, 100000, 10, 3*time.Second
	if *short {
		o.duration, o.rbCount, o.large, o.coldRuns, o.largeRead = 2*time.Second, 50000, 20000, 5, 2*time.Second
	}
	if o.conns < 1 || o.conns > 1024 || o.duration <= 0 || o.duration > time.Minute {
		fmt.Fprintln(os.Stderr, "cqrs-bench: -conns must be 1..1024 and -duration at most 1m")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A hard ceiling, whatever happens: the run is meant to take about two minutes.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	b := &bench{opts: o}
	err := b.run(ctx)
	b.close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqrs-bench:", err)
		os.Exit(1)
	}
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func (b *bench) run(ctx context.Context) error {
	started := time.Now()
	for _, name := range []string{"cqrs-write", "cqrs-read"} {
		if _, err := os.Stat(filepath.Join(b.opts.bin, name)); err != nil {
			return fmt.Errorf("%s not found in %s; run make build first (make bench does)", name, b.opts.bin)
		}
	}
	if err := b.startRedis(); err != nil {
		return err
	}

	progress("redis-benchmark SET on the master, GET on the replica (-c %d -n %d -P 1)", b.opts.conns, b.opts.rbCount)
	set, err := redisBenchmark(ctx, b.master.Port, "set", b.opts.conns, b.opts.rbCount)
	if err != nil {
		return err
	}
	get, err := redisBenchmark(ctx, b.replica.Port, "get", b.opts.conns, b.opts.rbCount)
	if err != nil {
		return err
	}
	b.rows = append(b.rows,
		row{name: "redis-benchmark SET (master)", stats: set},
		row{name: "redis-benchmark GET (replica)", stats: get})
	// The functions' data lives under its own prefix, but start from an empty store.
	if err := b.flush(ctx); err != nil {
		return err
	}

	if err := b.startFunctions(ctx); err != nil {
		return err
	}

	// The same server with no Redis behind it: how far HTTP alone gets on this
	// machine with this load generator, the ceiling of any HTTP function here.
	progress("GET /health/liveness on cqrs-read (no Redis): %d connections for %s", b.opts.conns, b.opts.duration)
	live, err := b.loadLiveness(ctx)
	if err != nil {
		return err
	}
	b.rows = append(b.rows, row{name: "GET /health/liveness (cqrs-read, no Redis: the HTTP ceiling)", stats: live, base: &get, baseName: "GET"})

	progress("POST /records on cqrs-write: %d connections for %s", b.opts.conns, b.opts.duration)
	before := redisCalls(b.master, "evalsha")
	create, err := b.loadCreate(ctx)
	if err != nil {
		return err
	}
	b.createUsec = redisCalls(b.master, "evalsha").perCallSince(before)
	b.rows = append(b.rows, row{name: "POST /records (cqrs-write)", stats: create, base: &set, baseName: "SET"})

	for _, n := range []int{1000, b.opts.large} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n == 1000 {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
		progress("preloading %d records through the store's create script", n)
		if err := b.preload(ctx, n); err != nil {
			return err
		}
		d := b.opts.duration
		if n != 1000 {
			d = b.opts.largeRead
		}
		progress("GET /records?limit=25 on cqrs-read with %d records: %d connections for %s", n, b.opts.conns, d)
		before := pageCalls(b.replica)
		page, err := b.loadPage(ctx, d)
		if err != nil {
			return err
		}
		b.pageUsec = append(b.pageUsec, pageCalls(b.replica).perCallSince(before))
		b.rows = append(b.rows, row{name: fmt.Sprintf("GET /records?limit=25, %s records (cqrs-read)", count(n)), stats: page, base: &get, baseName: "GET"})
	}
	b.rssWrite, b.rssRead = rss(b.write.PID()), rss(b.read.PID())

	progress("cold start of cqrs-read: exec to first 200 on /health/readiness, %d runs", b.opts.coldRuns)
	if b.cold, err = b.coldStart(ctx, b.opts.coldRuns); err != nil {
		return err
	}
	b.report(os.Stdout, time.Since(started))
	return nil
}

func count(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s/%s, %s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
