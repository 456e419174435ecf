package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestEpochIdentifiesAHistory: the first create writes the partition's epoch and
// every later create keeps it; a store emptied and written again (a master restarted
// without its data) gets a new one, so a token or cursor of the old history is never
// served by it, on the master or on a replica that still holds the old history.
func TestEpochIdentifiesAHistory(t *testing.T) {
	m, r, pair := newStores(t)
	ctx := context.Background()
	first := mustCreate(t, m, "bp", "first history", "")
	second := mustCreate(t, m, "bp", "first history again", "")
	if second.At.Epoch != first.At.Epoch {
		t.Fatalf("epochs %q then %q, want one epoch per history", first.At.Epoch, second.At.Epoch)
	}
	waitSeq(t, r, 2)
	old := Token{second.At}
	if p, err := r.PageNeed(ctx, Query{Limit: 5}, Need{Token: old}); err != nil || !p.Served() || len(p.Records) != 2 {
		t.Fatalf("page with the history's own token = %+v, %v; want both records", p, err)
	}
	oldCursor := Cursor{{Epoch: first.At.Epoch, Seq: 2}}

	// The replica is cut off and keeps the old history; the master starts afresh.
	if _, err := pair.Replica.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Master.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	fresh := mustCreate(t, m, "bp", "second history", "")
	if fresh.Seq != 1 || fresh.At.Epoch == first.At.Epoch {
		t.Fatalf("create after the reset = %+v; want seq 1 under a new epoch (old %q)", fresh, first.At.Epoch)
	}
	for name, s := range map[string]*Store{"master": m, "replica of the old history": r} {
		want := OtherHistory
		if s == r {
			want = Served // it still is the old history
		}
		p, err := s.PageNeed(ctx, Query{Limit: 5}, Need{Token: old})
		if err != nil || p.Status[0] != want {
			t.Errorf("%s: page with the old token: status %v, %v; want %v", name, p.Status, err, want)
		}
		g, err := s.GetDoc(ctx, first.ID, Need{Token: old})
		if err != nil || g.Status != want {
			t.Errorf("%s: GetDoc with the old token: %+v, %v; want status %v", name, g, err, want)
		}
		if p, err := s.PageNeed(ctx, Query{Limit: 5, Cursor: oldCursor}, Need{}); err != nil || p.Status[0] != want {
			t.Errorf("%s: page with a cursor of the old history: status %v, %v; want %v", name, p.Status, err, want)
		}
	}
	// The numeric minSeq cannot tell: the new history's seq 1 satisfies minSeq 1.
	if p, err := m.PageNeed(ctx, Query{Limit: 5}, Need{MinSeq: 1}); err != nil || !p.Served() {
		t.Errorf("page with minSeq 1 after the reset = %+v, %v; want served (minSeq cannot detect a reset)", p, err)
	}
	// A token of the new history is not served by the replica of the old one.
	if p, err := r.PageNeed(ctx, Query{Limit: 5}, Need{Token: Token{fresh.At}}); err != nil || p.Status[0] != OtherHistory {
		t.Errorf("old replica, new token: status %v, %v; want OtherHistory", p.Status, err)
	}
}

