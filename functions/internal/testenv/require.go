package testenv

import (
	"os"
	"testing"
)

// Missing skips the test, or fails it under CI=true, because a tool is absent.
func Missing(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}
