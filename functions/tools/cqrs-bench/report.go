package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(kib int) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// pct is a as a percentage of b.
func pct(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*a/b)
}

// perCall is a command's time per call in microseconds.
func perCall(c callStat) float64 {
	if c.calls == 0 {
		return 0
	}
	return float64(c.usec) / float64(c.calls)
}

// cmdSummary lists commands by their time, each with its calls and microseconds per
// request over n requests.
func cmdSummary(cmds map[string]callStat, n int) string {
	keys := make([]string, 0, len(cmds))
	for k := range cmds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := cmds[b].usec - cmds[a].usec; d != 0 {
			return int(d)
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f× %.2f µs", strings.ToUpper(k), callsPerRequest(cmds, k, n), usecPerRequest(cmds, k, n)))
	}
	return strings.Join(parts, "; ")
}

// cost is one workload's key figures, function (index 0) and baseline (1).
type cost struct {
	name  string
	cpu   [2]float64 // own CPU per request, µs
	rps   [2]float64 // the median rounds'
	p99   [2]time.Duration
	redis [2]float64 // Redis time per request, µs
}

func newCost(name string, p pair, fnProc, cmd string) cost {
	n, nb := requests(p.fn), requests(p.base)
	f, bs := median(p.fn), median(p.base)
	return cost{
		name:  name,
		cpu:   [2]float64{p.fnCPU.perRequest(fnProc, n), p.baseCPU.perRequest(procBase, nb)},
		rps:   [2]float64{f.rps, bs.rps},
		p99:   [2]time.Duration{f.p99, bs.p99},
		redis: [2]float64{usecPerRequest(p.fnCmds, cmd, n), usecPerRequest(p.baseCmds, cmd, nb)},
	}
}

