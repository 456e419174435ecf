package faults_test

import (
	"os"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMain keeps the functions' per-request logs and go-redis' dial and failover
// lines out of the test output, and removes the binaries that the tests built once
// they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.RunQuiet(m)) }
