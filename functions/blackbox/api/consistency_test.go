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
	pair        *testenv.Pair
	write, read *httptest.Server
	client      *http.Client
}

func startStack(t *testing.T) *stack {
	t.Helper()
	pair := testenv.Redis(t)
	return &stack{
		pair:   pair,
		write:  testfunc.Write(t, pair.Master, nil),
		read:   testfunc.Read(t, pair, nil),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
}

func (s *stack) create(text string) (record.Record, error) {
	resp, err := s.client.Post(s.write.URL+"/records", "application/json",
		strings.NewReader(`{"type":"bp","text":`+strconv.Quote(text)+`}`))
	if err != nil {
		return record.Record{}, err
	}
	defer resp.Body.Close()
	var rec record.Record
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil || resp.StatusCode != http.StatusCreated {
		return rec, fmt.Errorf("create: status %d, %v", resp.StatusCode, err)
	}
	return rec, nil
}

// find reports whether the read side already returns rec, and who served it.
func (s *stack) find(rec record.Record, minSeq bool) (found bool, servedBy string, err error) {
	url := s.read.URL + "/records/" + rec.ID
	if minSeq {
		url += "?minSeq=" + strconv.FormatInt(rec.Seq, 10)
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

// TestReadYourWrites writes and at once reads back, 10,000 times with minSeq and
// 10,000 times without, from 8 clients at a time.
func TestReadYourWrites(t *testing.T) {
	s := startStack(t)
	const pairs, clients = 10000, 8
	run := func(minSeq bool) (stale, fromMaster int64) {
		var wg sync.WaitGroup
		var next, st, fm atomic.Int64
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= pairs {
					rec, err := s.create("pair")
					if err != nil {
						t.Error(err)
						return
					}
					found, by, err := s.find(rec, minSeq)
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
			}()
		}
		wg.Wait()
		return st.Load(), fm.Load()
	}
	stale, fromMaster := run(true)
	if stale != 0 {
		t.Errorf("with minSeq: %d of %d reads were stale, want 0", stale, pairs)
	}
	t.Logf("with minSeq: %d of %d reads stale, %d answered by the master fallback", stale, pairs, fromMaster)
	stale, _ = run(false)
	t.Logf("without minSeq: %d of %d reads stale (replication lag on loopback)", stale, pairs)
	fmt.Printf("read-your-writes: with minSeq 0 stale expected; without minSeq %d of %d stale\n", stale, pairs)

	for _, srv := range []struct {
		name string
		n    func() (int, error)
	}{
		{"master", func() (int, error) { return testenv.Calls(s.pair.Master, "keys") }},
		{"replica", func() (int, error) { return testenv.Calls(s.pair.Replica, "keys") }},
	} {
		n, err := srv.n()
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("KEYS ran %d times on the %s, want never", n, srv.name)
		}
	}
	// The replica did the reading: every found record was fetched from it.
	if n, _ := testenv.Calls(s.pair.Replica, "mget"); n < pairs {
		t.Errorf("replica ran MGET (seq and document) %d times, want at least %d", n, pairs)
	}
}
