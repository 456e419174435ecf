package faults_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
)

// seed stores n records through the write function and returns them in order.
func seed(t *testing.T, c *http.Client, wurl string, n int) []answer {
	t.Helper()
	out := make([]answer, 0, n)
	for i := range n {
		o, a := create(c, wurl, "cmt", fmt.Sprintf("seed record %d", i))
		if o.err != nil || o.status != http.StatusCreated {
			t.Fatalf("seed create %d: %v", i, o)
		}
		out = append(out, a)
	}
	return out
}

// TestReplicaKilledUnderReaders kills the replica while 8 readers ask for records
// they must see (minSeq), then starts it again empty: with READ_FALLBACK=master not
// one read fails or misses its record, neither while the replica is gone nor while
// it syncs again.
func TestReplicaKilledUnderReaders(t *testing.T) {
	pair := testenv.Redis(t)
	wurl := testfunc.Write(t, pair.Master, nil).URL
	rurl := testfunc.Read(t, pair, nil).URL // READ_FALLBACK=master, the default

	const readers = 8
	c := newClient(readers)
	recs := seed(t, c, wurl, 20)
	newest := recs[len(recs)-1]

	var calls, failed atomic.Int64
	var served sync.Map // X-Served-By -> *atomic.Int64
	var firstFailure atomic.Value
	fail := func(what string, o outcome) {
		failed.Add(1)
		firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %v", what, o))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := r; calls.Load() < 20000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				calls.Add(1)
				var o outcome
				if i%2 == 0 {
					want := recs[i%len(recs)]
					var got answer
					o, got.Record = getRecord(c, rurl, want.ID, want.Seq)
					if o.err != nil || o.status != http.StatusOK || got.ID != want.ID {
						fail("get "+want.ID, o)
						continue
					}
				} else {
					var p page
					o, p = list(c, rurl, fmt.Sprintf("limit=5&minSeq=%d", newest.Seq))
					if o.err != nil || o.status != http.StatusOK || len(p.Records) == 0 || p.Records[0].ID != newest.ID {
						fail("list", o)
						continue
					}
				}
				n, _ := served.LoadOrStore(o.header.Get("X-Served-By"), new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}

	time.Sleep(time.Second)
	if err := pair.Replica.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := pair.Replica.Start(); err != nil {
		t.Fatal(err)
	}
	if err := pair.Replica.WaitLinkUp(10 * time.Second); err != nil {
		t.Error(err)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	count := func(by string) int64 {
		if n, ok := served.Load(by); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	summary := fmt.Sprintf("replica killed under %d readers: %d reads, %d failed, %d served by the replica, %d by the master",
		readers, calls.Load(), failed.Load(), count(read.ServedByReplica), count(read.ServedByMaster))
	t.Log(summary)
	fmt.Println(summary)
	if failed.Load() > 0 {
		t.Errorf("%d reads failed, want 0; first: %v", failed.Load(), firstFailure.Load())
	}
	if count(read.ServedByMaster) == 0 {
		t.Errorf("no read was served by the master, so the replica's absence was not exercised")
	}
	if count(read.ServedByReplica) == 0 {
		t.Errorf("no read was served by the replica")
	}
}

// TestMasterRestartedInPlace kills the master under the built write binary and starts
// it again on the same port: the same process answers 503 while it is gone and
// stores again within 3 s of it being back.
func TestMasterRestartedInPlace(t *testing.T) {
	m := testenv.Master(t)
	p := testenv.Start(t, testenv.Build(t, "./functions/cmd/cqrs-write"), "REDIS_ADDR="+m.Addr())
	testenv.Ready(t, p, 10*time.Second)
	c := newClient(1)
	if o, _ := create(c, p.URL(), "bp", "before the restart"); o.status != http.StatusCreated {
		t.Fatalf("create before the restart: %v", o)
	}
	pid := p.Cmd.Process.Pid

	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	if o, _ := create(c, p.URL(), "bp", "while the master is gone"); o.err != nil || o.status != http.StatusServiceUnavailable || o.header.Get("Retry-After") == "" {
		t.Errorf("create with the master gone: %v, want 503 with Retry-After", o)
	}
	if s := ready(c, p.URL()); s != http.StatusServiceUnavailable {
		t.Errorf("readiness with the master gone = %d, want 503", s)
	}

	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	var last outcome
	for time.Since(back) < 3*time.Second {
		if last, _ = create(c, p.URL(), "bp", "after the restart"); last.status == http.StatusCreated {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(back)
	if last.status != http.StatusCreated {
		t.Fatalf("no create succeeded within 3s of the master's restart; last: %v", last)
	}
	if code := p.Wait(0); code != -1 || p.Cmd.Process.Pid != pid {
		t.Errorf("the write process exited (code %d); it must ride out the restart", code)
	}
	if s := ready(c, p.URL()); s != http.StatusOK {
		t.Errorf("readiness after the restart = %d, want 200", s)
	}
	summary := fmt.Sprintf("master restarted in place: writes resumed %s after it was back", took.Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}
