package read_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
)

type fixture struct {
	pair   *testenv.Pair
	master *store.Store
	srv    *httptest.Server
}

// start runs the read function on a real replica, with the master as its fallback.
func start(t *testing.T, edit func(*read.Config)) *fixture {
	t.Helper()
	pair := testenv.Redis(t)
	srv := testfunc.Read(t, pair, edit)
	mc := store.NewClient(store.Options{Addr: pair.Master.Addr()})
	t.Cleanup(func() { mc.Close() })
	return &fixture{pair: pair, master: store.New(mc), srv: srv}
}

// create stores a record on the master and returns it and a token that reads it.
func (fx *fixture) create(t *testing.T, typ, text string) record.Record {
	t.Helper()
	r, _ := fx.createToken(t, typ, text)
	return r
}

func (fx *fixture) createToken(t *testing.T, typ, text string) (record.Record, store.Token) {
	t.Helper()
	c, err := fx.master.Create(context.Background(), store.NewRecord{
		Tag: fmt.Sprintf("r%d", time.Now().UnixNano()), Type: typ, Text: text}, 0, 0)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	var r record.Record
	if err := json.Unmarshal(c.Doc, &r); err != nil {
		t.Fatalf("create: document %s: %v", c.Doc, err)
	}
	return r, store.Token{c.At}
}

