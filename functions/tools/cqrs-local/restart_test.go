package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/record"
)

// runStack starts the built cqrs-local on free ports with env added, waits for its
// banner and returns it with the write and read functions' URLs.
func runStack(t *testing.T, env ...string) (p *launch.Proc, writeURL, readURL string) {
	t.Helper()
	bin := buildStack(t)
	ports := freePorts(t, 3)
	p = testenv.StartOnPort(t, bin, ports[0], append([]string{"UI_PORT=" + strconv.Itoa(ports[0]),
		"WRITE_PORT=" + strconv.Itoa(ports[1]), "READ_PORT=" + strconv.Itoa(ports[2])}, env...)...)
	testenv.Ready(t, p, 30*time.Second)
	testenv.WaitOutput(t, p, "Press Ctrl-C to stop everything.", 15*time.Second)
	return p, "http://127.0.0.1:" + strconv.Itoa(ports[1]), "http://127.0.0.1:" + strconv.Itoa(ports[2])
}

// pidOf is the pid cqrs-local printed for what ("redis-master", "write", ...), the
// last one it started.
func pidOf(t *testing.T, p *launch.Proc, what string) int {
	t.Helper()
	m := regexp.MustCompile(`(?:started|restarted) `+regexp.QuoteMeta(what)+` pid=(\d+)`).FindAllStringSubmatch(p.Output(), -1)
	if m == nil {
		t.Fatalf("no pid of %s in:\n%s", what, p.Output())
	}
	pid, _ := strconv.Atoi(m[len(m)-1][1])
	return pid
}

// stopStack sends Ctrl-C and wants cqrs-local to end with 0.
func stopStack(t *testing.T, p *launch.Proc) {
	t.Helper()
	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("cqrs-local exited with %d after SIGINT, want 0:\n%s", code, p.Output())
	}
}

// post creates a record under key and returns the status and the record.
func post(c *http.Client, base, key, text string) (int, record.Record, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/records", strings.NewReader(`{"type":"bp","text":`+strconv.Quote(text)+`}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := c.Do(req)
	if err != nil {
		return 0, record.Record{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r record.Record
	if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &r); err != nil {
			return resp.StatusCode, r, fmt.Errorf("%s: %w", b, err)
		}
	}
	return resp.StatusCode, r, nil
}

// fetch reads a record by id once the replica has applied minSeq (or from the
// master, the read function's fallback).
func fetch(c *http.Client, base string, id string, minSeq int64) (int, record.Record, error) {
	resp, err := c.Get(base + "/records/" + id + "?minSeq=" + strconv.FormatInt(minSeq, 10))
	if err != nil {
		return 0, record.Record{}, err
	}
	defer resp.Body.Close()
	var r record.Record
	if resp.StatusCode == http.StatusOK {
		err = json.NewDecoder(resp.Body).Decode(&r)
	}
	return resp.StatusCode, r, err
}

