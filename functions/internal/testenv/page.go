package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// SetValue sets the value of the page's element with id and fires input and change,
// as the end of a user's typing or choosing does.
func SetValue(id, value string) chromedp.Action[chromedp.Void] {
	idJSON, _ := json.Marshal(id)
	valueJSON, _ := json.Marshal(value)
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const c = document.getElementById(%s); c.value = %s;
		c.dispatchEvent(new Event('input', {bubbles: true})); c.dispatchEvent(new Event('change', {bubbles: true})); })()`, idJSON, valueJSON))
}

// PageStatus is what the UI's page says in its status lines (saved, replica, the
// errors, the query's status), for a test's failure message; "" when the page does
// not answer within 2 s.
func PageStatus(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`['saved','replica','add-error','query-status','query-error'].map(id => id + '=' + (document.getElementById(id) || {}).textContent).join(' | ')`))
	return strings.TrimSpace(s)
}
