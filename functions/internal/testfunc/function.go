// Package testfunc serves this project's functions in-process on real Redis, the way
// the runtime serves them, for tests of the functions and of the whole stack.
package testfunc

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// Function is an instanced function as the runtime serves it.
type Function interface {
	serve.Handler
	Start(ctx context.Context, cfg map[string]string) error
	Stop(ctx context.Context) error
}

// quiet keeps the functions' log lines (one per create, every refusal and fault they
// meet on purpose) out of the tests' output.
var quiet sync.Once

// Serve starts f and serves it in-process the way the runtime does (health, metrics,
// instrumentation) with its default settings until the test ends.
func Serve(tb testing.TB, f Function) *httptest.Server {
	tb.Helper()
	return ServeWith(tb, f, serve.DefaultConfig())
}

// ServeWith is Serve with the runtime's settings rc.
func ServeWith(tb testing.TB, f Function, rc serve.Config) *httptest.Server {
	tb.Helper()
	quiet.Do(func() { slog.SetDefault(slog.New(slog.DiscardHandler)) })
	if err := f.Start(context.Background(), nil); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(serve.Mux(f, rc))
	tb.Cleanup(func() { srv.Close(); f.Stop(context.Background()) })
	return srv
}

// Write serves the write function on master, with edit applied to its default
// configuration.
func Write(tb testing.TB, master *redisproc.Server, edit func(*write.Config)) *httptest.Server {
	tb.Helper()
	cfg := write.DefaultConfig()
	cfg.RedisAddr = master.Addr()
	if edit != nil {
		edit(&cfg)
	}
	return Serve(tb, write.NewWithConfig(cfg))
}

// Read serves the read function on the pair's replica, with the master as its
// fallback, and edit applied to its default configuration.
func Read(tb testing.TB, pair *testenv.Pair, edit func(*read.Config)) *httptest.Server {
	tb.Helper()
	cfg := read.DefaultConfig()
	cfg.RedisAddr, cfg.RedisMasterAddr = pair.Replica.Addr(), pair.Master.Addr()
	if edit != nil {
		edit(&cfg)
	}
	return Serve(tb, read.NewWithConfig(cfg))
}

// WriteOn serves the write function on backend b (its masters), with edit applied to
// its default configuration.
func WriteOn(tb testing.TB, b *testenv.Backend, edit func(*write.Config)) *httptest.Server {
	tb.Helper()
	cfg := write.DefaultConfig()
	onBackend(&cfg.Redis, b, false)
	if edit != nil {
		edit(&cfg)
	}
	return Serve(tb, write.NewWithConfig(cfg))
}

// ReadOn serves the read function on backend b (its replicas, with its masters as
// the fallback), with edit applied to its default configuration.
func ReadOn(tb testing.TB, b *testenv.Backend, edit func(*read.Config)) *httptest.Server {
	tb.Helper()
	cfg := read.DefaultConfig()
	onBackend(&cfg.Redis, b, true)
	if b.Pair != nil {
		cfg.RedisMasterAddr = b.Pair.Master.Addr()
	}
	if edit != nil {
		edit(&cfg)
	}
	return Serve(tb, read.NewWithConfig(cfg))
}

func onBackend(r *redisenv.Redis, b *testenv.Backend, reading bool) {
	if b.Cluster != nil {
		r.RedisClusterAddrs, r.RedisPartitions = b.Cluster.Addrs(), testenv.ClusterPartitions
		return
	}
	r.RedisAddr = b.Pair.Master.Addr()
	if reading {
		r.RedisAddr = b.Pair.Replica.Addr()
	}
}