// TestMasterKilledUnderLoadLosesNothing: writers create records through the write
// function, each with an Idempotency-Key, and retry a 503 (or a lost answer) with
// the same key, as the API asks; meanwhile the master cqrs-local started is killed
// with SIGKILL. cqrs-local says so at once and starts it again from its append-only
// file; every create that was acknowledged (201, or 200 for a retried key) is read
// back afterwards by its id, each key names one record, and the store holds no
// record that no one was told about.
func TestMasterKilledUnderLoadLosesNothing(t *testing.T) {
	testenv.RequireRedis(t)
	p, w, r := runStack(t)
	master := pidOf(t, p, "redis-master")

	const (
		writers    = 4
		perWriter  = 300 // creates each writer makes
		killAfter  = 200 // acknowledged creates before the kill
		maxRetries = 500 // of one key, 20 ms apart: 10 s without a master at most
	)
	c := &http.Client{Timeout: 5 * time.Second}
	type acked struct {
		key    string
		status int
		rec    record.Record
	}
	var (
		mu      sync.Mutex
		got     []acked
		retried atomic.Int64
		failed  atomic.Int64
		killed  = make(chan struct{})
	)
	var wg sync.WaitGroup
	for wr := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				key, text := fmt.Sprintf("w%d-%d", wr, i), fmt.Sprintf("writer %d record %d", wr, i)
				for try := 0; ; try++ {
					status, rec, err := post(c, w, key, text)
					if err == nil && (status == http.StatusCreated || status == http.StatusOK) {
						mu.Lock()
						got = append(got, acked{key, status, rec})
						mu.Unlock()
						break
					}
					if (err == nil && status != http.StatusServiceUnavailable) || try == maxRetries {
						failed.Add(1)
						t.Errorf("create %s: status %d, %v after %d tries", key, status, err, try+1)
						return
					}
					retried.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	go func() {
		defer close(killed)
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= killAfter {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
			t.Errorf("kill -9 %d: %v", master, err)
		}
	}()
	<-killed
	testenv.WaitOutput(t, p, fmt.Sprintf("redis-master pid=%d died (signal: killed)", master), 15*time.Second)
	testenv.WaitOutput(t, p, "restarted redis-master pid=", 15*time.Second)
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	if pidOf(t, p, "redis-master") == master {
		t.Fatalf("the master's pid is still %d after the restart", master)
	}

	ids := map[string]string{} // id -> key
	lost := 0
	for _, a := range got {
		if k, ok := ids[a.rec.ID]; ok && k != a.key {
			t.Errorf("keys %s and %s were answered with the same record %s", k, a.key, a.rec.ID)
		}
		ids[a.rec.ID] = a.key
		status, rec, err := fetch(c, r, a.rec.ID, a.rec.Seq)
		if err != nil || status != http.StatusOK || rec.Text != a.rec.Text {
			lost++
			if lost <= 5 {
				t.Errorf("record %s (key %s, acknowledged %d) read back: %d %q %v", a.rec.ID, a.key, a.status, status, rec.Text, err)
			}
		}
	}
	if len(got) != writers*perWriter {
		t.Errorf("%d creates acknowledged, want %d", len(got), writers*perWriter)
	}
	// Every key names one record, and the store holds exactly those.
	var maxSeq int64
	for _, a := range got {
		maxSeq = max(maxSeq, a.rec.Seq)
	}
	if maxSeq != int64(len(ids)) {
		t.Errorf("the newest seq is %d with %d records acknowledged: the store holds records no one was told about, or lost some", maxSeq, len(ids))
	}
	summary := fmt.Sprintf("master killed under load: %d creates acknowledged, %d retries of a 503, %d lost", len(got), retried.Load(), lost)
	t.Log(summary)
	if retried.Load() == 0 {
		t.Errorf("no create was refused while the master was down; the kill did not land under load")
	}
	stopStack(t, p)
}

// TestRedisDirSurvivesRuns: with REDIS_DIR, the data outlives the stack: a record
// created in one run is read in the next; a second stack on the same directory is
// refused in one line; and the directory is kept.
func TestRedisDirSurvivesRuns(t *testing.T) {
	testenv.RequireRedis(t)
	dir := t.TempDir() + "/data"
	p, w, _ := runStack(t, "REDIS_DIR="+dir)
	c := &http.Client{Timeout: 5 * time.Second}
	status, rec, err := post(c, w, "kept-1", "kept across runs")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, err)
	}

	other := testenv.StartOnPort(t, buildStack(t), 0, "UI_PORT=0", "WRITE_PORT=0", "READ_PORT=0", "REDIS_DIR="+dir)
	if code := other.Wait(10 * time.Second); code != 1 || !strings.HasPrefix(other.Output(), "cqrs-local: -redis-dir "+dir+": another cqrs-local uses it") {
		t.Errorf("a second stack on the same directory: exit %d, %q; want 1 and one line saying it is in use", code, other.Output())
	}

	stopStack(t, p)
	if !strings.Contains(p.Output(), "kept redis dir "+dir) {
		t.Errorf("output does not say the directory was kept:\n%s", p.Output())
	}
	if _, err := os.Stat(dir + "/master/appendonlydir"); err != nil {
		t.Errorf("no append-only file of the master in %s: %v", dir, err)
	}

	p, w, r := runStack(t, "REDIS_DIR="+dir)
	if status, got, err := fetch(c, r, rec.ID, rec.Seq); err != nil || status != http.StatusOK || got.Text != rec.Text {
		t.Errorf("record %s in the next run: %d %q %v, want 200 %q", rec.ID, status, got.Text, err, rec.Text)
	}
	if status, again, err := post(c, w, "kept-1", "kept across runs"); err != nil || status != http.StatusOK || again.ID != rec.ID {
		t.Errorf("the same key in the next run: %d %s %v, want 200 %s", status, again.ID, err, rec.ID)
	}
	stopStack(t, p)
}

// TestDeadChildrenAreRestarted: the replica and the write function, killed, are
// reported and started again, and the stack serves as before; a child that keeps
// dying stops the stack instead of being restarted forever.
func TestDeadChildrenAreRestarted(t *testing.T) {
	testenv.RequireRedis(t)
	p, w, r := runStack(t)
	c := &http.Client{Timeout: 5 * time.Second}
	for _, what := range []string{"redis-replica", "write"} {
		pid := pidOf(t, p, what)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testenv.WaitOutput(t, p, fmt.Sprintf("%s pid=%d died (signal: killed)", what, pid), 15*time.Second)
		testenv.WaitOutput(t, p, "restarted "+what+" pid=", 15*time.Second)
	}
	var rec record.Record
	for try := 0; ; try++ {
		status, got, err := post(c, w, "after-restarts", "served after restarts")
		if err == nil && status == http.StatusCreated {
			rec = got
			break
		}
		if try == 100 {
			t.Fatalf("create after the restarts: %d %v", status, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, got, err := fetch(c, r, rec.ID, rec.Seq); err != nil || status != http.StatusOK || got.Text != rec.Text {
		t.Errorf("read after the restarts: %d %q %v", status, got.Text, err)
	}

	for i := 0; i <= restartLimit; i++ {
		pid := pidOf(t, p, "ui")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if i < restartLimit {
			deadline := time.Now().Add(15 * time.Second)
			for pidOf(t, p, "ui") == pid && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	if code := p.Wait(30 * time.Second); code != 1 {
		t.Fatalf("cqrs-local exited with %d after the UI died %d times, want 1:\n%s", code, restartLimit+1, p.Output())
	}
	if want := fmt.Sprintf("ui died %d times within %s; stopping the rest", restartLimit+1, restartWindow); !strings.Contains(p.Output(), want) {
		t.Errorf("output lacks %q:\n%s", want, p.Output())
	}
}
