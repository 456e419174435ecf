package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// report prints the run's results as Markdown.
func (b *bench) report(w io.Writer, took time.Duration) {
	fmt.Fprintf(w, "\n### cqrs-bench: %d connections, keep-alive, loopback\n\n", b.opts.conns)
	fmt.Fprintf(w, "Machine: %s. Load generator, functions and Redis share these CPUs.\n\n", machine())
	fmt.Fprintln(w, "| workload | requests | rps | p50 | p99 | vs raw Redis (rps) |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range b.rows {
		ratio := "1.00 (ceiling)"
		if r.base != nil && r.base.rps > 0 {
			ratio = fmt.Sprintf("%.2f of %s", r.stats.rps/r.base.rps, r.baseName)
		}
		fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %s |\n", r.name, r.stats.requests, r.stats.rps, ms(r.stats.p50), ms(r.stats.p99), ratio)
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "| --- | ---: |")
	var reads []string
	for _, r := range b.rows {
		if strings.HasPrefix(r.name, "GET /records") {
			reads = append(reads, ms(r.stats.p50))
		}
	}
	if len(reads) == 2 {
		fmt.Fprintf(w, "| read p50, 1k vs %s records | %s vs %s |\n", count(b.opts.large), reads[0], reads[1])
	}
	fmt.Fprintf(w, "| Redis time per create script (EVALSHA, master) | %.1f µs |\n", b.createUsec)
	for i, u := range b.pageUsec {
		n := 1000
		if i > 0 {
			n = b.opts.large
		}
		fmt.Fprintf(w, "| Redis time per page script (EVALSHA_RO on the replica: GET, ZRANGE, 25 HGET), %s records | %.1f µs |\n", count(n), u)
	}
	if len(b.cold) > 0 {
		fmt.Fprintf(w, "| cold start cqrs-read, exec to first ready 200, median of %d (min..max) | %s (%s..%s) |\n",
			len(b.cold), ms(b.cold[len(b.cold)/2]), ms(b.cold[0]), ms(b.cold[len(b.cold)-1]))
	}
	fmt.Fprintf(w, "| RSS cqrs-write after load (peak) | %s (%s) |\n", mib(b.rssWrite.rss), mib(b.rssWrite.hwm))
	fmt.Fprintf(w, "| RSS cqrs-read after load (peak) | %s (%s) |\n", mib(b.rssRead.rss), mib(b.rssRead.hwm))
	fmt.Fprintf(w, "\nredis-benchmark: -c %d -n %d -P 1; HTTP phases: %s each (%s at %s records); whole run %s.\n",
		b.opts.conns, b.opts.rbCount, b.opts.duration, b.opts.largeRead, count(b.opts.large), took.Round(time.Second))
}
