//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestPageThroughRoute: the page served by cqrs-ui's route in headless Chromium,
// the route's host mapped to the ingress; save on the left, find it on the right.
// The page's proxy reaches the functions by their cluster-local routes.
func TestPageThroughRoute(t *testing.T) {
	uiHost := hostOf(t, urls["cqrs-ui"])
	opts := testenv.ChromiumOptions(t)
	if ingress != "" {
		h, p, err := net.SplitHostPort(ingress)
		if err != nil {
			t.Fatal(err)
		}
		// The route's host resolves to the ingress; nothing else resolves.
		rule := fmt.Sprintf("MAP %s %s, MAP * ~NOTFOUND", uiHost, h)
		if p != "80" {
			rule = fmt.Sprintf("MAP %s %s:%s, MAP * ~NOTFOUND", uiHost, h, p)
		}
		opts = append(opts, chromedp.Flag("host-resolver-rules", rule))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()

	run := func(what string, d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("%s: %v (page says: %s)", what, err, testenv.PageStatus(ctx))
		}
	}
	waitFor := func(what, expr string, d time.Duration) {
		t.Helper()
		run(what, d+5*time.Second, chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(50*time.Millisecond))(c, tg)
			return err
		}))
	}

	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(urls["cqrs-ui"]+"/")); err != nil {
		t.Fatalf("navigate to %s: %v", urls["cqrs-ui"], err)
	}
	// A function behind the page may be at zero: its first answer can take seconds.
	waitFor("the first query on load", `document.getElementById('query-status').textContent.endsWith('.')`, 60*time.Second)
	t.Logf("page loaded and first query answered in %s", time.Since(start).Round(time.Millisecond))

	word := nonce()
	text := "saved in the browser through the route " + word
	run("fill and save", 30*time.Second,
		testenv.SetValue("add-type", "rvw"),
		testenv.SetValue("add-text", ""),
		chromedp.SendKeys(chromedp.ID("add-text"), text),
		chromedp.Click(chromedp.ID("save")),
	)
	waitFor("the saved seq", `/seq \d+/.test(document.getElementById('saved').textContent)`, 60*time.Second)
	saved, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('saved').textContent`))
	seq := regexp.MustCompile(`seq (\d+)`).FindStringSubmatch(saved)
	t.Logf("left pane: %q", saved)

	run("search", 30*time.Second,
		testenv.SetValue("q-type", "rvw"),
		testenv.SetValue("q-words", ""),
		chromedp.Evaluate[chromedp.Void](`document.getElementById('query-status').textContent = ''`),
		chromedp.SendKeys(chromedp.ID("q-words"), word+"\r"),
	)
	waitFor("the search answer", `/records?, newest first|No records/.test(document.getElementById('query-status').textContent) || !document.getElementById('query-error').hidden`, 60*time.Second)
	type shown struct{ Type, Seq, Text string }
	c, cancelEval := context.WithTimeout(ctx, 10*time.Second)
	defer cancelEval()
	got, err := chromedp.Run(c, chromedp.Evaluate[[]shown](`Array.from(document.querySelectorAll('#results li')).map(li => ({
		Type: li.querySelector('.tag').textContent, Seq: li.querySelector('.seq').textContent, Text: li.querySelector('.text').textContent}))`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Text != text || got[0].Type != "Review" || seq == nil || got[0].Seq != "seq "+seq[1] {
		t.Fatalf("right pane: got %+v, want the one Review %q with %v (page says: %s)", got, text, seq, testenv.PageStatus(ctx))
	}
	t.Logf("right pane found %+v", got[0])
	if shot := os.Getenv("CQRS_E2E_SCREENSHOT"); shot != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(90)); err == nil {
			_ = os.WriteFile(shot, png, 0o644)
		}
	}
}
