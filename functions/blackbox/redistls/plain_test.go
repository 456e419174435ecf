package redistls

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestPasswordOnlyUnchanged: the default mode, plain TCP and a password alone (what
// Bitnami's chart sets up), works as before through the built functions; a wrong
// password gets the same clear refusal as under TLS.
func TestPasswordOnlyUnchanged(t *testing.T) {
	testenv.RequireRedis(t)
	sec := redisproc.Security{Password: "plain-secret"}
	m, err := redisproc.StartMasterWith(t.TempDir(), 0, sec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Kill() })
	rep, err := redisproc.StartReplica(t.TempDir(), 0, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Kill() })
	if err := rep.WaitLinkUp(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	w := startWrite(t, "REDIS_ADDR="+m.Addr(), "REDIS_PASSWORD=plain-secret", "WRITE_REPLICAS=1", "WRITE_WAIT_TIMEOUT=5s")
	r := startRead(t, "REDIS_ADDR="+rep.Addr(), "REDIS_MASTER_ADDR="+m.Addr(), "REDIS_PASSWORD=plain-secret")
	for _, p := range []*launch.Proc{w, r} {
		testenv.Ready(t, p, 10*time.Second)
		t.Cleanup(func() { testenv.CheckLog(t, p.Name, p.Output()) })
	}
	c := mustCreate(t, w.URL(), "", "plain with a password")
	if c.Replicated == nil || !*c.Replicated {
		t.Errorf("create with WRITE_REPLICAS=1: replicated %v, want true", c.Replicated)
	}
	status, got, h := get(t, r.URL(), c.ID, url.Values{"minSeq": {strconv.FormatInt(c.Seq, 10)}})
	if status != http.StatusOK || got.Text != c.Text || h.Get("X-Served-By") != "replica" {
		t.Errorf("own write: got %d %q from %q, want 200 %q from the replica", status, got.Text, h.Get("X-Served-By"), c.Text)
	}

	wrong := startWrite(t, "REDIS_ADDR="+m.Addr(), "REDIS_PASSWORD=not-it")
	const reason = "redis refused the credentials (WRONGPASS); check REDIS_USERNAME and REDIS_PASSWORD"
	if status, body := readiness(t, wrong.URL()); status != http.StatusServiceUnavailable || body != "not ready: "+reason {
		t.Errorf("wrong password: readiness %d %q, want 503 %q", status, body, "not ready: "+reason)
	}
}
