package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stats is what one load phase measured.
type stats struct {
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
}

// summarize is the stats of the latencies l of requests completed in el (errors not
// counted); it sorts l. Percentiles are nearest-rank: the p-th is the smallest
// latency that at least p percent of the requests did not exceed.
func summarize(l []time.Duration, el time.Duration) stats {
	if len(l) == 0 {
		return stats{}
	}
	slices.Sort(l)
	rank := func(p int) time.Duration { return l[(len(l)*p+99)/100-1] }
	return stats{requests: len(l), rps: float64(len(l)) / el.Seconds(), p50: rank(50), p99: rank(99)}
}

// maxRequests bounds a load phase by count as well as by time.
const maxRequests = 2_000_000

// request sends one request of a load phase on c, from worker w, its i-th.
type request func(ctx context.Context, c *http.Client, w, i int) error

// load runs do from conns workers, each with its own keep-alive connection, until d
// has passed (or maxRequests were sent) and returns throughput and latency
// percentiles over every request sent. A request that fails counts as an error; more
// than 1% errors fails the phase.
func (b *bench) load(ctx context.Context, conns int, d time.Duration, do request) (stats, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	return load(ctx, conns, d, func(ctx context.Context, w, i int) error { return do(ctx, c, w, i) })
}

func load(ctx context.Context, conns int, d time.Duration, do func(ctx context.Context, worker, i int) error) (stats, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sent atomic.Int64
	var errs atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conns {
		wg.Go(func() {
			own := make([]time.Duration, 0, 1<<14)
			for i := 0; ctx.Err() == nil && sent.Add(1) <= maxRequests; i++ {
				t := time.Now()
				err := do(ctx, w, i)
				if ctx.Err() != nil && err != nil {
					break // cut off by the end of the phase, not a failure
				}
				own = append(own, time.Since(t))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
			lat[w] = own
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return stats{}, errors.New("no request completed")
	}
	s := summarize(all, elapsed)
	s.errors = int(errs.Load())
	if s.errors*100 > s.requests {
		return s, fmt.Errorf("%d of %d requests failed, first: %v", s.errors, s.requests, firstErr.Load())
	}
	return s, nil
}

// newClient is a keep-alive client with one connection per worker.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// send does one request and reads the whole answer, so the connection is reused.
func send(ctx context.Context, c *http.Client, method, url string, body []byte, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
	}
	return err
}

// redisBenchmark runs redis-benchmark for one command against 127.0.0.1:port and
// parses its CSV line (rps and latency percentiles in milliseconds).
func redisBenchmark(ctx context.Context, port int, test string, conns, n int) (stats, error) {
	path, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return stats{}, errors.New("redis-benchmark is not installed (Debian/Ubuntu: apt-get install redis-tools)")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", strconv.Itoa(conns), "-n", strconv.Itoa(n), "-P", "1", "-t", test, "--csv")
	out, err := cmd.Output()
	if err != nil {
		return stats{}, fmt.Errorf("redis-benchmark -t %s: %w", test, err)
	}
	return parseRedisBenchmark(out, n)
}

func parseRedisBenchmark(out []byte, n int) (stats, error) {
	r := csv.NewReader(bufio.NewReader(bytes.NewReader(out)))
	recs, err := r.ReadAll()
	if err != nil || len(recs) < 2 {
		return stats{}, fmt.Errorf("redis-benchmark printed %q, want a CSV header and a line", out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	line := recs[1]
	num := func(name string) (float64, error) {
		i, ok := col[name]
		if !ok || i >= len(line) {
			return 0, fmt.Errorf("redis-benchmark CSV has no %s column: %q", name, strings.Join(recs[0], ","))
		}
		return strconv.ParseFloat(line[i], 64)
	}
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	var s stats
	var p50, p99 float64
	if s.rps, err = num("rps"); err != nil {
		return s, err
	}
	if p50, err = num("p50_latency_ms"); err != nil {
		return s, err
	}
	if p99, err = num("p99_latency_ms"); err != nil {
		return s, err
	}
	s.p50, s.p99, s.requests = ms(p50), ms(p99), n
	return s, nil
}
