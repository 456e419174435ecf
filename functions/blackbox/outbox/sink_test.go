package outbox

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is a CloudEvent the sink took, in binary mode as the relay sends it.
type event struct {
	id, source, typ, subject, token string
	data                            []byte
}

// seq is the record's seq: the record id starts with it.
func (e event) seq() int64 {
	n, _ := strconv.ParseInt(strings.SplitN(e.id, "-", 2)[0], 10, 64)
	return n
}

// Modes of the sink.
const (
	accept      = "accept"      // 202, and the event is kept
	unavailable = "unavailable" // 503, as a Broker that is not ready
	stall       = "stall"       // no answer until the sender gives up or the test ends
)

// sink is a CloudEvents receiver on a loopback port, as the Broker's ingress is to
// the write function, whose answers the test sets.
type sink struct {
	srv     *httptest.Server
	mu      sync.Mutex
	mode    string
	refuse  map[string]bool // record ids answered 400
	got     []event
	stalled chan struct{} // gets one value each time a request stalls
	release chan struct{} // closed at the end, so stalled requests finish
}

func newSink(t *testing.T) *sink {
	s := &sink{mode: accept, refuse: map[string]bool{}, stalled: make(chan struct{}, 100), release: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() { close(s.release); s.srv.Close() })
	return s
}

func (s *sink) set(mode string) {
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	e := event{id: r.Header.Get("Ce-Id"), source: r.Header.Get("Ce-Source"), typ: r.Header.Get("Ce-Type"),
		subject: r.Header.Get("Ce-Subject"), token: r.Header.Get("Ce-Consistencytoken"), data: data}
	s.mu.Lock()
	mode, refuse := s.mode, s.refuse[e.id]
	s.mu.Unlock()
	switch {
	case mode == stall:
		s.stalled <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	case mode == unavailable:
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case refuse:
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, e)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// events returns what the sink took so far.
func (s *sink) events() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.got...)
}

// waitFor waits until the sink has taken events of every id in ids, at most d.
func (s *sink) waitFor(t *testing.T, ids []string, d time.Duration) []event {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := s.events()
		seen := map[string]bool{}
		for _, e := range got {
			seen[e.id] = true
		}
		missing := 0
		for _, id := range ids {
			if !seen[id] {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the sink has %d events; %d of %d records never arrived", d, len(got), missing, len(ids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
