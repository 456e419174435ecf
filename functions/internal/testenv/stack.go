package testenv

import (
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
)

// Stack is the whole thing as a user runs it: a Redis master and replica (or a Redis
// Cluster, see ClusterEnv), and the three built services on them.
type Stack struct {
	Backend           *Backend
	Pair              *Pair // Backend.Pair: nil on a cluster
	Write, Read, Page *launch.Proc
}

// StackOptions change a Stack. Env goes to all three services. Front, when set, is
// put between the UI and the write function: it gets the write function's URL and
// returns the URL the UI uses as WRITE_URL. Ready bounds each service's wait for
// readiness (10 s when zero).
type StackOptions struct {
	Env   []string
	Front func(writeURL string) string
	Ready time.Duration
}

// StartStack builds and starts a Stack that lives until the test ends, and waits
// until every service is ready. When the test ends, every line the services logged
// must be a JSON object (CheckLog).
func StartStack(tb testing.TB, opts StackOptions) *Stack {
	tb.Helper()
	b := StartBackend(tb)
	s := &Stack{Backend: b, Pair: b.Pair}
	s.Write = Start(tb, Build(tb, WriteMain), append(b.WriteEnv(), opts.Env...)...)
	s.Read = Start(tb, Build(tb, ReadMain), append(b.ReadEnv(), opts.Env...)...)
	writeURL := s.Write.URL()
	if opts.Front != nil {
		writeURL = opts.Front(writeURL)
	}
	s.Page = Start(tb, Build(tb, UIMain), append([]string{"WRITE_URL=" + writeURL, "READ_URL=" + s.Read.URL()}, opts.Env...)...)
	ready := opts.Ready
	if ready == 0 {
		ready = 10 * time.Second
	}
	for _, p := range []*launch.Proc{s.Write, s.Read, s.Page} {
		Ready(tb, p, ready)
		tb.Cleanup(func() { CheckLog(tb, p.Name, p.Output()) })
	}
	return s
}