type page struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"nextCursor"`
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	return testenv.Do(t, http.MethodGet, url, nil, "")
}

func (fx *fixture) page(t *testing.T, query string) (page, *http.Response) {
	t.Helper()
	resp, b := get(t, fx.srv.URL+"/records?"+query)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /records?%s = %d %s, want 200", query, resp.StatusCode, b)
	}
	var p page
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return p, resp
}

func TestPagesNewestFirstWithoutOverlapOrGap(t *testing.T) {
	fx := start(t, nil)
	const n = 60
	for i := 1; i <= n; i++ {
		fx.create(t, "bp", fmt.Sprintf("post %d", i))
	}
	var seqs []int64
	cursor := ""
	pages := 0
	for {
		p, resp := fx.page(t, "minSeq="+strconv.Itoa(n)+"&cursor="+cursor)
		if cursor == "" && len(p.Records) != read.DefaultLimit {
			t.Errorf("first page holds %d records, want the default %d", len(p.Records), read.DefaultLimit)
		}
		if got := resp.Header.Get("X-Replica-Seq"); got != strconv.Itoa(n) {
			t.Errorf("X-Replica-Seq = %q, want %d", got, n)
		}
		for _, r := range p.Records {
			seqs = append(seqs, r.Seq)
		}
		pages++
		if p.NextCursor == "" {
			break
		}
		if pages > 3 {
			t.Fatalf("more than 3 pages for %d records", n)
		}
		cursor = p.NextCursor
	}
	if pages != 3 {
		t.Errorf("%d pages, want 3 (25 + 25 + 10)", pages)
	}
	if len(seqs) != n {
		t.Fatalf("got %d records over all pages, want %d", len(seqs), n)
	}
	for i, s := range seqs {
		if want := int64(n - i); s != want {
			t.Fatalf("position %d holds seq %d, want %d", i, s, want)
		}
	}
}

func TestSearchAndType(t *testing.T) {
	fx := start(t, nil)
	fx.create(t, "bp", "Knative scales to zero")
	fx.create(t, "cmt", "redis replicas scale reads")
	fx.create(t, "rvw", "ZERO downtime with KNATIVE")
	last := fx.create(t, "bp", "nothing to see")
	min := "&minSeq=" + strconv.FormatInt(last.Seq, 10)
	tests := []struct {
		query string
		want  []string
	}{
		{"q=knative+zero", []string{"ZERO downtime with KNATIVE", "Knative scales to zero"}},
		{"q=Knative,%20ZERO!", []string{"ZERO downtime with KNATIVE", "Knative scales to zero"}},
		{"q=knative&type=bp", []string{"Knative scales to zero"}},
		{"type=cmt", []string{"redis replicas scale reads"}},
		{"q=knative+redis", nil},
		{"q=scale", []string{"redis replicas scale reads"}},
	}
	for _, tt := range tests {
		p, _ := fx.page(t, tt.query+min)
		var got []string
		for _, r := range p.Records {
			got = append(got, r.Text)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("GET /records?%s = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestBadQueries(t *testing.T) {
	fx := start(t, nil)
	tests := []struct {
		query, field string
	}{
		{"limit=101", "limit"},
		{"limit=0", "limit"},
		{"limit=ten", "limit"},
		{"type=blog", "type"},
		{"cursor=abc", "cursor"},
		{"cursor=-5", "cursor"},
		{"minSeq=x", "minSeq"},
		{"q=%21%21%21", "q"},
		{"q=w1+w2+w3+w4+w5+w6+w7+w8+w9+w10+w11+w12+w13+w14+w15+w16+w17", "q"},
	}
	for _, tt := range tests {
		resp, b := get(t, fx.srv.URL+"/records?"+tt.query)
		var e struct{ Error, Field string }
		json.Unmarshal(b, &e)
		if resp.StatusCode != 400 || e.Field != tt.field || e.Error == "" {
			t.Errorf("GET /records?%s = %d %s, want 400 naming %s", tt.query, resp.StatusCode, b, tt.field)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, fx.srv.URL+"/records", nil)
	req.Header.Set("X-Min-Seq", "soon")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("X-Min-Seq: soon = %d, want 400", resp.StatusCode)
	}
	// X-Min-Seq given twice: neither value is taken, on either path.
	for _, path := range []string{"/records", "/records/1-abcdefgh"} {
		twice := http.Header{"X-Min-Seq": {"0", "999"}}
		resp, b := testenv.Do(t, http.MethodGet, fx.srv.URL+path, twice, "")
		testenv.WantError(t, resp, b, http.StatusBadRequest, "X-Min-Seq", "given 2 times")
	}
	if resp, _ := get(t, fx.srv.URL+"/elsewhere"); resp.StatusCode != 404 {
		t.Errorf("GET /elsewhere = %d, want 404", resp.StatusCode)
	}
	r, _ := http.Post(fx.srv.URL+"/records", "application/json", strings.NewReader("{}"))
	if r.StatusCode != 405 {
		t.Errorf("POST /records on the read side = %d, want 405", r.StatusCode)
	}
}

func TestGetByID(t *testing.T) {
	fx := start(t, nil)
	rec := fx.create(t, "rvw", "five stars")
	resp, b := get(t, fx.srv.URL+"/records/"+rec.ID+"?minSeq="+strconv.FormatInt(rec.Seq, 10))
	var got record.Record
	json.Unmarshal(b, &got)
	if resp.StatusCode != 200 || got.ID != rec.ID || got.Text != "five stars" {
		t.Errorf("GET /records/%s = %d %s, want 200 with the record", rec.ID, resp.StatusCode, b)
	}
	if resp.Header.Get("X-Served-By") != read.ServedByReplica {
		t.Errorf("X-Served-By = %q, want replica", resp.Header.Get("X-Served-By"))
	}
	resp, b = get(t, fx.srv.URL+"/records/doesnotexist")
	if resp.StatusCode != 404 || resp.Header.Get("X-Served-By") == "" {
		t.Errorf("GET /records/doesnotexist = %d %s (X-Served-By %q), want 404 with X-Served-By", resp.StatusCode, b, resp.Header.Get("X-Served-By"))
	}
}

func TestMinSeqAheadOfEverything(t *testing.T) {
	// A seq that no Redis has reached: with the master fallback, the master says
	// that seq is no seq of this store (400 naming minSeq, so a client drops it
	// instead of waiting on every read); without it the client is told to retry.
	// READ_MAX_WAIT is long here: the master is asked before any wait, so the answer
	// comes at once.
	fx := start(t, func(c *read.Config) { c.ReadMaxWait = 5 * time.Second })
	fx.create(t, "bp", "one")
	resp, b := get(t, fx.srv.URL+"/records?minSeq=999")
	var body serve.ErrorBody
	json.Unmarshal(b, &body)
	if resp.StatusCode != 400 || body.Field != "minSeq" {
		t.Errorf("minSeq ahead of the master: %d %s, want 400 naming minSeq", resp.StatusCode, b)
	}
	if by, seq := resp.Header.Get("X-Served-By"), resp.Header.Get("X-Replica-Seq"); by != read.ServedByMaster || seq != "1" {
		t.Errorf("X-Served-By %q X-Replica-Seq %q, want master and 1 (the newest seq there is)", by, seq)
	}
	fx2 := start(t, func(c *read.Config) { c.ReadMaxWait = 50 * time.Millisecond; c.ReadFallback = read.FallbackNone })
	resp, b = get(t, fx2.srv.URL+"/records?minSeq=999")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("READ_FALLBACK=none, minSeq ahead: %d %s, want 503 with Retry-After", resp.StatusCode, b)
	}
	if by, seq := resp.Header.Get("X-Served-By"), resp.Header.Get("X-Replica-Seq"); by != read.ServedByReplica || seq != "0" {
		t.Errorf("503 carries X-Served-By %q X-Replica-Seq %q, want replica and 0 (how far the replica got)", by, seq)
	}
}

func TestReplicaKilled(t *testing.T) {
	for _, fallback := range []string{read.FallbackMaster, read.FallbackNone} {
		t.Run(fallback, func(t *testing.T) {
			fx := start(t, func(c *read.Config) { c.ReadFallback = fallback })
			fx.create(t, "bp", "survives")
			if err := fx.pair.Replica.Kill(); err != nil {
				t.Fatal(err)
			}
			resp, b := get(t, fx.srv.URL+"/records")
			switch fallback {
			case read.FallbackMaster:
				if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != read.ServedByMaster || !strings.Contains(string(b), "survives") {
					t.Errorf("got %d X-Served-By %q %s, want 200 from the master", resp.StatusCode, resp.Header.Get("X-Served-By"), b)
				}
				if r, _ := get(t, fx.srv.URL+"/health/readiness"); r.StatusCode != 200 {
					t.Errorf("readiness = %d, want 200 while the master can serve", r.StatusCode)
				}
			case read.FallbackNone:
				if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
					t.Errorf("got %d %s Retry-After %q, want 503 with Retry-After", resp.StatusCode, b, resp.Header.Get("Retry-After"))
				}
				// No Redis answered: nothing says who served it or how far it was.
				if by, seq := resp.Header.Get("X-Served-By"), resp.Header.Get("X-Replica-Seq"); by != "" || seq != "" {
					t.Errorf("503 with the replica down carries X-Served-By %q X-Replica-Seq %q, want neither", by, seq)
				}
				if r, _ := get(t, fx.srv.URL+"/health/readiness"); r.StatusCode != 503 {
					t.Errorf("readiness = %d, want 503", r.StatusCode)
				}
			}
		})
	}
}

func TestSlowReplicaIsNotReplacedByTheMaster(t *testing.T) {
	// A replica that does not answer in time is busy, not gone: running the same
	// query on the master would make the writes slow too. The read answers 503, and
	// the master never sees the query.
	fx := start(t, nil)
	fx.create(t, "bp", "one")
	before, err := testenv.Calls(fx.pair.Master, "evalsha_ro")
	if err != nil {
		t.Fatal(err)
	}
	// CLIENT PAUSE holds every client command on the replica, as a long script would.
	if _, err := fx.pair.Replica.Do("CLIENT", "PAUSE", "2500", "ALL"); err != nil {
		t.Fatal(err)
	}
	resp, b := get(t, fx.srv.URL+"/records?q=one")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("got %d %s, want 503 with Retry-After", resp.StatusCode, b)
	}
	after, err := testenv.Calls(fx.pair.Master, "evalsha_ro")
	if err != nil {
		t.Fatal(err)
	}
	if got := after - before; got != 0 {
		t.Errorf("the master ran %d page scripts for a query that timed out on the replica, want 0", got)
	}
}
