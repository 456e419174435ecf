package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
	"github.com/cqrs-knative/cqrs-knative/functions/serve"
)

// TestReadYourWritesThroughAReset runs the built functions while clients write and
// at once read back with the token each create answered, by id and by a search for a
// word only that record holds; meanwhile the master is killed and started again
// empty (its replica follows it and empties too), so the store's history starts
// over. No read with a token is ever answered with a wrong page or a 404 for the
// client's own record: it is answered with the record, or refused, 410 store_reset
// naming the token, once the token's history is gone, or 503 while Redis is down.
// Afterwards a token of the old history gets store_reset, and one of the new history
// reads its record.
func TestReadYourWritesThroughAReset(t *testing.T) {
	testenv.NeedsOneMaster(t, "it kills the master and starts it empty; a cluster's partitions reset one shard at a time (functions/store's tests)")
	s := testenv.StartStack(t, testenv.StackOptions{Env: []string{"READ_MAX_WAIT=300ms"}})
	writeURL, readURL := s.Write.URL(), s.Read.URL()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	var wrong, found, reset, unavailable atomic.Int64
	var mu sync.Mutex
	var oldTokens []string
	var failures []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 100000; i++ {
				word := fmt.Sprintf("w%dn%d", w, i)
				rec, token, status := createWithToken(c, writeURL, word)
				if status != http.StatusCreated {
					unavailable.Add(1) // Redis down or restarting: a 503, as documented
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				oldTokens = append(oldTokens, token)
				mu.Unlock()
				for _, u := range []string{
					readURL + "/records/" + rec.ID + "?token=" + url.QueryEscape(token),
					readURL + "/records?q=" + word + "&token=" + url.QueryEscape(token),
				} {
					switch status, body := get(c, u); {
					case status == http.StatusOK && strings.Contains(body, `"id":"`+rec.ID+`"`):
						found.Add(1)
					case status == http.StatusGone && strings.Contains(body, fail.ERESET) && strings.Contains(body, `"field":"token"`):
						reset.Add(1)
					case status == http.StatusServiceUnavailable:
						unavailable.Add(1)
					default:
						wrong.Add(1)
						report("%s: %d %s, want the record %s, or 410 store_reset, or 503", u, status, body, rec.ID)
					}
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	if err := s.Pair.Master.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := s.Pair.Master.Start(); err != nil { // no persistence: it starts empty
		t.Fatal(err)
	}
	wg.Wait()
	t.Logf("%d reads found their record, %d refused as reset, %d answered 503 while Redis was away, %d wrong", found.Load(), reset.Load(), unavailable.Load(), wrong.Load())
	for _, f := range failures {
		t.Error(f)
	}
	if found.Load() == 0 {
		t.Fatal("no read found its record")
	}

	// A token of the old history, once the replica has followed the master, names
	// the reset; a token of the new history reads its record.
	if err := s.Pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	rec, fresh, status := createWithToken(c, writeURL, "afterwards")
	if status != http.StatusCreated {
		t.Fatalf("create after the reset: %d", status)
	}
	if status, body := get(c, readURL+"/records/"+rec.ID+"?token="+url.QueryEscape(fresh)); status != http.StatusOK {
		t.Errorf("read with a token of the new history: %d %s, want 200", status, body)
	}
	status, body := get(c, readURL+"/records?token="+url.QueryEscape(oldTokens[0]))
	var e serve.ErrorBody
	json.Unmarshal([]byte(body), &e)
	if status != http.StatusGone || e.Code != fail.ERESET || e.Field != "token" {
		t.Errorf("read with a token of the old history: %d %s, want 410 %s naming token", status, body, fail.ERESET)
	}
}

// createWithToken stores a record holding word and returns it, the token of its
// answer and the status.
func createWithToken(c *http.Client, writeURL, word string) (record.Record, string, int) {
	resp, err := c.Post(writeURL+"/records", "application/json", strings.NewReader(`{"type":"bp","text":"`+word+`"}`))
	if err != nil {
		return record.Record{}, "", 0
	}
	defer resp.Body.Close()
	var rec record.Record
	json.NewDecoder(resp.Body).Decode(&rec)
	return rec, resp.Header.Get(record.TokenHeader), resp.StatusCode
}

func get(c *http.Client, u string) (int, string) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
