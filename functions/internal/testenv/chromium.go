package testenv

import (
	"os/exec"
	"testing"
)

// Chromium returns the path of Debian's chromium.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	missing(tb, "chromium is not installed; run make test, which installs it")
	return ""
}
