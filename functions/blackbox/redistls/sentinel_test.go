package redistls

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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

const (
	masterSet                = "cqrs"
	sentinelUser, sentinelPw = "cqrs-sentinel", "sentinel-secret"
)

// startTLSSentinel starts a Sentinel that speaks TLS only, talks TLS to the pair,
// knows the functions as the user of redisenv.SentinelRule, and waits until it holds
// the replica as healthy, so that it can promote it.
func startTLSSentinel(t *testing.T, pair *testenv.Pair, sec testenv.Secure) *redisproc.Server {
	t.Helper()
	sen, err := redisproc.StartSentinelWith(t.TempDir(), 0, masterSet, pair.Master, 1, sec.Security(),
		"user "+sentinelUser+" on >"+sentinelPw+" "+redisenv.SentinelRule)
	if err != nil {
		t.Fatalf("start sentinel: %v", err)
	}
	t.Cleanup(func() { sen.Kill() })
	sc := sentinelClient(sen)
	defer sc.Close()
	testenv.WaitSentinelKnows(t, sc, masterSet, pair.Replica.Port)
	return sen
}

// sentinelClient asks sen as the test's admin, over TLS.
func sentinelClient(sen *redisproc.Server) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{Addr: sen.Addr(), Password: sen.Security.Password,
		TLSConfig: sen.Security.TLS.Client, DisableIdentity: true})
}

// useSentinel points a function's Redis settings at sen, as the functions' Sentinel
// user, over TLS.
func useSentinel(r *redisenv.Redis, sen *redisproc.Server) {
	r.RedisAddr = ""
	r.RedisSentinelAddrs, r.RedisSentinelMaster = []string{sen.Addr()}, masterSet
	r.RedisSentinelUsername, r.RedisSentinelPassword = sentinelUser, sentinelPw
}

// TestSentinelFailoverOverTLS: a master, its replica and a Sentinel that all speak
// TLS only, with certificates that hold a name and no IP address while Sentinel
// hands out IPs. The functions find the master and the replica through the
// Sentinel, as its least-privileged user, and talk to them as the documented ACL
// users; a create waits for the replica. Then the master is killed: writes resume
// on the promoted replica, and what was acknowledged as replicated is still there.
func TestSentinelFailoverOverTLS(t *testing.T) {
	certs := testenv.MakeCerts(t)
	sec := documentedACL(certs)
	pair := testenv.SecureRedis(t, sec)
	sen := startTLSSentinel(t, pair, sec)

	w := testfunc.Write(t, pair.Master, func(c *write.Config) {
		useTLS(&c.Redis, certs, writeUser, writePass)
		useSentinel(&c.Redis, sen)
		c.WriteReplicas, c.WriteWaitTimeout = 1, 5*time.Second
	}).URL
	r := testfunc.Read(t, pair, func(c *read.Config) {
		useTLS(&c.Redis, certs, readUser, readPass)
		useSentinel(&c.Redis, sen)
		c.RedisMasterAddr = ""
	}).URL

	var before []created
	for i := range 5 {
		c := mustCreate(t, w, fmt.Sprintf("before-%d", i), fmt.Sprintf("before failover %d", i))
		if c.Replicated == nil || !*c.Replicated {
			t.Fatalf("create before the failover: replicated %v, want true", c.Replicated)
		}
		before = append(before, c)
	}
	last := before[len(before)-1]
	status, got, h := get(t, r, last.ID, url.Values{"token": {last.Token}})
	if status != http.StatusOK || got.Text != last.Text || h.Get("X-Served-By") != read.ServedByReplica {
		t.Fatalf("read through the Sentinel: got %d %q from %q, want 200 %q from the replica", status, got.Text, h.Get("X-Served-By"), last.Text)
	}

	sa := admin(t, sen)
	wantUser(t, sa, sentinelUser)
	wantNoRefusal(t, sa, "sentinel")

	// The wrong password for the Sentinel names the Sentinel's variables.
	wrong := testfunc.Write(t, pair.Master, func(c *write.Config) {
		useTLS(&c.Redis, certs, writeUser, writePass)
		useSentinel(&c.Redis, sen)
		c.RedisSentinelPassword = "not-it"
	}).URL
	const reason = "not ready: redis refused the credentials (WRONGPASS); check REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD"
	if status, body := readiness(t, wrong); status != http.StatusServiceUnavailable || body != reason {
		t.Errorf("wrong Sentinel password: readiness %d %q, want 503 %q", status, body, reason)
	}

	killed := time.Now()
	if err := pair.Master.Kill(); err != nil {
		t.Fatal(err)
	}
	var after created
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		status, c := create(t, w, fmt.Sprintf("after-%d", i), fmt.Sprintf("after failover %d", i))
		if status == http.StatusCreated || status == http.StatusAccepted {
			after = c
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("create while the Sentinel fails over: got %d %s; want 503 until writes resume, within 20s", status, c.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("writes resumed on the promoted replica %s after the kill", time.Since(killed).Round(time.Millisecond))
	sc := sentinelClient(sen)
	defer sc.Close()
	addr, err := sc.GetMasterAddrByName(context.Background(), masterSet).Result()
	if err != nil || addr[1] != strconv.Itoa(pair.Replica.Port) {
		t.Errorf("sentinel names the master %v (%v), want the promoted replica's port %d", addr, err, pair.Replica.Port)
	}
	for _, c := range append(before, after) {
		status, got, _ := get(t, r, c.ID, nil)
		if status != http.StatusOK || got.Text != c.Text {
			t.Errorf("record %s after the failover: got %d %q, want 200 %q", c.ID, status, got.Text, c.Text)
		}
	}
	wantNoRefusal(t, admin(t, pair.Replica), "promoted replica")
}
