package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

// TestMain removes the binaries that the tests built once they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// createV1 and createV2 are the create scripts of the first two layouts, as they
// were released: the test writes stores exactly as those versions of cqrs-write did.
var (
	//go:embed testdata/create-v1.lua
	createV1 string
	//go:embed testdata/create-v2.lua
	createV2 string
)

// oldWriter stores record i the way one old layout's store.Create did, with an
// idempotency claim under claimKey when it is not empty, and returns its id.
type oldWriter func(t *testing.T, rdb *redis.Client, i int, typ, text, claimKey string, at time.Time) string

func fingerprint(typ, text string) string {
	h := sha256.Sum256([]byte(typ + "\x00" + text))
	return hex.EncodeToString(h[:12])
}

// v1Create stores one record the way the first layout's store.Create did.
func v1Create(t *testing.T, rdb *redis.Client, i int, typ, text, claimKey string, at time.Time) string {
	t.Helper()
	id := fmt.Sprintf("v1id%012d", i)
	keys := []string{"cqrs:seq", claimKey, "cqrs:rec:" + id, "cqrs:idx:all", "cqrs:idx:type:" + typ}
	for _, w := range record.Tokenize(text) {
		keys = append(keys, "cqrs:idx:word:"+w)
	}
	b, _ := json.Marshal(record.Record{ID: id, Type: typ, Text: text, CreatedAt: at})
	j := bytes.Index(b, []byte(`"seq":0`))
	args := []any{id, typ, text, at.Format(time.RFC3339Nano), 60000, "cqrs:rec:",
		string(b[:j+len(`"seq":`)]), string(b[j+len(`"seq":0`):]), fingerprint(typ, text)}
	if err := rdb.Eval(context.Background(), createV1, keys, args...).Err(); err != nil {
		t.Fatalf("v1 create %s: %v", id, err)
	}
	return id
}

// v2Create stores one record the way the second layout's store.Create did.
func v2Create(t *testing.T, rdb *redis.Client, i int, typ, text, claimKey string, at time.Time) string {
	t.Helper()
	tag := fmt.Sprintf("v2t%d", i)
	keys := []string{"cqrs:seq", claimKey, "cqrs:ix:all", "cqrs:ix:t:" + typ}
	for _, w := range record.Tokenize(text) {
		keys = append(keys, "cqrs:ix:w:"+w)
	}
	b, _ := json.Marshal(record.Record{Type: typ, Text: text, CreatedAt: at})
	tail := strings.TrimPrefix(string(b), `{"id":"","seq":0`)
	args := []any{tag, tail, 60000, "cqrs:r:", "cqrs:alias", fingerprint(typ, text)}
	res, err := rdb.Eval(context.Background(), createV2, keys, args...).Slice()
	if err != nil || len(res) != 2 {
		t.Fatalf("v2 create %d: %v %v", i, res, err)
	}
	return fmt.Sprintf("%d-%s", res[1], tag)
}

// TestMigrateLayout2 writes 1,234 records with layout 2's own script (some
// with idempotency claims), runs the built cqrs-migrate twice (copying and keeping
// the old keys, then resuming with nothing left to copy and deleting them), and reads
// the store with the current code: every page and search as before, every record by
// its old id, claims replayed with the old record, new creates after the old seqs,
// and no key of the old layout left.
func TestMigrateLayout2(t *testing.T) {
	migrate(t, v2Create, []string{"cqrs:r:", "cqrs:ix:", "cqrs:idem:", "cqrs:seq", "cqrs:alias"})
}

// TestMigrateRefusesLayout1: a store of layout 1 goes through the release that
// brought layout 2 first; this one says so and changes nothing.
func TestMigrateRefusesLayout1(t *testing.T) {
	pair := testenv.Redis(t)
	mc := redis.NewClient(&redis.Options{Addr: pair.Master.Addr()})
	defer mc.Close()
	v1Create(t, mc, 1, "bp", "layout one", "", time.Now())
	keys, _ := mc.DBSize(context.Background()).Result()
	bin := testenv.Build(t, "./functions/tools/cqrs-migrate")
	out, err := exec.Command(bin, "-addr", pair.Master.Addr()).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "layout 1") || !strings.Contains(string(out), "layout 2") {
		t.Errorf("cqrs-migrate on a layout-1 store: %v\n%s\nwant a failure that names layouts 1 and 2", err, out)
	}
	if n, _ := mc.DBSize(context.Background()).Result(); n != keys {
		t.Errorf("the store holds %d keys after the refusal, want the %d layout 1 wrote", n, keys)
	}
}

