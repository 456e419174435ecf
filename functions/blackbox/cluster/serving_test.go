//go:build e2e

package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestServicesReady: the three Services from the unchanged knative/*.yaml are
// Ready, and kn shows them with their URLs and revisions.
func TestServicesReady(t *testing.T) {
	out := must(t, time.Minute, "kn", "service", "list", "--namespace", ns)
	t.Logf("kn service list:\n%s", out)
	for _, s := range []string{"cqrs-write", "cqrs-read", "cqrs-ui"} {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == s {
				line = l
			}
		}
		if line == "" {
			t.Errorf("kn service list has no %s", s)
			continue
		}
		if !strings.Contains(line, urls[s]) || !strings.HasPrefix(urls[s], "http") {
			t.Errorf("kn service list: %s has no URL %q: %q", s, urls[s], line)
		}
		if f := strings.Fields(line); f[len(f)-1] != "True" && !strings.Contains(line, " True ") {
			t.Errorf("kn service list: %s is not Ready: %q", s, line)
		}
	}
	out = must(t, time.Minute, "kn", "revision", "list", "--namespace", ns)
	t.Logf("kn revision list:\n%s", out)
	for _, s := range []string{"cqrs-write", "cqrs-read", "cqrs-ui"} {
		if !strings.Contains(out, s+"-0") {
			t.Errorf("kn revision list has no revision of %s", s)
		}
	}
}

// TestHTTPThroughRoutes: the HTTP API through the routes, as curl would use it.
func TestHTTPThroughRoutes(t *testing.T) {
	text := "through the route " + nonce()
	a, err := send(t, routeClient, "POST", urls["cqrs-write"]+"/records",
		testenv.Header("Content-Type", "application/json"), fmt.Sprintf(`{"type":"bp","text":%q}`, text))
	if err != nil {
		t.Fatal(err)
	}
	if a.status != http.StatusCreated {
		t.Fatalf("POST /records: got %s, want 201", a)
	}
	var r record
	if err := json.Unmarshal(a.body, &r); err != nil || r.ID == "" || r.Seq < 1 || r.Type != "bp" || r.Text != text || r.CreatedAt == "" {
		t.Fatalf("POST /records: got %s (%v), want the record", a.body, err)
	}
	if loc := a.header.Get("Location"); loc != "/records/"+r.ID {
		t.Errorf("Location: got %q, want /records/%s", loc, r.ID)
	}

	// Read your write: minSeq makes the read wait for the replica (or ask the master).
	p, a := query(t, url.Values{"minSeq": {strconv.FormatInt(r.Seq, 10)}, "q": {strings.Fields(text)[3]}})
	if a.status != http.StatusOK || len(p.Records) != 1 || p.Records[0].ID != r.ID {
		t.Fatalf("GET /records?minSeq=%d: got %s, want the record just written", r.Seq, a)
	}
	by, seq := a.header.Get("X-Served-By"), a.header.Get("X-Replica-Seq")
	if by != "replica" && by != "master" {
		t.Errorf("X-Served-By: got %q", by)
	}
	if n, err := strconv.ParseInt(seq, 10, 64); err != nil || (by == "replica" && n < r.Seq) {
		t.Errorf("X-Replica-Seq: got %q (served by %s), want at least %d", seq, by, r.Seq)
	}
	t.Logf("read-your-writes: served by %s, replica seq %s", by, seq)

	a, err = send(t, routeClient, "GET", urls["cqrs-read"]+"/records/"+r.ID, nil, "")
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("GET /records/%s: got %v %v", r.ID, a, err)
	}
	var got record
	if err := json.Unmarshal(a.body, &got); err != nil || got != r {
		t.Errorf("GET /records/%s: got %s, want %+v", r.ID, a.body, r)
	}
	a, _ = send(t, routeClient, "GET", urls["cqrs-read"]+"/records/nosuchrecord0000", nil, "")
	if a.status != http.StatusNotFound {
		t.Errorf("GET an unknown id: got %s, want 404", a)
	}

	// The same Idempotency-Key again: 200 and the first record.
	key := nonce()
	body := fmt.Sprintf(`{"type":"cmt","text":"idempotent %s"}`, key)
	first, _ := send(t, routeClient, "POST", urls["cqrs-write"]+"/records", testenv.Header("Content-Type", "application/json", "Idempotency-Key", key), body)
	again, _ := send(t, routeClient, "POST", urls["cqrs-write"]+"/records", testenv.Header("Content-Type", "application/json", "Idempotency-Key", key), body)
	if first.status != http.StatusCreated || again.status != http.StatusOK || string(first.body) != string(again.body) {
		t.Errorf("Idempotency-Key twice: got %s then %s, want 201 then 200 with the same record", first, again)
	}

	// The UI's same-origin proxy and the original endpoints, through its route.
	a, err = send(t, routeClient, "GET", urls["cqrs-ui"]+"/api/records?q="+strings.Fields(text)[3], nil, "")
	if err != nil || a.status != http.StatusOK || !strings.Contains(string(a.body), r.ID) {
		t.Errorf("UI /api/records: got %v %v, want the record", a, err)
	}
	a, err = send(t, routeClient, "GET", urls["cqrs-ui"]+"/", nil, "")
	if err != nil || a.status != http.StatusOK || !strings.Contains(string(a.body), "Add records") {
		t.Errorf("UI page: got %d %v", a.status, err)
	}
}
