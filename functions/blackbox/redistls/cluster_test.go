package redistls

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/store"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// TestClusterUnderTheDocumentedACL runs the functions against a Redis Cluster of
// three masters with a replica each whose nodes speak TLS only (to clients and to
// each other) and know the functions only as the ACL users of the documented
// cluster rules: creates spread over six partitions with WAIT for a replica, a
// replay and a conflict, pages by token across every partition with a cursor, a
// search, records by token, the outbox's relay publishing from every partition,
// and every read served by a replica. As with one master, a command missing from
// the rules fails the test (ACL LOG), and a granted one that was never sent does.
func TestClusterUnderTheDocumentedACL(t *testing.T) {
	certs := testenv.MakeCerts(t)
	cl := testenv.SecureCluster(t, testenv.Secure{Certs: certs, AdminPassword: adminPass, Users: []string{
		redisenv.ACLRule(writeUser, writePass, redisenv.WriteClusterCommands),
		redisenv.ACLRule(readUser, readPass, redisenv.ReadClusterCommands),
	}})
	ctx := context.Background()
	var masters, replicas []*redisClient
	for _, m := range cl.Masters {
		masters = append(masters, admin(t, m))
	}
	for _, rs := range cl.Replicas {
		for _, r := range rs {
			replicas = append(replicas, admin(t, r))
		}
	}
	for _, c := range slices.Concat(masters, replicas) {
		if err := c.Do(ctx, "CONFIG", "RESETSTAT").Err(); err != nil {
			t.Fatal(err)
		}
	}
	onCluster := func(r *redisenv.Redis, user, pass string) {
		r.RedisClusterAddrs, r.RedisPartitions = cl.Addrs(), testenv.ClusterPartitions
		useTLS(r, certs, user, pass)
	}

	snk := newSink(t, "refused by the sink")
	wcfg := write.DefaultConfig()
	onCluster(&wcfg.Redis, writeUser, writePass)
	wcfg.WriteReplicas, wcfg.WriteWaitTimeout = 1, 5*time.Second
	wcfg.Sink, wcfg.Attempts, wcfg.PollEvery = snk.URL, 1, 20*time.Millisecond
	wf := write.NewWithConfig(wcfg)
	w := testfunc.Serve(t, wf).URL
	rcfg := read.DefaultConfig()
	onCluster(&rcfg.Redis, readUser, readPass)
	rcfg.ReadFallback = read.FallbackNone
	r := testfunc.Serve(t, read.NewWithConfig(rcfg)).URL

	for _, base := range []string{w, r} {
		if status, body := readiness(t, base); status != http.StatusOK {
			t.Fatalf("readiness: %d %s", status, body)
		}
	}
	keyed := mustCreate(t, w, "key-1", "gamma beta on a cluster")
	if status, again := create(t, w, "key-1", "gamma beta on a cluster"); status != http.StatusOK || again.ID != keyed.ID {
		t.Errorf("same key again: got %d %s, want 200 %s", status, again.ID, keyed.ID)
	}
	if status, _ := create(t, w, "key-1", "other text"); status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other text: got %d, want 422", status)
	}
	all := []created{keyed}
	// Enough creates that every partition, and so every master, gets some (with six
	// partitions, 24 random ones miss one with a chance under 2%; the test checks
	// below that every master ran the create script, and says so if one did not).
	for i := range 24 {
		c := mustCreate(t, w, "", fmt.Sprintf("filler %d on a cluster", i))
		if c.Replicated == nil || !*c.Replicated {
			t.Errorf("create with WRITE_REPLICAS=1: replicated %v, want true (WAIT on the owning master)", c.Replicated)
		}
		all = append(all, c)
	}
	// Each create's token names the partition it wrote; the page asks with all of
	// them joined, as a client that sends its token back with each create holds.
	var joined store.Token
	for _, c := range all {
		tok, err := store.ParseToken(c.Token, testenv.ClusterPartitions)
		if err != nil {
			t.Fatalf("token %q: %v", c.Token, err)
		}
		joined = joined.Join(tok)
	}
	q := url.Values{"token": {joined.String()}, "limit": {"10"}}
	seen := 0
	for range 5 {
		status, p, h := list(t, r, q)
		if status != http.StatusOK {
			t.Fatalf("page: got %d", status)
		}
		if h.Get("X-Served-By") != read.ServedByReplica {
			t.Errorf("page served by %q, want a replica", h.Get("X-Served-By"))
		}
		seen += len(p.Records)
		if p.NextCursor == "" {
			break
		}
		q.Set("cursor", p.NextCursor)
	}
	if seen != len(all) {
		t.Errorf("pages with the token held %d records, want %d", seen, len(all))
	}
	status, p, _ := list(t, r, url.Values{"q": {"beta cluster"}, "type": {"bp"}})
	if status != http.StatusOK || !slices.Contains(texts(p), keyed.Text) {
		t.Errorf("search: got %d %v, want %q among them", status, texts(p), keyed.Text)
	}
	for _, c := range all {
		status, got, _ := get(t, r, c.ID, url.Values{"token": {c.Token}})
		if status != http.StatusOK || got.Text != c.Text {
			t.Errorf("record %s with its token: got %d %q, want 200 %q", c.ID, status, got.Text, c.Text)
		}
	}
	refused := mustCreate(t, w, "", "refused by the sink")
	var ids []string
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	snk.wait(t, ids, refused.ID)

	for i, m := range masters {
		wantUser(t, m, writeUser)
		if !slices.Contains(commandsRun(t, m), "evalsha") {
			t.Errorf("master %d ran no script: its partitions got no create (random; run again), or creates did not reach it", i)
		}
	}
	for _, rc := range replicas {
		wantUser(t, rc, readUser)
	}
	if err := wf.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	var used []string
	for i, c := range slices.Concat(masters, replicas) {
		wantNoRefusal(t, c, fmt.Sprintf("node %d", i))
		used = append(used, commandsRun(t, c)...)
	}
	for _, rules := range []struct{ user, commands string }{{writeUser, redisenv.WriteClusterCommands}, {readUser, redisenv.ReadClusterCommands}} {
		for _, c := range redisenv.Commands(rules.commands) {
			if !slices.Contains(used, c) && !slices.Contains(redisenv.Reserved, c) {
				t.Errorf("%s's cluster rules grant %s, which the functions never sent; take it out of redisenv's rules, the docs and the Helm values", rules.user, c)
			}
		}
	}
}
