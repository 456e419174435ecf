package redistls

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is an event sink for the outbox's relay: it takes every event but those
// whose data holds refuse, which it answers 400, and notes the ids of both.
type sink struct {
	*httptest.Server
	mu                sync.Mutex
	accepted, refused []string
}

func newSink(t *testing.T, refuse string) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		id := r.Header.Get("Ce-Id")
		s.mu.Lock()
		defer s.mu.Unlock()
		if strings.Contains(b.String(), refuse) {
			s.refused = append(s.refused, id)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.accepted = append(s.accepted, id)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(s.Close)
	return s
}

// wait waits up to 15 s until the sink has accepted every id of want and refused
// refused, and fails the test otherwise.
func (s *sink) wait(t *testing.T, want []string, refused string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.mu.Lock()
		done := slices.Contains(s.refused, refused)
		for _, id := range want {
			done = done && slices.Contains(s.accepted, id)
		}
		acc, ref := slices.Clone(s.accepted), slices.Clone(s.refused)
		s.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink accepted %v and refused %v after 15s; want %v among the first and %s refused", acc, ref, want, refused)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
