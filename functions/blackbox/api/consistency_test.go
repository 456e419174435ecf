package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

type stack struct {
	backend     *testenv.Backend
	write, read *httptest.Server
	client      *http.Client
}

func startStack(t *testing.T) *stack {
	t.Helper()
	b := testenv.StartBackend(t)
	return &stack{
		backend: b,
		write:   testfunc.WriteOn(t, b, nil),
		read:    testfunc.ReadOn(t, b, nil),
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
}

// created is the write function's answer to a create.
type created struct {
	record.Record
	Token string `json:"token"`
}

func (s *stack) create(text string) (created, error) {
	resp, err := s.client.Post(s.write.URL+"/records", "application/json",
		strings.NewReader(`{"type":"bp","text":`+strconv.Quote(text)+`}`))
	if err != nil {
		return created{}, err
	}
	defer resp.Body.Close()
	var c created
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated {
		return c, fmt.Errorf("create: status %d, %v", resp.StatusCode, err)
	}
	if h := resp.Header.Get(record.TokenHeader); h == "" || h != c.Token {
		return c, fmt.Errorf("create: %s %q and body token %q, want both, equal", record.TokenHeader, h, c.Token)
	}
	return c, nil
}

// Ways to read one's own write.
const (
	withToken  = "token"  // the token the create answered with
	withMinSeq = "minSeq" // the record's seq, as clients that predate tokens do
	withNone   = "none"
)

// find reports whether the read side already returns c, and who served it.
func (s *stack) find(c created, how string) (found bool, servedBy string, err error) {
	url := s.read.URL + "/records/" + c.ID
	switch how {
	case withToken:
		url += "?token=" + c.Token
	case withMinSeq:
		url += "?minSeq=" + strconv.FormatInt(c.Seq, 10)
	}
	resp, err := s.client.Get(url)
	if err != nil {
		return false, "", err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, resp.Header.Get("X-Served-By"), nil
	case http.StatusNotFound:
		return false, resp.Header.Get("X-Served-By"), nil
	}
	return false, "", fmt.Errorf("read: status %d", resp.StatusCode)
}

// TestReadYourWrites writes and at once reads back, from 8 clients at a time: 10,000
// times with the create's token, 10,000 times with the record's seq as minSeq (as
// clients that predate tokens do), and 2,000 times with neither.
func TestReadYourWrites(t *testing.T) {
	s := startStack(t)
	const clients = 8
	run := func(how string, pairs int64) (stale, fromMaster int64) {
		var wg sync.WaitGroup
		var next, st, fm atomic.Int64
		for range clients {
			wg.Go(func() {
				for next.Add(1) <= pairs {
					rec, err := s.create("pair")
					if err != nil {
						t.Error(err)
						return
					}
					found, by, err := s.find(rec, how)
					if err != nil {
						t.Error(err)
						return
					}
					if !found {
						st.Add(1)
					}
					if by == read.ServedByMaster {
						fm.Add(1)
					}
				}
			})
		}
		wg.Wait()
		return st.Load(), fm.Load()
	}
	reads := int64(0)
	ways := []string{withToken, withMinSeq}
	if testenv.OnCluster() {
		ways = ways[:1] // a Redis Cluster takes tokens only: a seq is a partition's
	}
	for _, how := range ways {
		const pairs = 10000
		stale, fromMaster := run(how, pairs)
		reads += pairs
		if stale != 0 {
			t.Errorf("with %s: %d of %d reads were stale, want 0", how, stale, pairs)
		}
		t.Logf("with %s: %d of %d reads stale, %d answered by the master fallback", how, stale, pairs, fromMaster)
	}
	stale, _ := run(withNone, 2000)
	reads += 2000
	t.Logf("without token or minSeq: %d of %d reads stale (replication lag on loopback)", stale, 2000)
	fmt.Printf("read-your-writes: with token or minSeq 0 stale expected; without either %d of %d stale\n", stale, 2000)

	for _, srv := range append(s.backend.Masters(), s.backend.Replicas()...) {
		n, err := testenv.Calls(srv, "keys")
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("KEYS ran %d times on %s, want never", n, srv.Addr())
		}
	}
	// The replicas did the reading: every read ran the get script there.
	ran := 0
	for _, r := range s.backend.Replicas() {
		n, _ := testenv.Calls(r, "evalsha_ro")
		ran += n
	}
	if int64(ran) < reads {
		t.Errorf("the replicas ran the get script %d times, want at least %d", ran, reads)
	}
}
