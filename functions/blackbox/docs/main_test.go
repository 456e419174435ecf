package docs

import (
	"os"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMain removes the binaries that the tests built once they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
