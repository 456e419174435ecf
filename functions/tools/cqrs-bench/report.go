package main

import (
	"fmt"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"io"
	"slices"
	"strings"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// report prints the run's results as Markdown.
func (b *bench) report(w io.Writer, took time.Duration) {
	r := &b.res
	fmt.Fprintf(w, "\n### cqrs-bench, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %s; load average %s before, %s after. Load generator (this process, Go, "+
		"keep-alive, %d connections), functions, baseline and Redis share these CPUs. Each workload: %d rounds "+
		"of %s per side, baseline and function alternating; the table shows the round with the median rps "+
		"(min..max over rounds).\n\n", r.machine, r.loadBefore, r.loadAfter, b.opts.conns, b.opts.rounds, b.opts.duration)

	fmt.Fprintln(w, "| workload | function rps (min..max) | baseline rps | ratio | p50 fn / base | p99 fn / base | p99 ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	line := func(name string, p pair) {
		f, bs := median(p.fn), median(p.base)
		lo, hi := minMax(p.fn)
		fmt.Fprintf(w, "| %s | %.0f (%.0f..%.0f) | %.0f | %s | %s / %s | %s / %s | %s |\n", name, f.rps, lo, hi, bs.rps,
			ratio(f.rps, bs.rps), ms(f.p50), ms(bs.p50), ms(f.p99), ms(bs.p99), ratio(float64(f.p99), float64(bs.p99)))
	}
	line("POST /records (create), Zipf corpus", r.create)
	for _, s := range r.sizes {
		line(fmt.Sprintf("GET /records?limit=25 at %s records (page %d B)", count(s.records), s.pageBytes), s.read)
	}
	fmt.Fprintf(w, "\nOuter ceilings: redis-benchmark SET (master) %.0f rps, p50 %s, p99 %s; GET (replica) %.0f rps, p50 %s, p99 %s "+
		"(-c %d -n %d -P 1); GET /health/liveness on cqrs-read (HTTP only, no Redis) %.0f rps, p99 %s.\n",
		r.rbSet.rps, ms(r.rbSet.p50), ms(r.rbSet.p99), r.rbGet.rps, ms(r.rbGet.p50), ms(r.rbGet.p99),
		b.opts.conns, b.opts.rbCount, r.liveness.rps, ms(r.liveness.p99))

	fmt.Fprintln(w, "\n#### Where the time goes: CPU per request (from /proc) and Redis per request (commandstats)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload, side | function or baseline | redis master | redis replica | load generator |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	cpuLine := func(name, proc string, c cpuTimes, n int) {
		per := func(k string) string {
			if n == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f µs", float64(c[k].Microseconds())/float64(n))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, per(proc), per("redis master"), per("redis replica"), per("load generator (cqrs-bench)"))
	}
	cpuLine("create, cqrs-write", "cqrs-write", r.create.fnCPU, requests(r.create.fn))
	cpuLine("create, baseline", "baseline", r.create.baseCPU, requests(r.create.base))
	for _, s := range r.sizes {
		cpuLine(fmt.Sprintf("read at %s, cqrs-read", count(s.records)), "cqrs-read", s.read.fnCPU, requests(s.read.fn))
		cpuLine(fmt.Sprintf("read at %s, baseline", count(s.records)), "baseline", s.read.baseCPU, requests(s.read.base))
	}
	fmt.Fprintln(w)
	cmdLine := func(name string, cmds map[string]callStat, n int) {
		if n == 0 {
			return
		}
		keys := make([]string, 0, len(cmds))
		for k := range cmds {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return int(cmds[b].usec - cmds[a].usec) })
		var parts []string
		for _, k := range keys {
			c := cmds[k]
			parts = append(parts, fmt.Sprintf("%s %.2f× %.2f µs", strings.ToUpper(k), float64(c.calls)/float64(n), float64(c.usec)/float64(n)))
		}
		fmt.Fprintf(w, "- %s, per request: %s\n", name, strings.Join(parts, "; "))
	}
	cmdLine("create script on the master (the script's line includes its commands' lines)", r.create.fnCmds, requests(r.create.fn))
	for _, s := range r.sizes {
		cmdLine(fmt.Sprintf("page script on the replica at %s records", count(s.records)), s.read.fnCmds, requests(s.read.fn))
	}

	fmt.Fprintln(w, "\n#### Cost in Redis and growth")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| records | bytes per record (used_memory delta / records, master) | read p50 | read p99 | Redis µs per page script |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.sizes {
		f := median(s.read.fn)
		usec := 0.0
		if c, ok := s.read.fnCmds["evalsha_ro"]; ok && c.calls > 0 {
			usec = float64(c.usec) / float64(c.calls)
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.1f |\n", count(s.records), s.bytesPerRecord, ms(f.p50), ms(f.p99), usec)
	}
	if c, ok := r.create.fnCmds["evalsha"]; ok && c.calls > 0 {
		fmt.Fprintf(w, "\nRedis time per create script (EVALSHA on the master, commandstats): %.1f µs.\n", float64(c.usec)/float64(c.calls))
	}
	for _, s := range r.sizes {
		fmt.Fprintf(w, "\nBytes by key kind at %s records (MEMORY USAGE ... SAMPLES 0 on up to 2000 keys of each kind, scaled to all keys of the kind):\n\n", count(s.records))
		fmt.Fprintln(w, "| kind | keys | bytes per record | bytes per index entry | encodings (sampled keys) |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
		for _, k := range s.kinds {
			perEntry := "-"
			if k.entries > 0 {
				perEntry = fmt.Sprintf("%.1f", float64(k.bytes)/float64(k.entries))
			}
			var enc []string
			for e, n := range k.encodings {
				enc = append(enc, fmt.Sprintf("%s %d", e, n))
			}
			slices.Sort(enc)
			fmt.Fprintf(w, "| %s | %d | %.1f | %s | %s |\n", k.kind, k.keys, k.estimate()/float64(s.records), perEntry, strings.Join(enc, ", "))
		}
	}

	a := r.adv
	fmt.Fprintf(w, "\n#### Adversarial search (%d connections, 16 words that no record holds together, %s records per layout): plain traffic beside it\n\n", attackers, count(b.opts.advRecords))
	fmt.Fprintln(w, "| layout | page script in Redis | searches | creates p50 | creates p99 | reads p50 | reads p99 | reads p99 ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| (alone, no search) | | | %s | %s | %s | %s | |\n", ms(a.quiet.creates.p50), ms(a.quiet.creates.p99), ms(a.quiet.reads.p50), ms(a.quiet.reads.p99))
	for _, l := range a.layout {
		fmt.Fprintf(w, "| %s | %.0f µs | %d | %s | %s | %s | %s | %s |\n", l.name, l.pageUsec, l.searches,
			ms(l.attacked.creates.p50), ms(l.attacked.creates.p99), ms(l.attacked.reads.p50), ms(l.attacked.reads.p99),
			ratio(float64(l.attacked.reads.p99), float64(a.quiet.reads.p99)))
	}
	fmt.Fprintf(w, "\nEach page script ends itself at %s of Redis time (store.SearchTime), read from Redis' clock; "+
		"%d bystander connections create and %d read the 25 newest meanwhile. Layouts: functions/internal/adversary.\n", store.SearchTime, bystander, bystander)

	fmt.Fprintln(w, "\n#### Processes")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "| --- | ---: |")
	cold := func(name string, c []time.Duration) {
		if len(c) > 0 {
			fmt.Fprintf(w, "| cold start %s, exec to first ready 200, median of %d (min..max) | %s (%s..%s) |\n",
				name, len(c), ms(c[len(c)/2]), ms(c[0]), ms(c[len(c)-1]))
		}
	}
	cold("cqrs-read", r.coldRead)
	cold("cqrs-write", r.coldWrite)
	fmt.Fprintf(w, "| RSS cqrs-write after load (peak) | %s (%s) |\n", mib(r.rssWrite.rss), mib(r.rssWrite.hwm))
	fmt.Fprintf(w, "| RSS cqrs-read after load (peak) | %s (%s) |\n", mib(r.rssRead.rss), mib(r.rssRead.hwm))
	fmt.Fprintf(w, "| RSS baseline after load (peak) | %s (%s) |\n", mib(r.rssBase.rss), mib(r.rssBase.hwm))
	fmt.Fprintf(w, "\nWhole run %s.\n", took.Round(time.Second))
}
