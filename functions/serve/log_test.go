package serve

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an io.Writer that counts its writes.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLineBatcherKeepsEveryLineInOrder: lines written from many goroutines all come
// out, each whole, each goroutine's in its order, in fewer writes than lines.
func TestLineBatcherKeepsEveryLineInOrder(t *testing.T) {
	out := &lockedBuffer{}
	l := newLineBatcher(out, time.Hour) // only Flush and full batches write
	const workers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(l, "{\"worker\":%d,\"line\":%d}\n", w, i)
			}
		})
	}
	wg.Wait()
	if err := l.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != workers*lines {
		t.Fatalf("got %d lines, want %d", len(got), workers*lines)
	}
	next := make([]int, workers)
	for _, line := range got {
		var w, i int
		if _, err := fmt.Sscanf(line, "{\"worker\":%d,\"line\":%d}", &w, &i); err != nil {
			t.Fatalf("line %q is not one that was written: %v", line, err)
		}
		if i != next[w] {
			t.Fatalf("worker %d: line %d came where line %d was due", w, i, next[w])
		}
		next[w]++
	}
	if out.writes >= workers*lines {
		t.Errorf("%d writes for %d lines, want them gathered", out.writes, workers*lines)
	}
}

// TestLineBatcherWritesAFullBatchAtOnce: a batch that reaches its limit is written
// before Write returns, without waiting for the interval.
func TestLineBatcherWritesAFullBatchAtOnce(t *testing.T) {
	out := &lockedBuffer{}
	l := newLineBatcher(out, time.Hour)
	line := strings.Repeat("x", 1023) + "\n"
	for range batchLimit / len(line) {
		l.Write([]byte(line))
	}
	if got := len(out.String()); got != batchLimit {
		t.Errorf("after %d bytes of lines, %d were written, want all of them", batchLimit, got)
	}
}

// TestLineBatcherWritesWithoutFlush: a line held is written after the interval even
// if nothing else comes and nobody flushes.
func TestLineBatcherWritesWithoutFlush(t *testing.T) {
	out := &lockedBuffer{}
	l := newLineBatcher(out, time.Millisecond)
	l.Write([]byte("{\"msg\":\"record created\"}\n"))
	deadline := time.Now().Add(10 * time.Second)
	for out.String() == "" && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := out.String(); got != "{\"msg\":\"record created\"}\n" {
		t.Errorf("written without a flush: %q, want the line", got)
	}
}