func migrate(t *testing.T, write oldWriter, oldPrefixes []string) {
	pair := testenv.Redis(t)
	ctx := context.Background()
	mc := redis.NewClient(&redis.Options{Addr: pair.Master.Addr()})
	defer mc.Close()
	const n = 1234
	words := strings.Fields("alpha beta gamma delta épsilon")
	types := []string{"bp", "cmt", "rvw"}
	want := map[int64]record.Record{}
	start := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	for i := 1; i <= n; i++ {
		var ws []string
		for b, w := range words {
			if i&(1<<b) != 0 {
				ws = append(ws, w)
			}
		}
		text := fmt.Sprintf("record %d %s <b>&</b>", i, strings.Join(ws, " "))
		claim := ""
		if i%100 == 0 {
			claim = fmt.Sprintf("cqrs:idem:http:key-%d", i)
		}
		at := start.Add(time.Duration(i) * time.Second)
		id := write(t, mc, i, types[i%3], text, claim, at)
		want[int64(i)] = record.Record{ID: id, Seq: int64(i), Type: types[i%3], Text: text, CreatedAt: at}
	}

	bin := testenv.Build(t, "./functions/tools/cqrs-migrate")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"-addr", pair.Master.Addr(), "-batch", "500"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("cqrs-migrate %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := run("-keep-old"); !strings.Contains(out, fmt.Sprintf("%d records copied, 0 copied before, 12 claims copied, 0 old keys deleted", n)) {
		t.Errorf("first run said %q, want all %d records and 12 claims copied and nothing deleted", out, n)
	}
	if out := run(); !strings.Contains(out, fmt.Sprintf("0 records copied, %d copied before", n)) {
		t.Errorf("second run said %q, want nothing copied again", out)
	}
	left := 0
	iter := mc.Scan(ctx, 0, "cqrs:*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); slices.ContainsFunc(oldPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			left++
		}
	}
	if left != 0 {
		t.Errorf("%d keys of the old layout are left", left)
	}

	rc := store.NewClient(store.Options{Addr: pair.Replica.Addr()})
	defer rc.Close()
	r := store.New(rc)
	m := store.New(store.NewClient(store.Options{Addr: pair.Master.Addr()}))
	waitFor(t, r, n)

	// Every record by its old id, as it was.
	for _, seq := range []int64{1, 2, 499, 500, 501, 1000, n} {
		got, err := getRecord(r, want[seq].ID)
		if err != nil || got.ID != want[seq].ID || got.Seq != seq || got.Text != want[seq].Text || !got.CreatedAt.Equal(want[seq].CreatedAt) {
			t.Errorf("Get(%s) = %+v, %v; want %+v", want[seq].ID, got, err, want[seq])
		}
	}
	// Pages and searches: the same records, newest first, through the cursor.
	for _, q := range []store.Query{{Limit: 100}, {Type: "cmt", Limit: 7}, {Words: []string{"beta", "épsilon"}, Limit: 9},
		{Type: "bp", Words: []string{"alpha"}, Limit: 25}} {
		var wantSeqs, got []int64
		for i := int64(n); i >= 1; i-- {
			rec := want[i]
			if q.Type != "" && rec.Type != q.Type {
				continue
			}
			if !slices.ContainsFunc(q.Words, func(w string) bool { return !slices.Contains(record.Tokenize(rec.Text), w) }) {
				wantSeqs = append(wantSeqs, i)
			}
		}
		for pages := 0; pages < 1000; pages++ {
			p, err := page(r, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range p.Records {
				if rec != want[rec.Seq] && !(rec.ID == want[rec.Seq].ID && rec.CreatedAt.Equal(want[rec.Seq].CreatedAt)) {
					t.Fatalf("page record %+v, want %+v", rec, want[rec.Seq])
				}
				got = append(got, rec.Seq)
			}
			if p.Next == nil {
				break
			}
			q.Cursor = p.Next
		}
		if !slices.Equal(got, wantSeqs) {
			t.Errorf("query %+v: %d records %v..., want %d", q, len(got), got[:min(5, len(got))], len(wantSeqs))
		}
	}
	// A claim made before the migration replays the old record; new records follow.
	again, err := m.Create(ctx, store.NewRecord{Tag: "new1", Type: want[300].Type, Text: want[300].Text,
		Claim: store.HTTPClaim("key-300"), ClaimTTL: time.Minute}, 0, 0)
	if err != nil || again.New || again.ID != want[300].ID || again.Seq != 300 {
		t.Errorf("replayed claim = %+v, %v; want the old record %s", again, err, want[300].ID)
	}
	c, err := m.Create(ctx, store.NewRecord{Tag: "new2", Type: "bp", Text: "after alpha"}, 0, 0)
	if err != nil || !c.New || c.Seq != n+1 || c.ID != fmt.Sprintf("%d-new2", n+1) {
		t.Fatalf("create after migration = %+v, %v; want seq %d", c, err, n+1)
	}
	waitFor(t, r, n+1)
	p, err := page(r, store.Query{Words: []string{"alpha"}, Limit: 2})
	if err != nil || len(p.Records) != 2 || p.Records[0].Seq != n+1 || p.Records[1].Seq != want[n-1].Seq {
		t.Errorf("search after a new create = %+v, %v; want seq %d then %d", p, err, n+1, n-1)
	}
}

func waitFor(t *testing.T, s *store.Store, seq int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ps, err := s.Positions(context.Background()); err == nil && ps[0].Seq >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not reach seq %d", seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type decodedPage struct {
	Records []record.Record
	Next    store.Cursor
}

func page(s *store.Store, q store.Query) (decodedPage, error) {
	dp, err := s.PageDocs(context.Background(), q, store.Need{})
	if err != nil {
		return decodedPage{}, err
	}
	p := decodedPage{Next: dp.Next, Records: make([]record.Record, len(dp.Docs))}
	for i, d := range dp.Docs {
		if err := json.Unmarshal(d, &p.Records[i]); err != nil {
			return p, err
		}
	}
	return p, nil
}

func getRecord(s *store.Store, id string) (record.Record, error) {
	var r record.Record
	g, err := s.GetDoc(context.Background(), id, store.Need{})
	if err == nil && g.Doc == nil {
		err = fmt.Errorf("no record %s", id)
	}
	if err == nil {
		err = json.Unmarshal(g.Doc, &r)
	}
	return r, err
}
