package redistls

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testfunc"
	"github.com/cqrs-knative/cqrs-knative/functions/read"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
	"github.com/cqrs-knative/cqrs-knative/functions/write"
)

// Users and passwords of the tests' Redis: the functions' ACL users, and the admin
// (Redis' default user) that only the test itself uses.
const (
	writeUser, writePass = "cqrs-write", "write-secret"
	readUser, readPass   = "cqrs-read", "read-secret"
	adminPass            = "admin-secret"
)

// documentedACL protects a pair with TLS and the ACL users of redisenv's rules,
// which the documentation and the Helm values repeat.
func documentedACL(certs *testenv.Certs) testenv.Secure {
	return testenv.Secure{Certs: certs, AdminPassword: adminPass, Users: []string{
		redisenv.ACLRule(writeUser, writePass, redisenv.WriteCommands),
		redisenv.ACLRule(readUser, readPass, redisenv.ReadCommands),
	}}
}

// useTLS sets a function's Redis settings for servers made with certs, as user.
func useTLS(r *redisenv.Redis, certs *testenv.Certs, user, pass string) {
	r.RedisUsername, r.RedisPassword = user, pass
	r.RedisTLS, r.RedisTLSCAFile, r.RedisTLSServerName = "on", certs.CA, testenv.ServerName
}

// TestFunctionsUnderTheDocumentedACL runs everything the functions do against a
// master and a replica that speak TLS only and know the functions only as the ACL
// users of the documented rules: creates with and without Idempotency-Key, a replay
// and a conflict, WAIT for a replica, pages, a search, a cursor, records by token
// and by minSeq, the scripts loaded again after the script cache was emptied, the
// outbox's relay publishing every record to a sink (and one the sink refuses to the
// dead letters) and giving its lease up at the end, the read side's fallback to the
// master. Redis refuses a command missing from the rules, so the test fails then;
// and every command the rules grant must have been sent (commandstats), except
// those redisenv.Reserved names, so that the rules hold nothing the functions do
// not need.
func TestFunctionsUnderTheDocumentedACL(t *testing.T) {
	certs := testenv.MakeCerts(t)
	pair := testenv.SecureRedis(t, documentedACL(certs))
	adm, adr := admin(t, pair.Master), admin(t, pair.Replica)
	ctx := context.Background()
	for _, c := range []*redisClient{adm, adr} {
		if err := c.Do(ctx, "CONFIG", "RESETSTAT").Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { wantNoRefusal(t, adm, "master") })

	snk := newSink(t, "refused by the sink")
	wcfg := write.DefaultConfig()
	wcfg.RedisAddr = pair.Master.Addr()
	useTLS(&wcfg.Redis, certs, writeUser, writePass)
	wcfg.WriteReplicas, wcfg.WriteWaitTimeout = 1, 5*time.Second
	wcfg.Sink, wcfg.Attempts, wcfg.PollEvery = snk.URL, 1, 20*time.Millisecond
	wf := write.NewWithConfig(wcfg)
	w := testfunc.Serve(t, wf).URL
	// No fallback while the commands are counted: what the master runs is then the
	// write function's alone.
	r := testfunc.Read(t, pair, func(c *read.Config) {
		useTLS(&c.Redis, certs, readUser, readPass)
		c.ReadFallback = read.FallbackNone
	}).URL

	for _, base := range []string{w, r} {
		if status, body := readiness(t, base); status != http.StatusOK {
			t.Fatalf("readiness: %d %s", status, body)
		}
	}
	first := mustCreate(t, w, "", "alpha beta under acl")
	if first.Replicated == nil || !*first.Replicated {
		t.Errorf("create with WRITE_REPLICAS=1: replicated %v, want true (WAIT)", first.Replicated)
	}
	keyed := mustCreate(t, w, "key-1", "gamma beta under acl")
	if status, again := create(t, w, "key-1", "gamma beta under acl"); status != http.StatusOK || again.ID != keyed.ID {
		t.Errorf("same key again: got %d %s, want 200 %s", status, again.ID, keyed.ID)
	}
	if status, _ := create(t, w, "key-1", "other text"); status != http.StatusUnprocessableEntity {
		t.Errorf("same key, other text: got %d, want 422", status)
	}
	var newest created
	for i := range 4 {
		newest = mustCreate(t, w, "", fmt.Sprintf("filler %d under acl", i))
	}
	checkReads(t, r, newest, keyed)

	// Scripts loaded again after the cache is emptied, as after a restart.
	for _, c := range []*redisClient{adm, adr} {
		if err := c.Do(ctx, "SCRIPT", "FLUSH").Err(); err != nil {
			t.Fatal(err)
		}
	}
	after := mustCreate(t, w, "", "delta beta after flush")
	checkReads(t, r, after, keyed)
	refused := mustCreate(t, w, "", "refused by the sink")

	// Every record reaches the sink but the one it refuses, which goes to the
	// dead letters; then the relay gives its lease up as the function stops.
	want := []string{first.ID, keyed.ID, after.ID}
	snk.wait(t, want, refused.ID)
	wantUser(t, adm, writeUser)
	wantUser(t, adr, readUser)
	if err := wf.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	wantNoRefusal(t, adr, "replica")
	used := slices.Concat(commandsRun(t, adm), commandsRun(t, adr))
	for _, rules := range []struct{ user, commands string }{{writeUser, redisenv.WriteCommands}, {readUser, redisenv.ReadCommands}} {
		for _, c := range redisenv.Commands(rules.commands) {
			if !slices.Contains(used, c) && !slices.Contains(redisenv.Reserved, c) {
				t.Errorf("%s's rules grant %s, which the functions never sent; take it out of redisenv's rules, the docs and the Helm values", rules.user, c)
			}
		}
	}

	// The read user on the master: the fallback, with the replica gone.
	rf := testfunc.Read(t, pair, func(c *read.Config) {
		useTLS(&c.Redis, certs, readUser, readPass)
	}).URL
	pair.Replica.Kill()
	status, got, h := get(t, rf, keyed.ID, nil)
	if status != http.StatusOK || got.Text != keyed.Text || h.Get("X-Served-By") != read.ServedByMaster {
		t.Errorf("record with the replica down: got %d %q from %q, want 200 %q from the master", status, got.Text, h.Get("X-Served-By"), keyed.Text)
	}
}

