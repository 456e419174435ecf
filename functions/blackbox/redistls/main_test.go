// Package redistls tests the functions against Redis as managed offerings run it:
// over TLS only, with ACL users of the least privileges the documentation gives,
// with Sentinel too, and what a wrong certificate, user or grant does to them.
package redistls

import (
	"os"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMain keeps the in-process functions' logs and go-redis' own lines (the tests
// provoke refusals and failovers on purpose) out of the test output, and removes the
// binaries that the tests built once they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.RunQuiet(m)) }
