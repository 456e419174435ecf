package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// coldStart execs a function runs times and measures exec to the first 200 on
// /health/readiness (Redis connected, scripts loaded).
func (b *bench) coldStart(ctx context.Context, name string, env []string) ([]time.Duration, error) {
	var out []time.Duration
	for range b.opts.coldRuns {
		t := time.Now()
		p, err := b.startProc(name, filepath.Join(b.opts.bin, name), env...)
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
