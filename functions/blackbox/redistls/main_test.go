// Package redistls tests the functions against Redis as managed offerings run it:
// over TLS only, with ACL users of the least privileges the documentation gives,
// with Sentinel too, and what a wrong certificate, user or grant does to them.
package redistls

import (
	"context"
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// quiet drops go-redis' own log lines: the tests provoke refusals and failovers on
// purpose and look at what the functions make of them.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// TestMain keeps the in-process functions' logs out of the test output and removes
// the binaries that the tests built once they have all run.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	redis.SetLogger(quiet{})
	os.Exit(testenv.Run(m))
}