// costs are the key figures of creates and of the 25-newest pages at each size.
func (r *results) costs() []cost {
	out := []cost{newCost("create", r.create, procWrite, "evalsha")}
	for _, s := range r.sizes {
		out = append(out, newCost(fmt.Sprintf("25 newest at %s records", count(s.records)), s.read, procRead, "evalsha_ro"))
	}
	return out
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// report prints the run's results as Markdown.
func (b *bench) report(w io.Writer, took time.Duration) {
	r := &b.res
	b.reportHeader(w)
	fmt.Fprintf(w, "Each workload: %d rounds of %s per side, baseline and function alternating; the table shows the round "+
		"with the median rps (min..max over rounds).\n\n", b.opts.rounds, b.opts.duration)

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

	fmt.Fprintln(w, "\n#### Where the time goes: the functions' own CPU against the baseline's")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Own CPU: the process' user + system time (/proc) over all rounds of its side, per request. "+
		"Redis: the script's (or command's) time per request in commandstats, which includes the commands it calls. "+
		"The baseline does the same work in Redis (the same create and page scripts, through the same store package). "+
		"Aims: CPU at most 1.25x, throughput at least 0.6x (creates) and 0.7x (pages), p99 at most 1.5x.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload | own CPU fn / base | CPU ratio | rps ratio | p99 fn / base | p99 ratio | Redis per request fn / base |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range r.costs() {
		fmt.Fprintf(w, "| %s | %.1f / %.1f µs | %s | %s | %s / %s | %s | %.1f / %.1f µs |\n", c.name, c.cpu[0], c.cpu[1],
			ratio(c.cpu[0], c.cpu[1]), ratio(c.rps[0], c.rps[1]), ms(c.p99[0]), ms(c.p99[1]),
			ratio(float64(c.p99[0]), float64(c.p99[1])), c.redis[0], c.redis[1])
	}
	fmt.Fprintln(w, "\nCPU per request of every process during each side's rounds (Redis' own CPU included):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload, side | function or baseline | redis master | redis replica | load generator |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	cpuLine := func(name, proc string, c cpuTimes, n int) {
		per := func(k string) string {
			if n == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f µs", c.perRequest(k, n))
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, per(proc), per(procMaster), per(procReplica), per(procLoad))
	}
	cpuLine("create, cqrs-write", procWrite, r.create.fnCPU, requests(r.create.fn))
	cpuLine("create, baseline", procBase, r.create.baseCPU, requests(r.create.base))
	for _, s := range r.sizes {
		cpuLine(fmt.Sprintf("read at %s, cqrs-read", count(s.records)), procRead, s.read.fnCPU, requests(s.read.fn))
		cpuLine(fmt.Sprintf("read at %s, baseline", count(s.records)), procBase, s.read.baseCPU, requests(s.read.base))
		cpuLine(fmt.Sprintf("read at %s, baseline GET of a stored page", count(s.records)), procBase, s.storedCPU, s.stored.requests)
	}
	fmt.Fprintln(w)
	cmdLine := func(name string, cmds map[string]callStat, n int) {
		if n == 0 || len(cmds) == 0 {
			return
		}
		fmt.Fprintf(w, "- %s, per request: %s\n", name, cmdSummary(cmds, n))
	}
	cmdLine("create, cqrs-write: the master's commands (a script's line includes its commands' lines)", r.create.fnCmds, requests(r.create.fn))
	cmdLine("create, baseline: the master's commands", r.create.baseCmds, requests(r.create.base))
	for _, s := range r.sizes {
		cmdLine(fmt.Sprintf("read at %s, cqrs-read: the replica's commands", count(s.records)), s.read.fnCmds, requests(s.read.fn))
		cmdLine(fmt.Sprintf("read at %s, baseline: the replica's commands", count(s.records)), s.read.baseCmds, requests(s.read.base))
	}

	if oc := newOutboxCost(r.outbox, r.outboxScripts); oc.creates[1] > 0 {
		fmt.Fprintln(w, "\n#### The outbox's cost per create")
		fmt.Fprintln(w)
		fmt.Fprintf(w, "The same creates on cqrs-write without a sink (outbox off) and on a second cqrs-write whose K_SINK is a sink "+
			"on loopback answering 202 (outbox on), %d rounds each, alternating; after each round with the outbox on, the bench "+
			"waits until the relay has published every entry, and counts that time in the round.\n\n", b.opts.rounds)
		fmt.Fprintln(w, "| per create | outbox off | outbox on | on / off |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: |")
		fmt.Fprintf(w, "| creates per second (median round) | %.0f | %.0f | %s |\n", oc.rps[0], oc.rps[1], ratio(oc.rps[1], oc.rps[0]))
		fmt.Fprintf(w, "| create p99 | %s | %s | %s |\n", ms(oc.p99[0]), ms(oc.p99[1]), ratio(float64(oc.p99[1]), float64(oc.p99[0])))
		fmt.Fprintf(w, "| cqrs-write CPU | %.1f µs | %.1f µs | %s |\n", oc.writeCPU[0], oc.writeCPU[1], ratio(oc.writeCPU[1], oc.writeCPU[0]))
		fmt.Fprintf(w, "| redis master CPU | %.1f µs | %.1f µs | %s |\n", oc.master[0], oc.master[1], ratio(oc.master[1], oc.master[0]))
		fmt.Fprintf(w, "| all scripts on the master (EVALSHA, commandstats) | %.1f µs | %.1f µs | %s |\n", oc.scripts[0], oc.scripts[1], ratio(oc.scripts[1], oc.scripts[0]))
		fmt.Fprintf(w, "| the create script, per call (SLOWLOG) | %.1f µs | %.1f µs | %s |\n", oc.createScript[0], oc.createScript[1], ratio(oc.createScript[1], oc.createScript[0]))
		fmt.Fprintln(w)
		fmt.Fprintf(w, "- The relay's CPU (cqrs-write's on less off): %.1f µs per create, %s of the create's own %.1f µs; the sink's: %.1f µs.\n",
			oc.relayCPU, pct(oc.relayCPU, oc.writeCPU[0]), oc.writeCPU[0], oc.sinkCPU)
		fmt.Fprintf(w, "- The relay's Redis time (its take and settle scripts, SLOWLOG): %.1f µs per create, in %.3f calls per create; "+
			"%s of the create script's %.1f µs.\n", oc.relayRedis, oc.relayCalls, pct(oc.relayRedis, oc.createScript[0]), oc.createScript[0])
		fmt.Fprintf(w, "- The create script's extra: its outbox commands (XLEN for the cap, XADD of the entry) take %.1f µs per create "+
			"of their own (commandstats), %s of the script; the script per call went from %.1f to %.1f µs.\n",
			oc.entry, pct(oc.entry, oc.createScript[0]), oc.createScript[0], oc.createScript[1])
		cmdLine("outbox on: the master's commands", r.outbox.fnCmds, requests(r.outbox.fn))
		cmdLine("outbox off: the master's commands", r.outbox.baseCmds, requests(r.outbox.base))
	}

	fmt.Fprintln(w, "\n#### What a page costs in Redis: the page script against a GET of a page kept whole")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| records | page script, µs per call | GET of the stored page, µs per call | ratio | replica CPU per request, page script / GET | baseline rps, page script / GET |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.sizes {
		nb := requests(s.read.base)
		script := perCall(s.read.fnCmds["evalsha_ro"])
		get := perCall(s.storedCmds["get"])
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %s | %.1f / %.1f µs | %.0f / %.0f |\n", count(s.records), script, get, ratio(script, get),
			s.read.baseCPU.perRequest(procReplica, nb), s.storedCPU.perRequest(procReplica, s.stored.requests),
			median(s.read.base).rps, s.stored.rps)
	}
	fmt.Fprintln(w, "\n#### Cost in Redis and growth")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| records | bytes per record (used_memory delta / records, master) | read p50 | read p99 | Redis µs per page script |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: |")
	for _, s := range r.sizes {
		f := median(s.read.fn)
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.1f |\n", count(s.records), s.bytesPerRecord, ms(f.p50), ms(f.p99), perCall(s.read.fnCmds["evalsha_ro"]))
	}
	if c := r.create.fnCmds["evalsha"]; c.calls > 0 {
		fmt.Fprintf(w, "\nRedis time per create script (EVALSHA on the master, commandstats): %.1f µs.\n", perCall(c))
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
	fmt.Fprintln(w, "| layout | searches | search page script in Redis: mean / p99 / max | plain page script: mean | creates p50 / p99 | reads p50 / p99 | reads p99 ratio |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| (alone, no search) | | | | %s / %s | %s / %s | |\n", ms(a.quiet.creates.p50), ms(a.quiet.creates.p99), ms(a.quiet.reads.p50), ms(a.quiet.reads.p99))
	for _, l := range a.layout {
		fmt.Fprintf(w, "| %s | %d | %s / %s / %s | %s | %s / %s | %s / %s | %s |\n", l.name, l.search.calls,
			ms(l.search.mean), ms(l.search.p99), ms(l.search.max), ms(l.plain.mean),
			ms(l.attacked.creates.p50), ms(l.attacked.creates.p99), ms(l.attacked.reads.p50), ms(l.attacked.reads.p99),
			ratio(float64(l.attacked.reads.p99), float64(a.quiet.reads.p99)))
	}
	fmt.Fprintf(w, "\nEach page script ends itself at %s of Redis time (store.SearchTime), read from Redis' clock; "+
		"%d bystander connections create and %d read the 25 newest meanwhile. Script times are the replica's SLOWLOG "+
		"durations (every command logged during the phase); searches are the page scripts with more than one index. "+
		"Aims: a search's page script at most 5 ms, the bystanders' p99 under 50 ms. Layouts: functions/internal/adversary.\n", store.SearchTime, bystander, bystander)

	b.reportClusters(w)

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

// reportHeader prints the report's title and the machine it ran on.
func (b *bench) reportHeader(w io.Writer) {
	r := &b.res
	fmt.Fprintf(w, "\n### cqrs-bench, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "Machine: %s; load average %s before, %s after. Load generator (this process, Go, "+
		"keep-alive, %d connections), functions, baseline and Redis share these CPUs. ", r.machine, r.loadBefore, r.loadAfter, b.opts.conns)
}

// reportClusters prints what a create and a page cost on each Redis Cluster, per
// request and on each node.
func (b *bench) reportClusters(w io.Writer) {
	r := &b.res
	if len(r.clusters) == 0 {
		return
	}
	type col struct {
		name string
		c    clusterCost
	}
	var cols []col
	for _, cr := range r.clusters {
		cols = append(cols, col{"create, " + mastersName(cr.masters), newClusterCost(cr.create, cr.nodes, cr.partitions, "evalsha")})
	}
	for _, cr := range r.clusters {
		cols = append(cols, col{"25 newest, " + mastersName(cr.masters), newClusterCost(cr.page, cr.nodes, cr.partitions, "evalsha_ro")})
	}
	fmt.Fprintf(w, "\n#### The functions on a Redis Cluster: %d partitions, 1 and 3 masters with a replica each\n\n", r.clusters[0].partitions)
	fmt.Fprintf(w, "Each cluster started by the bench on loopback, cqrs-write and cqrs-read on it (REDIS_CLUSTER_ADDRS, "+
		"REDIS_PARTITIONS=%d); %d rounds of %s per workload, the clusters alternating. Script calls: the SLOWLOG of "+
		"the masters during creates and of the replicas during pages, every command kept, in a %s phase apart whose "+
		"last requests are let finish; each node's script time: commandstats, during the rounds. Every node shares "+
		"these cores: the figures are costs, not the throughput of more masters.\n\n",
		r.clusters[0].partitions, b.opts.rounds, b.opts.duration, censusTime)
	fmt.Fprint(w, "| per request |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.name)
	}
	fmt.Fprint(w, "\n| --- |")
	for range cols {
		fmt.Fprint(w, " ---: |")
	}
	fmt.Fprintln(w)
	row := func(name string, f func(c clusterCost) string) {
		fmt.Fprintf(w, "| %s |", name)
		for _, c := range cols {
			fmt.Fprintf(w, " %s |", f(c.c))
		}
		fmt.Fprintln(w)
	}
	row("requests per second (median round), p99", func(c clusterCost) string { return fmt.Sprintf("%.0f, %s", c.rps, ms(c.p99)) })
	row("the function's own CPU", func(c clusterCost) string { return fmt.Sprintf("%.1f µs", c.fnCPU) })
	row("the load generator's CPU", func(c clusterCost) string { return fmt.Sprintf("%.1f µs", c.loadCPU) })
	row("script calls (SLOWLOG, census)", func(c clusterCost) string { return fmt.Sprintf("%.2f", c.scriptCalls) })
	row("their Redis time, all nodes (SLOWLOG, census)", func(c clusterCost) string { return fmt.Sprintf("%.1f µs", c.scriptTime) })
	row("calls per partition, least..most", func(c clusterCost) string {
		return fmt.Sprintf("%.3f..%.3f", c.perPartition[0], c.perPartition[1])
	})
	row("nodes one partition's calls ran on, at most", func(c clusterCost) string { return fmt.Sprint(c.shardsPerPartition) })
	row("calls with keys under two hash tags, or none", func(c clusterCost) string { return fmt.Sprint(c.mixed + c.untagged) })
	if n := requests(r.create.fn); n > 0 && len(r.sizes) > 0 {
		fmt.Fprintf(w, "\nOn one master and its replica (one partition), in the same run: cqrs-write %.1f µs of CPU per create, "+
			"cqrs-read %.1f µs per page of the 25 newest (at %s records).\n", r.create.fnCPU.perRequest(procWrite, n),
			r.sizes[0].read.fnCPU.perRequest(procRead, requests(r.sizes[0].read.fn)), count(r.sizes[0].records))
	}
	fmt.Fprintln(w, "\nEach node's share of a request during the rounds (script calls and their time from commandstats; "+
		"CPU from /proc; partitions from the census):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| workload, cluster | node | CPU | script calls | script time | partitions it ran |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, c := range cols {
		for _, n := range c.c.nodes {
			fmt.Fprintf(w, "| %s | %s | %.1f µs | %.2f | %.1f µs | %d |\n", c.name, n.name, n.cpu, n.calls, n.redis, n.partitions)
		}
	}
}

func mastersName(n int) string {
	if n == 1 {
		return "1 master"
	}
	return fmt.Sprintf("%d masters", n)
}
