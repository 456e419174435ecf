//go:build e2e

package cluster

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// makeDeploy runs make deploy with extra variables, as the setup does.
func makeDeploy(t *testing.T, vars ...string) {
	t.Helper()
	args := deployArgs(vars...)
	t.Logf("$ make %s", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestOverlayClusterLocal: `make deploy OVERLAY=knative/cluster-local` (the
// documented production variant) makes both functions cluster-local; the page's
// proxy and the Broker still reach them. Then plain make deploy brings the
// public routes back.
func TestOverlayClusterLocal(t *testing.T) {
	makeDeploy(t, "OVERLAY=knative/cluster-local")
	restored := false
	t.Cleanup(func() {
		if !restored {
			makeDeploy(t)
		}
	})
	for _, s := range []string{"cqrs-write", "cqrs-read"} {
		eventually(t, s+" cluster-local", 90*time.Second, 500*time.Millisecond, func() bool {
			return strings.HasSuffix(serviceURL(s), ".svc.cluster.local")
		})
	}
	word := nonce()
	a, err := send(t, routeClient, "POST", urls["cqrs-ui"]+"/api/records", testenv.Header("Content-Type", "application/json",
		"Origin", strings.TrimSuffix(urls["cqrs-ui"], "/")), `{"type":"bp","text":"through the page's proxy `+word+`"}`)
	if err != nil || a.status != 201 {
		t.Fatalf("UI /api/records with cluster-local functions: got %v %v", a, err)
	}
	a, err = send(t, routeClient, "GET", urls["cqrs-ui"]+"/api/records?q="+word, nil, "")
	if err != nil || a.status != 200 || !strings.Contains(string(a.body), word) {
		t.Fatalf("UI /api/records?q= with cluster-local functions: got %v %v", a, err)
	}
	routeGone(t, "cqrs-read")

	makeDeploy(t)
	restored = true
	for _, s := range []string{"cqrs-write", "cqrs-read"} {
		eventually(t, s+" public again", 90*time.Second, 500*time.Millisecond, func() bool {
			return serviceURL(s) == urls[s]
		})
		routeServes(t, s)
	}
}