// checkReads reads what the creates stored: a page with the newest create's
// consistency token, a search, a cursor, each record by id with the token or
// minSeq.
func checkReads(t *testing.T, r string, newest, keyed created) {
	t.Helper()
	if newest.Token == "" {
		t.Fatalf("create answered without a token: %s", newest.body)
	}
	q := url.Values{"token": {newest.Token}, "limit": {"2"}}
	status, p, h := list(t, r, q)
	if status != http.StatusOK || len(p.Records) != 2 || p.Records[0].ID != newest.ID || p.NextCursor == "" {
		t.Fatalf("page with the newest token: got %d %v (cursor %q), want the newest two from %s and a cursor", status, texts(p), p.NextCursor, newest.ID)
	}
	if h.Get("X-Served-By") != read.ServedByReplica {
		t.Errorf("page served by %q, want the replica", h.Get("X-Served-By"))
	}
	q.Set("cursor", p.NextCursor)
	if status, next, _ := list(t, r, q); status != http.StatusOK || len(next.Records) == 0 {
		t.Errorf("next page: got %d %v, want records", status, texts(next))
	}
	status, p, _ = list(t, r, url.Values{"q": {"beta acl"}, "type": {"bp"}})
	if status != http.StatusOK || !slices.Contains(texts(p), keyed.Text) {
		t.Errorf("search: got %d %v, want %q among them", status, texts(p), keyed.Text)
	}
	for _, q := range []url.Values{{"token": {newest.Token}}, {"minSeq": {strconv.FormatInt(newest.Seq, 10)}}} {
		for _, c := range []created{newest, keyed} {
			status, got, _ := get(t, r, c.ID, q)
			if status != http.StatusOK || got.Text != c.Text {
				t.Errorf("record %s with %s: got %d %q, want 200 %q", c.ID, q.Encode(), status, got.Text, c.Text)
			}
		}
	}
	if status, _, _ := get(t, r, "999999-nosuchtag", nil); status != http.StatusNotFound {
		t.Errorf("unknown record: got %d, want 404", status)
	}
}

// redisClient is the tests' own Redis client, as the admin.
type redisClient = redis.Client

// adminName is how the admin's connections are named.
const adminName = testenv.AdminName

// admin is the test's client of srv as Redis' default user.
func admin(t *testing.T, srv *redisproc.Server) *redisClient { return testenv.Admin(t, srv) }

// wantNoRefusal fails the test for every entry of the server's ACL LOG: a command
// or key refused to a function, even one the function shrugged off. CONFIG GET is
// the one refusal the rules mean: it would show the user every setting, the
// replication password too, and the write function does without it (it assumes
// Redis' default proto-max-bulk-len), once.
func wantNoRefusal(t *testing.T, c *redisClient, name string) {
	t.Helper()
	entries, err := c.ACLLog(context.Background(), 20).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// Refused once: the write function does not ask again.
		if e.Reason == "command" && e.Object == "config|get" && e.Username == writeUser && e.Count == 1 {
			continue
		}
		t.Errorf("%s refused %s %q to %s (ACL LOG)", name, e.Reason, e.Object, e.Username)
	}
}

// wantUser fails the test unless the functions' connections to the server are
// user's, and no connection but the admin's is Redis' default user.
func wantUser(t *testing.T, c *redisClient, user string) {
	t.Helper()
	list, err := c.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		f := fields(l)
		switch {
		case f["user"] == user:
			found = true
		case f["user"] == "default" && f["name"] != adminName && !strings.ContainsAny(f["flags"], "SM"):
			t.Errorf("a client connected as the default user: %s", l)
		}
	}
	if !found {
		t.Errorf("no connection of %s in CLIENT LIST:\n%s", user, list)
	}
}

// commandsRun are the commands the server ran since its stats were reset, as ACL
// rules name them (script|load, not script).
func commandsRun(t *testing.T, c *redisClient) []string {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(info, "\r\n") {
		name, stat, ok := strings.Cut(strings.TrimPrefix(l, "cmdstat_"), ":")
		if !ok || name == l {
			continue
		}
		if cs, err := redisproc.ParseCommandStat(stat); err == nil && cs.Calls > 0 {
			out = append(out, name)
		}
	}
	return out
}

// fields are the key=value pairs of a CLIENT LIST line.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(line) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
