package faults_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
)

// TestLoadThroughReplicaRestart runs 30 s of mixed creates and reads at 32
// connections against the built binaries, killing the replica after 10 s and
// starting it again (empty, so it syncs anew) after 15 s. Every reader asks for its
// own last write (minSeq); with READ_FALLBACK=master clients see no error at all.
func TestLoadThroughReplicaRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of load; skipped with -short")
	}
	pair := testenv.Redis(t)
	w := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-write"), "REDIS_ADDR="+pair.Master.Addr())
	r := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-read"),
		"REDIS_ADDR="+pair.Replica.Addr(), "REDIS_MASTER_ADDR="+pair.Master.Addr(), "READ_FALLBACK=master")
	testenv.Ready(t, w, 10*time.Second)
	testenv.Ready(t, r, 10*time.Second)

	const (
		conns    = 32
		duration = 30 * time.Second
		killAt   = 10 * time.Second
		startAt  = 15 * time.Second
		maxCalls = 300000 // a bound on the traffic, whatever the machine's speed
	)
	c := newClient(2 * conns)
	var calls, creates, errs atomic.Int64
	var byMaster, byReplica atomic.Int64
	var firstErr atomic.Value
	fail := func(what string, o outcome) {
		errs.Add(1)
		firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", what, o))
	}
	begin := time.Now()
	var wg sync.WaitGroup
	for n := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last answer
			for i := 0; time.Since(begin) < duration && calls.Add(1) <= maxCalls; i++ {
				if i%4 == 0 {
					o, a := create(c, w.URL(), "rvw", fmt.Sprintf("load %d %d", n, i))
					if o.err != nil || o.status != http.StatusCreated {
						fail("create", o)
						continue
					}
					creates.Add(1)
					last = a
					continue
				}
				var o outcome
				if i%2 == 0 {
					var got answer
					o, got.Record = getRecord(c, r.URL(), last.ID, last.Seq)
					if o.err != nil || o.status != http.StatusOK || got.ID != last.ID {
						fail("get own write", o)
						continue
					}
				} else {
					var p page
					o, p = list(c, r.URL(), fmt.Sprintf("limit=10&type=rvw&minSeq=%d", last.Seq))
					if o.err != nil || o.status != http.StatusOK || len(p.Records) == 0 || p.Records[0].Seq < last.Seq {
						fail("list after own write", o)
						continue
					}
				}
				if o.header.Get("X-Served-By") == read.ServedByMaster {
					byMaster.Add(1)
				} else {
					byReplica.Add(1)
				}
			}
		}()
	}

	time.Sleep(killAt - time.Since(begin))
	if err := pair.Replica.Kill(); err != nil {
		t.Error(err)
	}
	time.Sleep(startAt - time.Since(begin))
	if err := pair.Replica.Start(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	elapsed := time.Since(begin)
	if err := pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
		t.Error(err)
	}

	total := creates.Load() + byMaster.Load() + byReplica.Load() + errs.Load()
	summary := fmt.Sprintf("load %s at %d connections, replica killed at %s and back at %s: %d requests (%.0f/s), %d creates, %d reads from the replica, %d from the master, %d errors",
		elapsed.Round(time.Second), conns, killAt, startAt, total, float64(total)/elapsed.Seconds(),
		creates.Load(), byReplica.Load(), byMaster.Load(), errs.Load())
	t.Log(summary)
	fmt.Println(summary)
	if errs.Load() > 0 {
		t.Errorf("clients saw %d errors, want 0; first: %v", errs.Load(), firstErr.Load())
	}
	if byMaster.Load() == 0 || byReplica.Load() == 0 {
		t.Errorf("reads served by the replica %d, by the master %d: the fault was not exercised", byReplica.Load(), byMaster.Load())
	}
	for _, p := range []*launch.Proc{w, r} {
		if code := p.Wait(0); code != -1 {
			t.Errorf("a function exited with %d under load", code)
		}
	}
}
