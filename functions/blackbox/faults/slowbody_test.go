package faults_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestSlowEndlessBodiesAreCut opens 200 connections to each built service, each
// sending a GET with a chunked body one byte at a time and never ending it. Every
// service closes them all within BODY_TIMEOUT (plus a little), while ordinary
// requests keep being answered.
func TestSlowEndlessBodiesAreCut(t *testing.T) {
	const (
		bodyTimeout = time.Second
		conns       = 200
		slack       = 3 * time.Second
	)
	st := testenv.StartStack(t, testenv.StackOptions{Env: []string{"BODY_TIMEOUT=" + bodyTimeout.String()}})
	services := map[string]string{"write": st.Write.URL(), "read": st.Read.URL(), "ui": st.Page.URL()}
	paths := map[string]string{"write": "/records", "read": "/records", "ui": "/"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	type held struct {
		service string
		took    time.Duration
		err     error
	}
	results := make(chan held, 3*conns)
	for name, base := range services {
		addr := base[len("http://"):]
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				took, err := slowBody(addr, paths[name], stop, bodyTimeout+slack+5*time.Second)
				results <- held{name, took, err}
			}()
		}
	}
	// Meanwhile, ordinary requests to each service are answered.
	deadline := time.Now().Add(bodyTimeout)
	answered := 0
	c := newClient(4)
	for time.Now().Before(deadline) {
		for name, base := range services {
			o := do(c, mustRequest(t, http.MethodGet, base+"/health/readiness", ""))
			if o.err != nil || o.status != 200 {
				t.Errorf("%s readiness during the slow bodies: %d %v", name, o.status, o.err)
			}
			answered++
		}
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	close(stop)
	close(results)
	var longest time.Duration
	for h := range results {
		if h.err != nil {
			t.Errorf("%s: %v", h.service, h.err)
			continue
		}
		longest = max(longest, h.took)
	}
	t.Logf("%d slow connections closed, the longest after %s; %d ordinary requests answered meanwhile", 3*conns, longest, answered)
	if longest > bodyTimeout+slack {
		t.Errorf("a slow connection was held %s, want about BODY_TIMEOUT (%s)", longest, bodyTimeout)
	}
}

// slowBody sends GET path with a chunked body that never ends, a byte every 100 ms,
// and returns how long the server kept the connection before closing it.
func slowBody(addr, path string, stop chan struct{}, giveUp time.Duration) (time.Duration, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n", path)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, err := io.WriteString(c, "1\r\na\r\n"); err != nil {
					return
				}
			}
		}
	}()
	c.SetReadDeadline(start.Add(giveUp))
	_, err = io.Copy(io.Discard, bufio.NewReader(c))
	// A reset is the server closing with our unread bytes still in its buffer.
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return time.Since(start), fmt.Errorf("connection still open after %s: %w", time.Since(start), err)
	}
	return time.Since(start), nil
}
