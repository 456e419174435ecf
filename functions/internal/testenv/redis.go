package testenv

import (
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// Pair is a running master and its replica.
type Pair struct {
	Master  *redisproc.Server
	Replica *redisproc.Server
}

// RequireRedis skips the test (fails under CI=true) when redis-server is missing.
func RequireRedis(tb testing.TB) {
	tb.Helper()
	if _, err := redisproc.Binary(); err != nil {
		Missing(tb, err.Error()+"; run make test, which installs it")
	}
}

// Master starts a lone master, killed when the test ends.
func Master(tb testing.TB, extra ...string) *redisproc.Server {
	tb.Helper()
	RequireRedis(tb)
	m, err := redisproc.StartMaster(tb.TempDir(), 0, extra...)
	if err != nil {
		tb.Fatalf("start master: %v", err)
	}
	tb.Cleanup(func() { m.Kill() })
	return m
}

// Redis starts a master and a replica, each in a directory of its own, and waits
// until the replica is in sync.
func Redis(tb testing.TB) *Pair {
	tb.Helper()
	m := Master(tb)
	r, err := redisproc.StartReplica(tb.TempDir(), 0, m)
	if err != nil {
		tb.Fatalf("start replica: %v", err)
	}
	tb.Cleanup(func() { r.Kill() })
	if err := r.WaitLinkUp(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return &Pair{Master: m, Replica: r}
}

// Calls returns how many times cmd ran on s since it started (INFO commandstats).
func Calls(s *redisproc.Server, cmd string) (int, error) {
	calls, _, err := CommandStats(s, cmd)
	return calls, err
}

// CommandStats returns how many times cmd ran on s and its mean time in Redis per
// call, in microseconds (INFO commandstats).
func CommandStats(s *redisproc.Server, cmd string) (calls int, usecPerCall float64, err error) {
	v, err := s.Info("commandstats", "cmdstat_"+cmd)
	if err != nil || v == "" {
		return 0, 0, err
	}
	c, err := redisproc.ParseCommandStat(v)
	if err != nil {
		return 0, 0, err
	}
	return int(c.Calls), c.UsecPerCall, nil
}
