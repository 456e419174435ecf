package faults_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// freeze stops s with SIGSTOP, as a Redis stuck on a slow disk or a long command
// would look from the network: connections are accepted, nothing is answered. The
// returned func (also run at cleanup) lets it go on.
func freeze(t *testing.T, s *redisproc.Server) (thaw func()) {
	t.Helper()
	pid := s.PID()
	if pid == 0 {
		t.Fatalf("%s on port %d is not running", s.Role, s.Port)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	thaw = func() { once.Do(func() { syscall.Kill(pid, syscall.SIGCONT) }) }
	t.Cleanup(thaw)
	return thaw
}

// TestStuckRedis freezes the master and then the replica: every request answers
// within the client's limit; a create with 503 outcome_unknown (it was sent), a read
// from the master (READ_FALLBACK=master) or 503 (none), a search with 503 (never run
// on the master); once Redis goes on, so do the functions.
func TestStuckRedis(t *testing.T) {
	pair := testenv.Redis(t)
	wurl := testfunc.Write(t, pair.Master, nil).URL
	rurl := testfunc.Read(t, pair, nil).URL
	strict := testfunc.Read(t, pair, func(c *read.Config) { c.ReadFallback = read.FallbackNone }).URL
	c := newClient(4)
	recs := seed(t, c, wurl, 3)

	thaw := freeze(t, pair.Master)
	begin := time.Now()
	o, _ := create(c, wurl, "bp", "into a stuck master")
	took := time.Since(begin)
	t.Logf("create against a stuck master: %v after %s", o, took.Round(time.Millisecond))
	// The create reached the master and got no answer: it may run once the master
	// goes on, so the client is told the outcome is unknown (retry with the key).
	if o.err != nil || o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "" ||
		!strings.Contains(string(o.body), fail.EUNKNOWN) {
		t.Errorf("create against a stuck master: %v, want 503 outcome_unknown with Retry-After", o)
	}
	if s := ready(c, wurl); s != http.StatusServiceUnavailable {
		t.Errorf("write readiness with a stuck master = %d, want 503", s)
	}
	thaw()
	if o := retry(3*time.Second, func() outcome { o, _ := create(c, wurl, "bp", "after the thaw"); return o }); o.status != http.StatusCreated {
		t.Errorf("create after the master went on: %v, want 201 within 3s", o)
	}

	thaw = freeze(t, pair.Replica)
	begin = time.Now()
	o, got := getRecord(c, rurl, recs[0].ID, 0)
	t.Logf("read with a stuck replica: %v after %s", o, time.Since(begin).Round(time.Millisecond))
	if o.err != nil || o.status != http.StatusOK || got.ID != recs[0].ID || o.header.Get("X-Served-By") != read.ServedByMaster {
		t.Errorf("read with a stuck replica and READ_FALLBACK=master: %v served by %q, want 200 from the master", o, o.header.Get("X-Served-By"))
	}
	o, _ = list(c, strict, "limit=1")
	if o.err != nil || o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "" {
		t.Errorf("read with a stuck replica and READ_FALLBACK=none: %v, want 503 with Retry-After", o)
	}
	// A search is never run again on the master: it may be what holds the replica.
	o, _ = list(c, rurl, "q=into")
	if o.err != nil || o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "" {
		t.Errorf("search with a stuck replica and READ_FALLBACK=master: %v, want 503 with Retry-After", o)
	}
	thaw()
	if o := retry(3*time.Second, func() outcome { o, _ := list(c, strict, "limit=1"); return o }); o.status != http.StatusOK {
		t.Errorf("read after the replica went on: %v, want 200 within 3s", o)
	}
}

// retry calls f until it answers 2xx or d passes, and returns the last outcome.
func retry(d time.Duration, f func() outcome) outcome {
	deadline := time.Now().Add(d)
	for {
		o := f()
		if o.err == nil && o.status/100 == 2 || time.Now().After(deadline) {
			return o
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoolExhaustion gives each function two Redis connections and sends 64
// requests at once while every write holds its connection for a WAIT that cannot be
// satisfied: each request is answered (stored, or 503 when no connection freed up in
// time), none hangs and none fails otherwise.
func TestPoolExhaustion(t *testing.T) {
	pair := testenv.Redis(t)
	wurl := testfunc.Write(t, pair.Master, func(c *write.Config) {
		c.RedisPoolSize = 2
		// Two replicas never confirm: each create holds a connection for the full wait.
		c.WriteReplicas, c.WriteWaitTimeout = 2, 300*time.Millisecond
	}).URL
	rurl := testfunc.Read(t, pair, func(c *read.Config) { c.RedisPoolSize = 2 }).URL

	const n = 64
	c := newClient(2 * n)
	var wg sync.WaitGroup
	writes, reads := make([]outcome, n), make([]outcome, n)
	for i := range n {
		wg.Add(2)
		go func() { defer wg.Done(); writes[i], _ = create(c, wurl, "rvw", fmt.Sprintf("pool %d", i)) }()
		go func() { defer wg.Done(); reads[i], _ = list(c, rurl, "limit=10") }()
	}
	wg.Wait()

	tally := func(name string, outs []outcome, ok int) {
		counts := map[string]int{}
		for _, o := range outs {
			switch {
			case o.err != nil:
				t.Errorf("%s: %v, want an answer within %s", name, o, clientTimeout)
				counts["no answer"]++
			case o.status == ok:
				counts[fmt.Sprint(ok)]++
			case o.status == http.StatusServiceUnavailable:
				counts["503"]++
				if o.header.Get("Retry-After") == "" {
					t.Errorf("%s: 503 without Retry-After", name)
				}
			default:
				t.Errorf("%s: %v, want %d or 503", name, o, ok)
				counts[fmt.Sprint(o.status)]++
			}
		}
		summary := fmt.Sprintf("pool of 2, %d concurrent %s: %v", n, name, counts)
		t.Log(summary)
		fmt.Println(summary)
		if counts[fmt.Sprint(ok)] == 0 {
			t.Errorf("%s: none succeeded", name)
		}
	}
	tally("creates", writes, http.StatusAccepted)
	tally("reads", reads, http.StatusOK)
}

// TestReplicaWithoutData points the read function at a replica that has not synced
// anything yet (its master is unreachable): a read with minSeq must not take the
// empty answer for the truth. It is served by the master, or refused with 503
// when the master is no fallback.
func TestReplicaWithoutData(t *testing.T) {
	pair := testenv.Redis(t)
	empty := testenv.Master(t)
	port, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// A replica of a master that is not there: it serves its (empty) data set, as a
	// new replica does before its first sync completes.
	if _, err := empty.Do("REPLICAOF", "127.0.0.1", fmt.Sprint(port)); err != nil {
		t.Fatal(err)
	}
	wurl := testfunc.Write(t, pair.Master, nil).URL
	onEmpty := func(c *read.Config) { c.RedisAddr, c.ReadMaxWait = empty.Addr(), 200*time.Millisecond }
	rurl := testfunc.Read(t, pair, onEmpty).URL
	strict := testfunc.Read(t, pair, func(c *read.Config) { onEmpty(c); c.ReadFallback = read.FallbackNone }).URL
	c := newClient(2)
	rec := seed(t, c, wurl, 1)[0]

	o, got := getRecord(c, rurl, rec.ID, rec.Seq)
	if o.err != nil || o.status != http.StatusOK || got.ID != rec.ID || o.header.Get("X-Served-By") != read.ServedByMaster {
		t.Errorf("get with minSeq from an empty replica: %v served by %q, want 200 from the master", o, o.header.Get("X-Served-By"))
	}
	o, p := list(c, rurl, fmt.Sprintf("minSeq=%d", rec.Seq))
	if o.err != nil || o.status != http.StatusOK || len(p.Records) != 1 || p.Records[0].ID != rec.ID {
		t.Errorf("list with minSeq from an empty replica: %v, want the record", o)
	}
	o, _ = getRecord(c, strict, rec.ID, rec.Seq)
	if o.err != nil || o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "" {
		t.Errorf("get with minSeq from an empty replica, no fallback: %v, want 503 with Retry-After", o)
	}
	if seq := o.header.Get("X-Replica-Seq"); o.status != http.StatusNotFound && seq != "" && seq != "0" {
		t.Errorf("X-Replica-Seq = %q from an empty replica, want 0", seq)
	}
}
