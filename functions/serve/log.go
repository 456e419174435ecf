package serve

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Logger returns the JSON logger every process of this project writes with, on w;
// LOG_LEVEL=debug adds detail.
func Logger(service string, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	if strings.EqualFold(os.Getenv("LOG_LEVEL"), "debug") {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", service)
}

// logInterval is how long a log line may wait for the lines after it.
const logInterval = 5 * time.Millisecond

// lineBatcher gathers log lines and writes them out together, at most logInterval
// after the first of them, in one write(2), rather than one write per line: a create
// logs a line (api.md promises one per stored record), and at thousands of creates a
// second those writes were a measurable part of each create's CPU. Lines keep their
// order. Flush writes out what is held; the process calls it before it exits. A
// process killed outright (SIGKILL, out of memory) loses the lines of its last few
// milliseconds.
type lineBatcher struct {
	out      io.Writer
	interval time.Duration

	mu    sync.Mutex
	buf   []byte // lines not written yet
	spare []byte // the buffer written last, for reuse
	armed bool   // a flush is scheduled

	wmu sync.Mutex // one write to out at a time, so batches keep their order
}

// batchLimit is how much a batch may hold before it is written at once.
const batchLimit = 64 << 10

func newLineBatcher(out io.Writer, interval time.Duration) *lineBatcher {
	return &lineBatcher{out: out, interval: interval}
}

// Write holds p (one log line: the handler writes each line in one call) for the
// next batch.
func (l *lineBatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= batchLimit
	arm := !l.armed && !full
	l.armed = l.armed || arm
	l.mu.Unlock()
	switch {
	case full:
		l.Flush()
	case arm:
		time.AfterFunc(l.interval, func() { l.Flush() })
	}
	return len(p), nil
}

// Flush writes out every line held.
func (l *lineBatcher) Flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	b := l.buf
	l.buf, l.spare, l.armed = l.spare[:0], nil, false
	l.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	_, err := l.out.Write(b)
	l.mu.Lock()
	if l.spare == nil && cap(b) <= batchLimit*2 {
		l.spare = b[:0]
	}
	l.mu.Unlock()
	return err
}
