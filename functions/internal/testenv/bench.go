package testenv

import (
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// QuietLogs sends the default logger to a discarding JSON handler for the rest of the
// test or benchmark: the functions still format every log line, as in production, so that cost
// stays in the numbers, but nothing reaches the terminal.
func QuietLogs(b testing.TB) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })
}

// BenchRequests runs one request per iteration, from 16 goroutines per CPU when
// parallel, until b.N are done or one returns false, and reports how many times cmd
// ran on s per request (INFO commandstats): the Redis round trips a request costs;
// and cpu-ns/op, this process' CPU time (user and system, GC included) per request,
// which, unlike ns/op, leaves out the time spent waiting for Redis or for a core.
func BenchRequests(b *testing.B, s *redisproc.Server, cmd string, parallel bool, one func() bool) {
	b.Helper()
	before, err := Calls(s, cmd)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := ProcessCPU()
	if parallel {
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() && one() {
			}
		})
	} else {
		for b.Loop() {
			if !one() {
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(ProcessCPU()-cpu)/float64(b.N), "cpu-ns/op")
	after, err := Calls(s, cmd)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/float64(b.N), cmd+"/op")
}

// ProcessCPU is this process' user and system time so far.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
