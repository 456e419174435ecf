package testenv

import (
	"os"
	"testing"
)

// missing skips the test, or fails it under CI=true, because a tool is absent.
func missing(tb testing.TB, msg string) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}
