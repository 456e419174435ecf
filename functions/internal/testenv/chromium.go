package testenv

import (
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium returns the path of Debian's chromium.
func Chromium(tb testing.TB) string {
	tb.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Missing(tb, "chromium is not installed; run make test, which installs it")
	return ""
}

// ChromiumOptions starts Debian's chromium headless, with a fresh profile, and
// without the background traffic (updates, sync, safe browsing lists) that would try
// to leave the machine.
func ChromiumOptions(tb testing.TB) []chromedp.ExecAllocatorOption {
	tb.Helper()
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Chromium(tb)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(tb.TempDir()),
		// Chromium makes a directory for its singleton socket in TMPDIR and removes it
		// only when it exits cleanly; the test's own directory goes whatever happens.
		chromedp.Env("TMPDIR=" + tb.TempDir()),
	}
}
