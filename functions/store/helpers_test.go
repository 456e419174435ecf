package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// dump returns a digest of every key of s and its value (not its time to live), so a
// test can tell that a refused command changed nothing.
func dump(t *testing.T, s *redisproc.Server) string {
	t.Helper()
	ctx := context.Background()
	c := NewClient(Options{Addr: s.Addr()})
	defer c.Close()
	var keys []string
	iter := c.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		v, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatalf("DUMP %q: %v", k, err)
		}
		fmt.Fprintf(h, "%q=%q\n", k, v)
	}
	return fmt.Sprintf("%d keys, %x", len(keys), h.Sum(nil)[:8])
}
