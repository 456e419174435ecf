// Package redistest gives tests a real Redis master and replica on free loopback
// ports, stopped when the test ends. Without redis-server the test is skipped, except
// under CI=true, where it fails: a missing tool must never look like a pass.
package redistest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// Pair is a running master and its replica.
type Pair struct {
	Master  *redisproc.Server
	Replica *redisproc.Server
}

// Require skips the test (fails under CI=true) when redis-server is missing.
func Require(tb testing.TB) {
	tb.Helper()
	if _, err := redisproc.Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%v; run make test, which installs it", err)
		}
		tb.Skipf("%v; run make test, which installs it", err)
	}
}

// Master starts a lone master.
func Master(tb testing.TB, extra ...string) *redisproc.Server {
	tb.Helper()
	Require(tb)
	m, err := redisproc.StartMaster(tb.TempDir(), 0, extra...)
	if err != nil {
		tb.Fatalf("start master: %v", err)
	}
	tb.Cleanup(func() { m.Kill() })
	return m
}

// Start starts a master and a replica and waits until the replica is in sync.
func Start(tb testing.TB) *Pair {
	tb.Helper()
	m := Master(tb)
	r, err := redisproc.StartReplica(m.Dir, 0, m)
	if err != nil {
		tb.Fatalf("start replica: %v", err)
	}
	tb.Cleanup(func() { r.Kill() })
	if err := r.WaitLinkUp(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return &Pair{Master: m, Replica: r}
}

// Commands returns how many times cmd ran on s since it started (INFO commandstats).
func Commands(s *redisproc.Server, cmd string) (int, error) {
	v, err := s.Info("commandstats", "cmdstat_"+cmd)
	if err != nil {
		return 0, err
	}
	if v == "" {
		return 0, nil
	}
	for _, kv := range strings.Split(v, ",") {
		if n, ok := strings.CutPrefix(kv, "calls="); ok {
			calls, err := strconv.Atoi(n)
			if err != nil {
				return 0, fmt.Errorf("bad commandstats %q: %w", v, err)
			}
			return calls, nil
		}
	}
	return 0, fmt.Errorf("no calls in commandstats %q", v)
}
