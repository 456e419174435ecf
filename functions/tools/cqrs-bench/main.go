// Command cqrs-bench measures the built functions against the smallest Go function
// doing the same work on the same Redis, in one run, with one load generator: it
// starts its own Redis master and replica on free loopback ports, builds and starts
// the baseline (./baseline: one JSON decode and the store's create script per
// create, the store's page script per read, and a GET of a page kept whole), starts
// bin/cqrs-write and bin/cqrs-read, and loads each side in alternating rounds on a
// Zipf-like corpus. It prints one Markdown report: rps, p50 and p99 of functions and
// baseline and their ratios; where the time goes (each side's own CPU and Redis time
// per request); the outbox's cost per create (cqrs-write with and without a sink of
// its own on loopback); what a page costs in Redis against a GET of a stored page;
// redis-benchmark as the outer ceiling; bytes per record on the master with a
// breakdown by key kind; how read latency and memory grow from 1k to 100k records
// (1M with -large); the page script's time and the bystanders' p99 beside the
// adversarial searches of each layout; cold start and RSS. It sends traffic only to
// the processes it started and stops them at the end.
//
// Run it with make bench (which builds bin/ first), make bench-large, or:
//
//	go run ./functions/tools/cqrs-bench [-short] [-large] [-cluster-only] [-bin bin] [-conns 32] [-duration 3s] [-rounds 3]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin        string
	conns      int
	duration   time.Duration // one round of one side of one workload
	rounds     int
	rbCount    int   // requests per redis-benchmark test
	sizes      []int // store sizes read at, in records
	coldRuns   int
	advRecords int // records of each adversarial layout
	// clusterOnly runs the Redis Cluster part alone.
	clusterOnly bool
}

func main() {
	o := options{}
	short := flag.Bool("short", false, "a quicker, rougher run (about 40 s)")
	large := flag.Bool("large", false, "also read at 1M records (several minutes more)")
	flag.StringVar(&o.bin, "bin", "bin", "directory holding the built cqrs-write and cqrs-read")
	flag.IntVar(&o.conns, "conns", 32, "concurrent connections, for redis-benchmark, baseline and functions alike")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each side of each workload runs per round")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds per workload, alternating baseline and function")
	flag.BoolVar(&o.clusterOnly, "cluster-only", false, "only the functions on Redis Clusters of 1 and 3 masters (about a minute)")
	flag.Parse()
	o.rbCount, o.sizes, o.coldRuns, o.advRecords = 100000, []int{1000, 100000}, 10, 100000
	if *short {
		o.duration, o.rounds, o.rbCount, o.sizes, o.coldRuns, o.advRecords = time.Second, 1, 30000, []int{1000, 20000}, 5, 20000
	}
	if *large {
		o.sizes = append(o.sizes, 1000000)
	}
	if o.conns < 1 || o.conns > 1024 || o.duration <= 0 || o.duration > time.Minute || o.rounds < 1 || o.rounds > 9 {
		fmt.Fprintln(os.Stderr, "cqrs-bench: -conns must be 1..1024, -duration at most 1m, -rounds 1..9")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A hard ceiling, whatever happens.
	limit := 10 * time.Minute
	if *large {
		limit = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
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

func count(n int) string {
	switch {
	case n >= 1000000 && n%1000000 == 0:
		return fmt.Sprintf("%dM", n/1000000)
	case n%1000 == 0:
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

// loadavg is the first three fields of /proc/loadavg: how busy the machine was.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
