package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

const sentinelMaster = "cqrs"

// startSentinel starts one Sentinel (quorum 1) over pair and waits until it knows
// the replica as healthy, so that it can promote it.
func startSentinel(t *testing.T, pair *testenv.Pair) *redisproc.Server {
	t.Helper()
	sen, err := redisproc.StartSentinel(t.TempDir(), 0, sentinelMaster, pair.Master, 1)
	if err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(func() { sen.Kill() })
	sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr()})
	defer sc.Close()
	testenv.WaitSentinelKnows(t, sc, sentinelMaster, pair.Replica.Port)
	return sen
}

// sentinelMasterPort asks Sentinel which port it holds for the master.
func sentinelMasterPort(sen *redisproc.Server) (string, error) {
	sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addr()})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr, err := sc.GetMasterAddrByName(ctx, sentinelMaster).Result()
	if err != nil {
		return "", err
	}
	return addr[1], nil
}

// TestSentinelFailoverLosesNoReplicatedWrite kills the master under 8 writers. The
// write function follows Sentinel to the promoted replica, and every create it
// acknowledged as replicated (201, "replicated":true) is still there afterwards.
func TestSentinelFailoverLosesNoReplicatedWrite(t *testing.T) {
	pair := testenv.Redis(t)
	sen := startSentinel(t, pair)

	wcfg := write.DefaultConfig()
	wcfg.RedisSentinelAddrs, wcfg.RedisSentinelMaster = []string{sen.Addr()}, sentinelMaster
	wcfg.WriteReplicas, wcfg.WriteWaitTimeout = 1, 500*time.Millisecond
	wurl := testfunc.Serve(t, write.NewWithConfig(wcfg)).URL
	rcfg := read.DefaultConfig()
	rcfg.RedisSentinelAddrs, rcfg.RedisSentinelMaster = []string{sen.Addr()}, sentinelMaster
	rcfg.ReadFallback = read.FallbackMaster
	rurl := testfunc.Serve(t, read.NewWithConfig(rcfg)).URL

	const (
		writers   = 8
		before    = 2 * time.Second  // writes before the kill
		resumeMax = 15 * time.Second // the bound for writes to resume
		after     = 2 * time.Second  // writes after they resumed
		maxCalls  = 40000            // a bound on the traffic, whatever the timing
	)
	c := newClient(writers)
	type result struct {
		start time.Time
		o     outcome
		a     answer
	}
	var (
		mu       sync.Mutex
		results  []result
		killedAt time.Time
		resumed  time.Time
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				o, a := create(c, wurl, "bp", fmt.Sprintf("failover writer %d call %d", w, i))
				mu.Lock()
				results = append(results, result{start, o, a})
				n := len(results)
				if !killedAt.IsZero() && resumed.IsZero() && start.After(killedAt) &&
					(o.status == http.StatusCreated || o.status == http.StatusAccepted) {
					resumed = time.Now()
				}
				mu.Unlock()
				if n >= maxCalls {
					return
				}
				if o.status != http.StatusCreated {
					// A client that honours Retry-After backs off; this one only a little,
					// so that the window without a master is sampled densely.
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}

	time.Sleep(before)
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	if err := pair.Master.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(resumeMax)
	for {
		mu.Lock()
		r := resumed
		mu.Unlock()
		if !r.IsZero() {
			time.Sleep(after)
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if resumed.IsZero() {
		t.Fatalf("writes did not resume within %s of killing the master", resumeMax)
	}
	port, err := sentinelMasterPort(sen)
	if err != nil || port != fmt.Sprint(pair.Replica.Port) {
		t.Errorf("sentinel names master port %s (err %v), want the promoted replica's %d", port, err, pair.Replica.Port)
	}

	var acked, unconfirmed, refused, cut, lost int
	var others []string
	for _, r := range results {
		switch {
		case r.o.err != nil:
			// Cut off by the client: not acknowledged, so nothing is promised.
			cut++
		case r.o.status == http.StatusCreated && r.a.Replicated != nil && *r.a.Replicated:
			acked++
			o, got := getRecord(c, rurl, r.a.ID, 0)
			if o.err != nil || o.status != http.StatusOK || got.Text != r.a.Text || got.Seq != r.a.Seq {
				lost++
				if lost <= 5 {
					t.Errorf("record %s (seq %d) acknowledged as replicated, read back %v", r.a.ID, r.a.Seq, o)
				}
			}
		case r.o.status == http.StatusAccepted:
			unconfirmed++
		case r.o.status == http.StatusServiceUnavailable:
			refused++
		default:
			others = append(others, r.o.String())
		}
	}
	if len(others) > 0 {
		t.Errorf("%d answers were neither 201, 202 nor 503, first: %s", len(others), others[0])
	}
	if acked == 0 {
		t.Errorf("no create was acknowledged as replicated")
	}
	summary := fmt.Sprintf("sentinel failover: %d creates, %d acknowledged as replicated, %d stored unconfirmed (202), %d refused (503), %d cut off by the client, %d lost; writes resumed %s after the kill",
		len(results), acked, unconfirmed, refused, cut, lost, resumed.Sub(killedAt).Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}
