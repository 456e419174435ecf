package faults_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// clientTimeout is how long any request may take before the test calls it a hang.
const clientTimeout = 5 * time.Second

// newClient returns a client for n concurrent connections that gives up after
// clientTimeout.
func newClient(n int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = n, n, n
	return &http.Client{Timeout: clientTimeout, Transport: tr}
}

// answer is the write function's answer to a create.
type answer struct {
	record.Record
	Replicated *bool `json:"replicated"`
}

// outcome is what one request got.
type outcome struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error or client timeout
}

func do(c *http.Client, req *http.Request) outcome {
	resp, err := c.Do(req)
	if err != nil {
		return outcome{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return outcome{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// create posts one record.
func create(c *http.Client, base, typ, text string) (outcome, answer) {
	b, _ := json.Marshal(record.Create{Type: typ, Text: text})
	req, _ := http.NewRequest(http.MethodPost, base+"/records", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	o := do(c, req)
	var a answer
	if o.err == nil && (o.status == http.StatusCreated || o.status == http.StatusAccepted) {
		if err := json.Unmarshal(o.body, &a); err != nil {
			o.err = fmt.Errorf("decode answer %q: %w", o.body, err)
		}
	}
	return o, a
}

// getRecord reads one record by id, asking for at least minSeq (0 for none).
func getRecord(c *http.Client, base, id string, minSeq int64) (outcome, record.Record) {
	u := base + "/records/" + url.PathEscape(id)
	if minSeq > 0 {
		u += "?minSeq=" + strconv.FormatInt(minSeq, 10)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	o := do(c, req)
	var r record.Record
	if o.err == nil && o.status == http.StatusOK {
		if err := json.Unmarshal(o.body, &r); err != nil {
			o.err = fmt.Errorf("decode record %q: %w", o.body, err)
		}
	}
	return o, r
}

// page is the read function's answer to a list query.
type page struct {
	Records    []record.Record `json:"records"`
	NextCursor string          `json:"nextCursor"`
}

// list runs GET /records?query.
func list(c *http.Client, base, query string) (outcome, page) {
	req, _ := http.NewRequest(http.MethodGet, base+"/records?"+query, nil)
	o := do(c, req)
	var p page
	if o.err == nil && o.status == http.StatusOK {
		if err := json.Unmarshal(o.body, &p); err != nil {
			o.err = fmt.Errorf("decode page %q: %w", o.body, err)
		}
	}
	return o, p
}

// ready reports the status of base's readiness probe (0 when it did not answer).
func ready(c *http.Client, base string) int {
	req, _ := http.NewRequest(http.MethodGet, base+"/health/readiness", nil)
	o := do(c, req)
	if o.err != nil {
		return 0
	}
	return o.status
}

// describe prints an outcome for failure messages.
func (o outcome) String() string {
	if o.err != nil {
		return "error: " + o.err.Error()
	}
	b := o.body
	if len(b) > 200 {
		b = b[:200]
	}
	return fmt.Sprintf("%d %s", o.status, bytes.TrimSpace(b))
}
