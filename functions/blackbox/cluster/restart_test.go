//go:build e2e

package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestRedisMasterRestart: the Redis master pod is deleted while writes go on
// through cqrs-write's route. Writes fail while it is away (and say so); every
// write that was acknowledged is readable again once it is back: its data lives
// on a volume that outlives the pod.
func TestRedisMasterRestart(t *testing.T) {
	type acked struct {
		id  string
		seq int64
	}
	var (
		mu       sync.Mutex
		ok       []acked
		failures = map[int]int{}
		errs     int
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	before := create(t, "bp", "before the master restart "+nonce())
	ok = append(ok, acked{before.ID, before.Seq})
	go func() {
		defer close(done)
		deadline := time.Now().Add(5 * time.Minute)
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			a, err := send(t, routeClient, "POST", urls["cqrs-write"]+"/records", testenv.Header("Content-Type", "application/json"),
				fmt.Sprintf(`{"type":"cmt","text":"write %d under a master restart"}`, i))
			mu.Lock()
			switch {
			case err != nil:
				errs++
			case a.status == http.StatusCreated:
				var r struct {
					ID  string `json:"id"`
					Seq int64  `json:"seq"`
				}
				if json.Unmarshal(a.body, &r) == nil {
					ok = append(ok, acked{r.ID, r.Seq})
				}
			default:
				failures[a.status]++
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()

	podState := func() string {
		out, _ := command(time.Minute, "kubectl", "get", "pod", "cqrs-redis-master-0", "--namespace", ns,
			"-o", `jsonpath={.metadata.uid} {.status.conditions[?(@.type=="Ready")].status}`)
		return strings.TrimSpace(out)
	}
	old := strings.Fields(podState())
	if len(old) != 2 || old[1] != "True" {
		t.Fatalf("the Redis master pod is not Ready before the test: %v", old)
	}
	time.Sleep(2 * time.Second)
	deleted := time.Now()
	must(t, 2*time.Minute, "kubectl", "delete", "pod", "cqrs-redis-master-0", "--namespace", ns, "--wait=false")
	// Ready again: a new pod of the StatefulSet (another uid), with the same volume.
	eventually(t, "a new Redis master pod Ready", 4*time.Minute, 200*time.Millisecond, func() bool {
		f := strings.Fields(podState())
		return len(f) == 2 && f[0] != old[0] && f[1] == "True"
	})
	back := time.Since(deleted)
	// Writes succeed again.
	mu.Lock()
	n := len(ok)
	mu.Unlock()
	eventually(t, "writes acknowledged again after the restart", 2*time.Minute, 200*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ok) >= n+10
	})
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	t.Logf("master deleted; Ready again after %s; %d writes acknowledged, refused by status %v, %d transport errors",
		back.Round(100*time.Millisecond), len(ok), failures, errs)
	for s := range failures {
		if s != http.StatusServiceUnavailable && s != http.StatusGatewayTimeout && s != http.StatusBadGateway {
			t.Errorf("a write was answered %d while the master was away; want 503 (Redis unavailable)", s)
		}
	}
	// Every acknowledged write is there, read through cqrs-read (the replica has
	// resynchronised from the restarted master; minSeq waits for it).
	var maxSeq int64
	for _, a := range ok {
		if a.seq > maxSeq {
			maxSeq = a.seq
		}
	}
	lost := 0
	for _, a := range ok {
		var got answer
		eventually(t, "record "+a.id, 60*time.Second, 200*time.Millisecond, func() bool {
			var err error
			got, err = send(t, routeClient, "GET", urls["cqrs-read"]+"/records/"+a.id+"?minSeq="+strconv.FormatInt(maxSeq, 10), nil, "")
			return err == nil && (got.status == http.StatusOK || got.status == http.StatusNotFound)
		})
		if got.status != http.StatusOK {
			lost++
			t.Errorf("acknowledged record %s (seq %d) is gone after the master restart: %s", a.id, a.seq, got)
		}
	}
	fmt.Printf("e2e measured: Redis master pod deleted under writes: back Ready after %s; %d acknowledged writes, %d lost; refused meanwhile: %v, transport errors: %d\n",
		back.Round(100*time.Millisecond), len(ok), lost, failures, errs)
}
