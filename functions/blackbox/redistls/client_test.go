package redistls

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// created is the write function's answer to a create; body is the answer as sent.
type created struct {
	record.Record
	Replicated *bool  `json:"replicated"`
	Token      string `json:"token"` // the consistency token of the store position it reached
	body       string
}

// create posts a record of type bp, with an Idempotency-Key unless key is empty,
// and returns the status and the answer.
func create(t *testing.T, base, key, text string) (int, created) {
	t.Helper()
	h := testenv.Header("Content-Type", "application/json", "Idempotency-Key", key)
	resp, body := testenv.Do(t, http.MethodPost, base+"/records", h, `{"type":"bp","text":`+strconv.Quote(text)+`}`)
	c := created{body: string(body)}
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(body, &c); err != nil {
			t.Fatalf("create %q: %d %s: %v", text, resp.StatusCode, body, err)
		}
	}
	return resp.StatusCode, c
}

// mustCreate is create that fails the test unless the record was stored now (201).
func mustCreate(t *testing.T, base, key, text string) created {
	t.Helper()
	status, c := create(t, base, key, text)
	if status != http.StatusCreated {
		t.Fatalf("create %q: got %d %s, want 201", text, status, c.body)
	}
	return c
}

// get reads a record by id with the query q (may be empty) and returns the status,
// the record and the header.
func get(t *testing.T, base, id string, q url.Values) (int, record.Record, http.Header) {
	t.Helper()
	u := base + "/records/" + url.PathEscape(id)
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	resp, body := testenv.Do(t, http.MethodGet, u, nil, "")
	var r record.Record
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("get %s: %s: %v", id, body, err)
		}
	}
	return resp.StatusCode, r, resp.Header
}

// page is the read function's answer to a list query.
type page struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"nextCursor"`
}

// list runs GET /records?q and returns the status, the page and the header.
func list(t *testing.T, base string, q url.Values) (int, page, http.Header) {
	t.Helper()
	resp, body := testenv.Do(t, http.MethodGet, base+"/records?"+q.Encode(), nil, "")
	var p page
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("list %s: %s: %v", q.Encode(), body, err)
		}
	}
	return resp.StatusCode, p, resp.Header
}

// texts are the texts of a page's records, in order.
func texts(p page) []string {
	var out []string
	for _, r := range p.Records {
		out = append(out, r.Text)
	}
	return out
}

// readiness returns the status and body of base's readiness probe, waiting up to
// 10 s for the process to listen.
func readiness(t *testing.T, base string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get(base + "/health/readiness")
		if err == nil {
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, strings.TrimSpace(string(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("readiness: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
