//go:build e2e

package cluster

import (
	"cmp"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// revisionOf is the Service's latest ready revision.
func revisionOf(t *testing.T, svc string) string {
	t.Helper()
	out, err := command(time.Minute, "kubectl", "get", "ksvc", svc, "--namespace", ns, "-o", "jsonpath={.status.latestReadyRevisionName}")
	if err != nil || strings.TrimSpace(out) == "" {
		t.Fatalf("revision of %s: %v %s", svc, err, out)
	}
	return strings.TrimSpace(out)
}

// pods counts the revision's pods, terminating ones included; -1 when the API
// server did not answer (on a busy machine it sometimes does not, for a moment;
// the callers poll again).
func pods(t *testing.T, rev string) int {
	t.Helper()
	out, err := command(time.Minute, "kubectl", "get", "pods", "--namespace", ns, "-l", "serving.knative.dev/revision="+rev, "-o", "name")
	if err != nil {
		t.Logf("pods of %s: %v %s", rev, err, strings.TrimSpace(out))
		return -1
	}
	return len(strings.Fields(out))
}

// desiredReplicas is the revision's Deployment's replicas; -1 as above.
func desiredReplicas(t *testing.T, rev string) int {
	t.Helper()
	out, err := command(time.Minute, "kubectl", "get", "deployment", rev+"-deployment", "--namespace", ns, "-o", "jsonpath={.spec.replicas}")
	n, cerr := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || cerr != nil {
		t.Logf("replicas of %s: %v %s", rev, err, strings.TrimSpace(out))
		return -1
	}
	return n
}

// sksMode is Proxy while the activator is in the revision's path (at zero),
// Serve while requests go to the pods.
func sksMode(t *testing.T, rev string) string {
	t.Helper()
	out, _ := command(time.Minute, "kubectl", "get", "serverlessservice", rev, "--namespace", ns, "-o", "jsonpath={.spec.mode}")
	return strings.TrimSpace(out)
}

// autoscalerWindow is how long Knative waits before scaling to zero, from its
// config-autoscaler (stable-window + scale-to-zero-grace-period).
func autoscalerWindow(t *testing.T) time.Duration {
	t.Helper()
	get := func(key string, def time.Duration) time.Duration {
		out, err := command(time.Minute, "kubectl", "get", "configmap", "config-autoscaler", "--namespace", "knative-serving", "-o", "jsonpath={.data."+key+"}")
		if d, perr := time.ParseDuration(strings.TrimSpace(out)); err == nil && perr == nil {
			return d
		}
		return def
	}
	return get("stable-window", 60*time.Second) + get("scale-to-zero-grace-period", 30*time.Second)
}

type zeroTimes struct{ toZeroReplicas, toNoPods time.Duration }

// waitForZero waits until the revision has 0 desired replicas and then no pod
// at all, and says how long after `since` each happened.
func waitForZero(t *testing.T, rev string, since time.Time) zeroTimes {
	t.Helper()
	window := autoscalerWindow(t)
	var z zeroTimes
	eventually(t, rev+" to 0 replicas", window+2*time.Minute, 500*time.Millisecond, func() bool { return desiredReplicas(t, rev) == 0 })
	z.toZeroReplicas = time.Since(since)
	eventually(t, rev+" to 0 pods", 3*time.Minute, 500*time.Millisecond, func() bool { return pods(t, rev) == 0 })
	z.toNoPods = time.Since(since)
	return z
}

// coldRequest is the request each function gets after being at zero.
func coldRequest(t *testing.T, svc string) (answer, error) {
	if svc == "cqrs-write" {
		return send(t, routeClient, "POST", urls[svc]+"/records", testenv.Header("Content-Type", "application/json"),
			fmt.Sprintf(`{"type":"cmt","text":"after zero %s"}`, nonce()))
	}
	return send(t, routeClient, "GET", urls[svc]+"/records?limit=1", nil, "")
}

// TestScaleToZero: with no traffic each function's revision goes to 0 pods, and
// the first request after that is held by the activator until a pod is up, and
// answered. Five rounds per function; the test prints every round and medians.
func TestScaleToZero(t *testing.T) {
	const rounds = 5
	var mu sync.Mutex
	report := map[string]string{}
	debugLogs(t)
	for _, svc := range []string{"cqrs-write", "cqrs-read"} {
		// One function at a time: on two cores, one function's pods starting or
		// draining would slow the other's cold start and blur its number.
		t.Run(svc, func(t *testing.T) {
			rev := revisionOf(t, svc)
			want := http.StatusOK
			if svc == "cqrs-write" {
				want = http.StatusCreated
			}
			a, err := coldRequest(t, svc)
			if err != nil || a.status != want {
				t.Fatalf("first request: %v %v", a, err)
			}
			last := time.Now()
			var zeroR, zeroP, cold []time.Duration
			var traced []coldRound
			for i := 1; i <= rounds; i++ {
				z := waitForZero(t, rev, last)
				zeroR, zeroP = append(zeroR, z.toZeroReplicas), append(zeroP, z.toNoPods)
				if m := sksMode(t, rev); m != "Proxy" {
					t.Errorf("round %d: at zero the ServerlessService is in mode %q, want Proxy (activator in the path)", i, m)
				}
				r := coldRound{svc: svc, rev: rev, load: loadAvg()}
				r.start = time.Now()
				a, err := coldRequest(t, svc)
				r.took = time.Since(r.start)
				last = time.Now()
				if err != nil || a.status != want {
					t.Fatalf("round %d: request from zero: %v %v", i, a, err)
				}
				cold = append(cold, r.took)
				// The pod that answered and its logs, while it is up, for the
				// timeline of the median round.
				traceRound(t, &r)
				traced = append(traced, r)
				t.Logf("%s round %d: last request -> 0 replicas %s, -> 0 pods %s; first request from zero at %s: %s (pod %s, load average %s)",
					svc, i, z.toZeroReplicas.Round(100*time.Millisecond), z.toNoPods.Round(100*time.Millisecond),
					r.start.UTC().Format("15:04:05.000"), r.took.Round(time.Millisecond), r.pod, r.load)
			}
			slices.SortFunc(traced, func(a, b coldRound) int { return cmp.Compare(a.took, b.took) })
			printTimeline(t, traced[len(traced)/2])
			line := fmt.Sprintf("%s: last request -> 0 replicas median %s, -> 0 pods median %s; first request from zero through the activator median %s (all: %v)",
				svc, median(zeroR).Round(100*time.Millisecond), median(zeroP).Round(100*time.Millisecond), median(cold).Round(time.Millisecond), roundAll(cold))
			mu.Lock()
			report[svc] = line
			mu.Unlock()
			fmt.Println("e2e measured:", line)
		})
	}
	t.Cleanup(func() {
		t.Logf("autoscaler: stable-window + scale-to-zero-grace-period = %s", autoscalerWindow(t))
		for _, l := range report {
			t.Log(l)
		}
	})
}

func roundAll(ds []time.Duration) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(time.Millisecond).String())
	}
	return s
}
