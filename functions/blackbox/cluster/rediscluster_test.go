//go:build e2e

package cluster

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// redisClusterOverlay is the overlay of the functions on a Redis Cluster, which
// make deploy REDIS_MODE=cluster renders.
const redisClusterOverlay = "knative/redis-cluster"

// TestRedisCluster: the Services on a Redis Cluster of three masters with a
// replica each, deployed as a user deploys them (make deploy REDIS_MODE=cluster:
// Bitnami's redis-cluster chart, or on the local cluster its stand-in under the
// chart's names, and the functions of the knative/redis-cluster overlay) into a
// namespace of their own beside the suite's. Through the routes: each create is
// read back at once with its token (read your own writes), by id, and in one
// page newest first; a numeric minSeq is refused, as cluster mode takes tokens
// only (which also shows the functions are in cluster mode).
func TestRedisCluster(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, redisClusterOverlay, "kustomization.yaml")); err != nil {
		t.Fatalf("the overlay %s: %v", redisClusterOverlay, err)
	}
	rns := ns + "-rcluster"
	t.Cleanup(func() {
		if out, err := command(4*time.Minute, "kubectl", "delete", "namespace", rns, "--wait", "--timeout=3m"); err != nil {
			t.Logf("kubectl delete namespace %s: %v\n%s", rns, err, out)
		}
	})
	start := time.Now()
	makeDeploy(t, "NAMESPACE="+rns, "REDIS_MODE=cluster")
	fmt.Printf("e2e: make deploy NAMESPACE=%s REDIS_MODE=cluster took %s\n", rns, time.Since(start).Round(time.Second))

	// The Redis side: one cluster of six nodes, three of them masters.
	pw := must(t, time.Minute, "kubectl", "get", "secret", "cqrs-redis", "--namespace", rns, "-o", "jsonpath={.data.redis-password}")
	pass, err := base64.StdEncoding.DecodeString(strings.TrimSpace(pw))
	if err != nil {
		t.Fatalf("the Secret cqrs-redis: %v", err)
	}
	// (command, not must: must would log the password on redis-cli's command line.)
	info, err := command(time.Minute, "kubectl", "exec", "--namespace", rns, "cqrs-redis-0", "--",
		"redis-cli", "--no-auth-warning", "-a", string(pass), "cluster", "info")
	if err != nil {
		t.Fatalf("redis-cli cluster info on cqrs-redis-0: %v\n%s", err, info)
	}
	for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:6", "cluster_size:3"} {
		if !strings.Contains(info, want) {
			t.Fatalf("CLUSTER INFO of cqrs-redis-0: no %q in\n%s", want, info)
		}
	}

	u := map[string]string{}
	for _, svc := range []string{"cqrs-write", "cqrs-read"} {
		u[svc] = strings.TrimSpace(must(t, time.Minute, "kn", "service", "describe", svc, "--namespace", rns, "-o", "url"))
		eventually(t, svc+" in "+rns+" answering through its route", 2*time.Minute, 500*time.Millisecond, func() bool {
			a, err := send(t, routeClient, "GET", u[svc]+"/health/readiness", nil, "")
			return err == nil && a.status == http.StatusOK
		})
	}

	type created struct {
		record
		Token string `json:"token"`
	}
	word := nonce()
	var made []created
	servedBy := map[string]int{}
	for i := range 12 {
		a, err := send(t, routeClient, "POST", u["cqrs-write"]+"/records", testenv.Header("Content-Type", "application/json"),
			fmt.Sprintf(`{"type":"cmt","text":"%s number %d on a Redis Cluster"}`, word, i))
		if err != nil || a.status != http.StatusCreated {
			t.Fatalf("create %d: %v %v, want 201", i, a, err)
		}
		var c created
		if err := json.Unmarshal(a.body, &c); err != nil || c.Token == "" {
			t.Fatalf("create %d: %v, token %q in %s", i, err, c.Token, a.body)
		}
		made = append(made, c)
		// Read your own write: the token, at once.
		p, a := readPage(t, u["cqrs-read"], url.Values{"q": {word}, "limit": {"25"}, "token": {c.Token}})
		if a.status != http.StatusOK || !slices.ContainsFunc(p.Records, func(r record) bool { return r.ID == c.ID }) {
			t.Fatalf("read %d with its create's token: got %s, want 200 with %s", i, a, c.ID)
		}
		servedBy[a.header.Get("X-Served-By")]++
		if s := a.header.Get("X-Replica-Seq"); s != "" {
			t.Errorf("read %d: X-Replica-Seq %q in cluster mode, want none (one seq per partition)", i, s)
		}
	}
	t.Logf("reads with the create's token served by %v", servedBy)
	if servedBy["replica"] == 0 {
		t.Errorf("reads with a token: served by %v, want some by a replica", servedBy)
	}

	last := made[len(made)-1]
	p, a := readPage(t, u["cqrs-read"], url.Values{"q": {word}, "limit": {"25"}, "token": {last.Token}})
	if a.status != http.StatusOK || len(p.Records) != len(made) {
		t.Fatalf("page of all %d: got %s, want 200 with all", len(made), a)
	}
	for i, r := range p.Records {
		if want := made[len(made)-1-i]; r.ID != want.ID || r.Text != want.Text {
			t.Errorf("page position %d: got %s %q, want %s %q (newest first)", i, r.ID, r.Text, want.ID, want.Text)
		}
	}

	a, err = send(t, routeClient, "GET", u["cqrs-read"]+"/records/"+url.PathEscape(made[0].ID), nil, "")
	if err != nil || a.status != http.StatusOK || !strings.Contains(string(a.body), made[0].Text) {
		t.Errorf("GET /records/%s: got %v %v, want 200 with %q", made[0].ID, a, err, made[0].Text)
	}

	_, a = readPage(t, u["cqrs-read"], url.Values{"minSeq": {"1"}})
	if a.status != http.StatusBadRequest {
		t.Errorf("minSeq in cluster mode: got %s, want 400 (tokens only)", a)
	}
}

// readPage reads a page from a cqrs-read route of any namespace.
func readPage(t *testing.T, base string, params url.Values) (page, answer) {
	t.Helper()
	a, err := send(t, routeClient, "GET", base+"/records?"+params.Encode(), nil, "")
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	var p page
	if a.status == http.StatusOK {
		if err := json.Unmarshal(a.body, &p); err != nil {
			t.Fatalf("query: %v in %s", err, a.body)
		}
	}
	return p, a
}