// TestReplicaBehindIsNotServed: a replica that has not applied the token's seq says
// so, at no cost, and serves once it has.
func TestReplicaBehindIsNotServed(t *testing.T) {
	m, r, pair := newStores(t)
	ctx := context.Background()
	mustCreate(t, m, "bp", "one", "")
	waitSeq(t, r, 1)
	if err := pair.Replica.Stop(); err != nil {
		t.Fatal(err)
	}
	c := mustCreate(t, m, "bp", "two", "")
	if err := pair.Replica.Start(); err != nil {
		t.Fatal(err)
	}
	// Stopped without saving, the replica comes back empty and syncs; until then it
	// is behind (or has no epoch yet), never served.
	need := Need{Token: Token{c.At}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := r.PageNeed(ctx, Query{Limit: 5}, need)
		if err == nil && p.Served() {
			if len(p.Records) != 2 || p.Records[0].ID != c.ID {
				t.Fatalf("served page = %+v; want both records, %s first", p.Records, c.ID)
			}
			break
		}
		if err == nil && len(p.Records) != 0 {
			t.Fatalf("a page that is not served holds records: %+v", p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica never served the token: %+v, %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCreateAtStringLimitChangesNothing: an index that would grow past Redis'
// proto-max-bulk-len fails APPEND inside the script; the create script checks the
// limit before its first write, so the create is refused with its own code and the
// store is as it was.
func TestCreateAtStringLimitChangesNothing(t *testing.T) {
	m, _, pair := newStores(t)
	ctx := context.Background()
	mustCreate(t, m, "bp", "one", "")
	const limit = 1 << 20 // the lowest proto-max-bulk-len Redis takes
	if _, err := pair.Master.Do("CONFIG", "SET", "proto-max-bulk-len", strconv.Itoa(limit)); err != nil {
		t.Fatal(err)
	}
	l, err := m.Limits(ctx)
	if err != nil || l.MaxBulk != limit {
		t.Fatalf("Limits = %+v, %v; want MaxBulk %d", l, err, limit)
	}
	// The all index filled to 2 bytes short of the limit: the next entry cannot fit.
	if _, err := pair.Master.Do("SETRANGE", part(0).key(allName), strconv.Itoa(limit-3), "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Master.Do("APPEND", part(0).key(allName), "abcd"); err == nil || !strings.Contains(err.Error(), "string exceeds maximum allowed size") {
		t.Fatalf("APPEND past the limit: %v; want Redis to refuse it (the test's premise)", err)
	}
	before := dump(t, pair.Master)
	_, err = m.Create(ctx, NewRecord{Tag: "x", Type: "cmt", Text: "brand new words", Claim: HTTPClaim("k")}, 0, 0)
	if got := fail.Code(err); got != fail.ELIMIT || !strings.Contains(err.Error(), "proto-max-bulk-len") {
		t.Errorf("create at the limit: code %q (%v), want %q naming proto-max-bulk-len", got, err, fail.ELIMIT)
	}
	if after := dump(t, pair.Master); after != before {
		t.Errorf("a refused create changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

// TestCreateOnFullRedis: at maxmemory under noeviction Redis refuses the script's
// first write, so the create changes nothing and says the store is full; once there
// is room it stores again.
func TestCreateOnFullRedis(t *testing.T) {
	m, _, pair := newStores(t)
	ctx := context.Background()
	mustCreate(t, m, "bp", "one", "")
	// One byte: whatever the data set, Redis is over it.
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if _, err := pair.Master.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	before := dump(t, pair.Master)
	_, err := m.Create(ctx, NewRecord{Tag: "x", Type: "bp", Text: "no room", Claim: HTTPClaim("k")}, 0, 0)
	if got := fail.Code(err); got != fail.EFULL || !strings.Contains(err.Error(), "maxmemory") {
		t.Errorf("create on a full Redis: code %q (%v), want %q naming maxmemory", got, err, fail.EFULL)
	}
	if after := dump(t, pair.Master); after != before {
		t.Errorf("a refused create changed the store:\nbefore %s\nafter  %s", before, after)
	}
	if l, err := m.Limits(ctx); err != nil || l.Evicts() || l.MaxMemory == 0 {
		t.Errorf("Limits = %+v, %v; want maxmemory set and no eviction", l, err)
	}
	if _, err := pair.Master.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	if c := mustCreate(t, m, "bp", "room again", HTTPClaim("k")); c.Seq != 2 {
		t.Errorf("create after room was made: seq %d, want 2", c.Seq)
	}
}

func TestLimitsEvicts(t *testing.T) {
	ctx := context.Background()
	master := testenv.Master(t)
	s := New(NewClient(Options{Addr: master.Addr()}))
	for _, tt := range []struct {
		maxmemory, policy string
		want              bool
	}{
		{"0", "volatile-lru", false}, // no limit: nothing is ever evicted
		{"100mb", "noeviction", false},
		{"100mb", "volatile-lru", true},
		{"100mb", "volatile-ttl", true},
		{"100mb", "allkeys-lru", true},
	} {
		for _, kv := range [][2]string{{"maxmemory", tt.maxmemory}, {"maxmemory-policy", tt.policy}} {
			if _, err := master.Do("CONFIG", "SET", kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		l, err := s.Limits(ctx)
		if err != nil || l.Policy != tt.policy || l.Evicts() != tt.want {
			t.Errorf("maxmemory %s %s: Limits = %+v (Evicts %v), %v; want Evicts %v", tt.maxmemory, tt.policy, l, l.Evicts(), err, tt.want)
		}
	}
}

// TestCreatedAtFormat runs create.lua's time formatting for many times from 1970 to
// 2400 and compares it with Go's: the create time comes from Redis' clock, formatted
// in Lua, and must be the instant Redis read, as RFC 3339 with six digits.
func TestCreatedAtFormat(t *testing.T) {
	master := testenv.Master(t)
	start := strings.Index(createLua, "-- (rfc3339 begins)")
	end := strings.Index(createLua, "-- (rfc3339 ends)")
	if start < 0 || end < 0 {
		t.Fatal("create.lua has no rfc3339 function between its markers")
	}
	script := createLua[start:end] + `
local out = {}
for i = 1, #ARGV, 2 do out[#out + 1] = rfc3339(tonumber(ARGV[i]), tonumber(ARGV[i + 1])) end
return out`
	rng := rand.New(rand.NewPCG(1, 2))
	var args []any
	var want []string
	add := func(tm time.Time) {
		args = append(args, tm.Unix(), tm.Nanosecond()/1000)
		want = append(want, tm.UTC().Format("2006-01-02T15:04:05.000000Z"))
	}
	for _, s := range []string{"1970-01-01T00:00:00Z", "2000-02-29T23:59:59.999999Z", "2100-03-01T00:00:00Z",
		"2024-12-31T23:59:59Z", "2026-12-04T21:37:34.5Z", "2399-12-31T23:59:59.000001Z"} {
		tm, _ := time.Parse(time.RFC3339Nano, s)
		add(tm)
	}
	for range 3000 {
		add(time.Unix(rng.Int64N(13569465600), rng.Int64N(1e9)))
	}
	c := NewClient(Options{Addr: master.Addr()})
	defer c.Close()
	got, err := c.Eval(context.Background(), script, nil, args...).StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rfc3339(%v, %v) = %q, want %q", args[2*i], args[2*i+1], got[i], want[i])
		}
	}
}

// TestLimitsWithoutConfig: a user without CONFIG (as on managed Redis) gets the limits
// from INFO alone, Redis' default proto-max-bulk-len, and is refused CONFIG GET once:
// the checks that follow do not ask again, so Redis' ACL LOG keeps one entry.
func TestLimitsWithoutConfig(t *testing.T) {
	pair := testenv.Redis(t)
	if _, err := pair.Master.Do("ACL", "SETUSER", "limited", "on", ">pw", "~*", "+@all", "-config"); err != nil {
		t.Fatal(err)
	}
	s := New(NewClient(Options{Addr: pair.Master.Addr(), Username: "limited", Password: "pw"}))
	ctx := context.Background()
	for i := range 3 {
		l, err := s.Limits(ctx)
		if err != nil {
			t.Fatalf("Limits %d: %v", i, err)
		}
		if l.MaxBulk != defaultMaxBulk {
			t.Errorf("Limits %d: MaxBulk %d, want Redis' default %d", i, l.MaxBulk, defaultMaxBulk)
		}
	}
	entries, err := testenv.Admin(t, pair.Master).ACLLog(ctx, 10).Result()
	if err != nil {
		t.Fatal(err)
	}
	// ACL LOG folds repeated refusals into one entry and counts them.
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s x%d", e.Username, e.Object, e.Count))
	}
	if want := []string{"limited config|get x1"}; !slices.Equal(got, want) {
		t.Errorf("ACL LOG %q, want %q", got, want)
	}
}
