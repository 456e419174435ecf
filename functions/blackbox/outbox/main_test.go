// Package outbox tests the outbox through the built functions: every record, through
// every door, published once to a real HTTP sink; a relay killed before it publishes;
// a sink down, refusing, and the cap.
package outbox

import (
	"os"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMain removes the binaries that the tests built once they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
