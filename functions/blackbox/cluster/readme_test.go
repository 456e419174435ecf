//go:build e2e

package cluster

import (
	"strings"
	"testing"
	"time"
)

// The commands the deploy documentation tells a user to type, typed here against
// the cluster. Where the route's domain does not resolve on this machine (the
// local cluster's example.com), curl gets --connect-to and kn func an HTTP proxy
// pointing at the ingress: the same requests, delivered where DNS would send them.

// proxyEnv makes Go programs (kn func) send route requests to the ingress.
func proxyEnv() []string {
	if ingress == "" {
		return nil
	}
	return []string{"HTTP_PROXY=http://" + ingress, "http_proxy=http://" + ingress, "NO_PROXY=", "no_proxy="}
}

func typed(t *testing.T, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	t.Logf("$ %s %s", name, strings.Join(args, " "))
	out, err := commandIn(repoRoot, env, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return out
}

// TestKnFuncInvoke: `kn func invoke` from the repository root (func.yaml there
// describes cqrs-write) against the deployed functions' routes.
func TestKnFuncInvoke(t *testing.T) {
	routeServes(t, "cqrs-write")
	routeServes(t, "cqrs-read")
	word := nonce()
	out := typed(t, proxyEnv(), 2*time.Minute, "kn", "func", "invoke", "--target", urls["cqrs-write"], "--format", "cloudevent",
		"--type", "dev.cqrs.record.create", "--source", "demo", "--id", "demo-"+word,
		"--content-type", "application/json", "--data", `{"type":"cmt","text":"sent as an event `+word+`"}`)
	if !strings.Contains(out, "dev.cqrs.record.created") || !strings.Contains(out, word) {
		t.Fatalf("kn func invoke (write): want a dev.cqrs.record.created reply with the record, got\n%s", out)
	}
	t.Logf("reply:\n%s", out)
	out = typed(t, proxyEnv(), 2*time.Minute, "kn", "func", "invoke", "--target", urls["cqrs-read"], "--format", "cloudevent",
		"--type", "dev.cqrs.records.query", "--content-type", "application/json", "--data", `{"type":"cmt","q":"`+word+`","limit":5}`)
	if !strings.Contains(out, "dev.cqrs.records.result") || !strings.Contains(out, word) {
		t.Fatalf("kn func invoke (read): want a dev.cqrs.records.result reply with the record, got\n%s", out)
	}
}

// TestClusterLocal: the documentation's `kubectl label ksvc ... cluster-local`;
// the UI keeps reaching the function through its cluster-local URL.
func TestClusterLocal(t *testing.T) {
	typed(t, nil, time.Minute, "kubectl", "label", "ksvc", "cqrs-read", "--namespace", ns, "networking.knative.dev/visibility=cluster-local")
	t.Cleanup(func() {
		_, _ = command(time.Minute, "kubectl", "label", "ksvc", "cqrs-read", "--namespace", ns, "networking.knative.dev/visibility-")
		eventually(t, "cqrs-read's public URL back after removing the label", 90*time.Second, 500*time.Millisecond, func() bool {
			return serviceURL("cqrs-read") == urls["cqrs-read"]
		})
		_, _ = command(2*time.Minute, "kubectl", "wait", "--namespace", ns, "--for=condition=Ready", "--timeout=90s", "ksvc/cqrs-read")
		routeServes(t, "cqrs-read")
	})
	var u string
	eventually(t, "cqrs-read's URL to become cluster-local", 60*time.Second, 500*time.Millisecond, func() bool {
		u = serviceURL("cqrs-read")
		return strings.HasSuffix(hostOf(t, u), ".svc.cluster.local")
	})
	t.Logf("cqrs-read is cluster-local: %s", u)
	a, err := send(t, routeClient, "GET", urls["cqrs-ui"]+"/api/records?limit=1", nil, "")
	if err != nil || a.status != 200 {
		t.Errorf("UI -> cluster-local cqrs-read: got %v %v", a, err)
	}
	routeGone(t, "cqrs-read")
}
