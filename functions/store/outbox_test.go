package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// TestOutboxTakeSettle: with the outbox on, every create writes an entry in the same
// step; the lease holder takes them in seq order with their documents, another relay
// is told the lease is held, published entries leave, untried ones keep their
// delivery count, and an entry taken again after its relay vanished counts a second
// delivery.
func TestOutboxTakeSettle(t *testing.T) {
	m, _, _ := newStores(t)
	m.WithOutbox(1000)
	ctx := context.Background()
	var made []Created
	for i := range 5 {
		made = append(made, mustCreate(t, m, "bp", fmt.Sprintf("event %d", i), ""))
	}
	const lease = 300 * time.Millisecond
	b, err := m.Take(ctx, 0, "relay-a", lease, 3, 0, 0)
	if err != nil || b.Held || b.Pending != 5 || len(b.Entries) != 3 {
		t.Fatalf("Take = %+v, %v; want 3 of 5 pending entries", b, err)
	}
	for i, e := range b.Entries {
		var rec record.Record
		json.Unmarshal(e.Doc, &rec)
		if e.Record != made[i].ID || e.At != made[i].At || string(e.Doc) != string(made[i].Doc) || e.Deliveries != 1 ||
			rec.CreatedAt.Sub(e.Created).Abs() > time.Millisecond {
			t.Errorf("entry %d = %+v, want record %s at %v, its document, one delivery, its create time", i, e, made[i].ID, made[i].At)
		}
	}
	if b2, err := m.Take(ctx, 0, "relay-b", lease, 3, 0, 0); err != nil || !b2.Held {
		t.Errorf("Take by another relay while the lease is held = %+v, %v; want Held", b2, err)
	}
	// The first published, the second and third not tried.
	left, err := m.Settle(ctx, 0, "relay-a", lease, b.Entries[:1], b.Entries[1:], nil, "")
	if err != nil || left != 4 {
		t.Fatalf("Settle = %d, %v; want 4 entries left", left, err)
	}
	b, err = m.Take(ctx, 0, "relay-a", lease, 10, 0, 0)
	if err != nil || len(b.Entries) != 4 || b.Entries[0].Record != made[1].ID || b.Entries[0].Deliveries != 1 {
		t.Fatalf("Take after Settle = %+v, %v; want 4 entries from %s, untried ones at one delivery", b, err, made[1].ID)
	}
	// relay-a vanishes holding them; once its lease has run out relay-b takes them
	// again, a second delivery each.
	time.Sleep(lease + 50*time.Millisecond)
	b, err = m.Take(ctx, 0, "relay-b", lease, 10, 0, 0)
	if err != nil || b.Held || len(b.Entries) != 4 || b.Entries[0].Deliveries != 2 {
		t.Fatalf("Take after the lease ran out = %+v, %v; want the 4 entries, a second delivery", b, err)
	}
	if left, err := m.Settle(ctx, 0, "relay-b", lease, b.Entries, nil, nil, ""); err != nil || left != 0 {
		t.Errorf("Settle all = %d, %v; want none left", left, err)
	}
	if err := m.Release(ctx, 0, "relay-b"); err != nil {
		t.Fatal(err)
	}
	if b, err := m.Take(ctx, 0, "relay-c", lease, 10, 0, 0); err != nil || b.Held {
		t.Errorf("Take after Release = %+v, %v; want the lease free", b, err)
	}
}

// TestOutboxDeadLetterAndCap: an entry given up on moves to the dead-letter stream
// with its reason, and at OUTBOX_MAX_PENDING entries a create is refused with its own
// code and changes nothing.
func TestOutboxDeadLetterAndCap(t *testing.T) {
	m, _, pair := newStores(t)
	m.WithOutbox(3)
	ctx := context.Background()
	for i := range 3 {
		mustCreate(t, m, "bp", fmt.Sprintf("event %d", i), "")
	}
	before := dump(t, pair.Master)
	_, err := m.Create(ctx, NewRecord{Tag: "over", Type: "bp", Text: "one too many"}, 0, 0)
	if got := fail.Code(err); got != fail.EOUTBOX || !strings.Contains(err.Error(), "3 unpublished events") {
		t.Errorf("create at the cap: %q (%v), want %q naming the cap", got, err, fail.EOUTBOX)
	}
	if after := dump(t, pair.Master); after != before {
		t.Errorf("a refused create changed the store:\nbefore %s\nafter  %s", before, after)
	}
	b, err := m.Take(ctx, 0, "relay", time.Second, 10, 0, 0)
	if err != nil || len(b.Entries) != 3 {
		t.Fatalf("Take = %+v, %v", b, err)
	}
	if _, err := m.Settle(ctx, 0, "relay", time.Second, b.Entries[:1], b.Entries[2:], b.Entries[1:2], "the sink refused it: 400 Bad Request"); err != nil {
		t.Fatal(err)
	}
	st, err := m.Outbox(ctx)
	if err != nil || st.Pending != 1 || st.Dead != 1 || st.Oldest.IsZero() {
		t.Errorf("Outbox = %+v, %v; want 1 pending, 1 dead, an oldest time", st, err)
	}
	dead, err := m.rdb.XRange(ctx, part(0).key(deadName), "-", "+").Result()
	if err != nil || len(dead) != 1 || dead[0].Values["id"] != b.Entries[1].Record || !strings.Contains(fmt.Sprint(dead[0].Values["reason"]), "400") {
		t.Errorf("dead letters %+v, %v; want %s with its reason", dead, err, b.Entries[1].Record)
	}
	if c := mustCreate(t, m, "bp", "room again", ""); !c.New {
		t.Errorf("create below the cap again: %+v", c)
	}
}

// TestOutboxOff: without the outbox a create writes no entry.
func TestOutboxOff(t *testing.T) {
	m, _, pair := newStores(t)
	mustCreate(t, m, "bp", "not published", "")
	if n, err := pair.Master.Do("EXISTS", part(0).key(outboxName)); err != nil || n != "0" {
		t.Errorf("outbox stream exists: %s %v; want none without the outbox", n, err)
	}
}

// TestOutboxWaitsForReplicas: Take with replicas > 0 reports how many replicas have
// everything the master had when the entries were read.
func TestOutboxWaitsForReplicas(t *testing.T) {
	m, _, pair := newStores(t)
	m.WithOutbox(100)
	ctx := context.Background()
	mustCreate(t, m, "bp", "replicated", "")
	if err := pair.Replica.WaitLinkUp(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := m.Take(ctx, 0, "relay", time.Second, 10, 1, time.Second)
	if err != nil || b.Acked != 1 || len(b.Entries) != 1 {
		t.Errorf("Take with a replica = %+v, %v; want one entry, acked by 1", b, err)
	}
	if err := pair.Replica.Kill(); err != nil {
		t.Fatal(err)
	}
	b, err = m.Take(ctx, 0, "relay", time.Second, 10, 1, 50*time.Millisecond)
	if err != nil || b.Acked != 0 {
		t.Errorf("Take without a replica = %+v, %v; want acked by none", b, err)
	}
}
