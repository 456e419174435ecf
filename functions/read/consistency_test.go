package read

import (
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// TestWorstPartitionDecides: a page's partitions that answered differently are
// handled as the one that asks the most: moving over another history over behind.
func TestWorstPartitionDecides(t *testing.T) {
	for _, tt := range []struct {
		statuses []store.Status
		want     store.Status
	}{
		{nil, store.Served},
		{[]store.Status{store.Served, store.Served}, store.Served},
		{[]store.Status{store.Served, store.Behind}, store.Behind},
		{[]store.Status{store.OtherHistory, store.Behind}, store.OtherHistory},
		{[]store.Status{store.Behind, store.Moving, store.OtherHistory}, store.Moving},
		{[]store.Status{store.Moving, store.Served}, store.Moving},
	} {
		if got := pageOutcome(store.DocPage{Status: tt.statuses}).status; got != tt.want {
			t.Errorf("pageOutcome of %v: got status %v, want %v", tt.statuses, got, tt.want)
		}
	}
}
