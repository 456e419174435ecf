package redistls

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
)

// tlsEnv is the environment that points a built function at servers made with
// certs, as user, showing the client certificate.
func tlsEnv(certs *testenv.Certs, user, pass string) []string {
	return []string{"REDIS_USERNAME=" + user, "REDIS_PASSWORD=" + pass, "REDIS_TLS=on",
		"REDIS_TLS_CA_FILE=" + certs.CA, "REDIS_TLS_SERVER_NAME=" + testenv.ServerName,
		"REDIS_TLS_CERT_FILE=" + certs.ClientCert, "REDIS_TLS_KEY_FILE=" + certs.ClientKey}
}

// startWrite and startRead run the built functions with env, ready or not.
func startWrite(t *testing.T, env ...string) *launch.Proc {
	t.Helper()
	return testenv.Start(t, testenv.Build(t, testenv.WriteMain), env...)
}

func startRead(t *testing.T, env ...string) *launch.Proc {
	t.Helper()
	return testenv.Start(t, testenv.Build(t, testenv.ReadMain), env...)
}

// TestBinariesOverTLS: the built functions, configured by their variables only, on
// a master and a replica that speak TLS only, ask for a client certificate and know
// the functions as the documented ACL users: a create waits for the replica (WAIT),
// and the read side serves it, to a read of one's own write too.
func TestBinariesOverTLS(t *testing.T) {
	certs := testenv.MakeCerts(t)
	sec := documentedACL(certs)
	sec.AuthClients = "yes"
	pair := testenv.SecureRedis(t, sec)
	w := startWrite(t, append(tlsEnv(certs, writeUser, writePass), "REDIS_ADDR="+pair.Master.Addr(),
		"WRITE_REPLICAS=1", "WRITE_WAIT_TIMEOUT=5s")...)
	r := startRead(t, append(tlsEnv(certs, readUser, readPass), "REDIS_ADDR="+pair.Replica.Addr(),
		"REDIS_MASTER_ADDR="+pair.Master.Addr(), "READ_FALLBACK=none", "READ_MAX_WAIT=5s")...)
	for _, p := range []*launch.Proc{w, r} {
		testenv.Ready(t, p, 10*time.Second)
		t.Cleanup(func() { testenv.CheckLog(t, p.Name, p.Output()) })
	}

	c := mustCreate(t, w.URL(), "", "over tls with an acl user")
	if c.Replicated == nil || !*c.Replicated {
		t.Errorf("create with WRITE_REPLICAS=1: replicated %v, want true", c.Replicated)
	}
	keyed := mustCreate(t, w.URL(), "tls-key", "keyed over tls")
	status, got, h := get(t, r.URL(), keyed.ID, url.Values{"token": {keyed.Token}})
	if status != http.StatusOK || got.Text != keyed.Text || h.Get("X-Served-By") != "replica" {
		t.Errorf("own write: got %d %q from %q, want 200 %q from the replica", status, got.Text, h.Get("X-Served-By"), keyed.Text)
	}
	status, p, _ := list(t, r.URL(), url.Values{"q": {"tls"}})
	if status != http.StatusOK || len(p.Records) != 2 {
		t.Errorf("search over tls: got %d %v, want both records", status, texts(p))
	}
	admin := testenv.Admin(t, pair.Master)
	wantNoRefusal(t, admin, "master")
	wantUser(t, admin, writeUser)
}

// TestRefusedAccessIsOneLineAndNotReady: each way a Redis can refuse a function
// that reaches it (a certificate it cannot verify, a name the certificate lacks, no
// client certificate where one is required, a wrong password or user, a user
// without the commands, TLS against a plain port) makes the function not ready,
// with a readiness answer that says why and names no address, one log line that
// says it, however often readiness is asked, and requests answered 503 with the
// same reason. A Redis that is not there at all stays what it was: unavailable.
func TestRefusedAccessIsOneLineAndNotReady(t *testing.T) {
	certs := testenv.MakeCerts(t)
	other := testenv.MakeCerts(t)
	sec := documentedACL(certs)
	sec.Users = append(sec.Users, redisenv.ACLRule("pinger", "pinger-secret", "-@all +ping"))
	master := testenv.SecureMaster(t, sec)
	strict := sec
	strict.AuthClients = "yes"
	strictMaster := testenv.SecureMaster(t, strict)
	plainMaster := testenv.Master(t)
	closed, err := launch.FreePort()
	if err != nil {
		t.Fatal(err)
	}

	base := func(srv *redisproc.Server) []string {
		return append(tlsEnv(certs, writeUser, writePass), "REDIS_ADDR="+srv.Addr())
	}
	replace := func(env []string, kv ...string) []string {
		out := append([]string(nil), env...)
		for _, s := range kv {
			name, _, _ := strings.Cut(s, "=")
			out = slices.DeleteFunc(out, func(e string) bool { return strings.HasPrefix(e, name+"=") })
			if !strings.HasSuffix(s, "=") {
				out = append(out, s)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		env    []string
		reason string // the readiness answer after "not ready: "
	}{
		{"another CA", replace(base(master), "REDIS_TLS_CA_FILE="+other.CA),
			"redis TLS: the server's certificate is not signed by a CA trusted here; check REDIS_TLS_CA_FILE"},
		{"no server name", replace(base(master), "REDIS_TLS_SERVER_NAME="),
			"redis TLS: the server's certificate does not name the host dialled; set REDIS_TLS_SERVER_NAME to a name it holds"},
		{"no client certificate", replace(base(strictMaster), "REDIS_TLS_CERT_FILE=", "REDIS_TLS_KEY_FILE="),
			"redis TLS: the server refused the handshake (certificate required); check REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"},
		{"wrong password", replace(base(master), "REDIS_PASSWORD=not-the-password"),
			"redis refused the credentials (WRONGPASS); check REDIS_USERNAME and REDIS_PASSWORD"},
		{"unknown user", replace(base(master), "REDIS_USERNAME=nobody"),
			"redis refused the credentials (WRONGPASS); check REDIS_USERNAME and REDIS_PASSWORD"},
		{"user without the commands", replace(base(master), "REDIS_USERNAME=pinger", "REDIS_PASSWORD=pinger-secret"),
			"redis refused a command or key to the ACL user (NOPERM); grant REDIS_USERNAME the commands and keys docs/configuration.md lists (the Redis' ACL LOG names the one refused)"},
		{"tls to a plain port", replace(base(plainMaster), "REDIS_USERNAME=", "REDIS_PASSWORD="),
			"redis TLS: the server accepted the connection but did not answer the TLS handshake; does it speak TLS on this port? (REDIS_TLS)"},
		{"nothing there", replace(base(master), "REDIS_ADDR=127.0.0.1:"+strconv.Itoa(closed)),
			"redis is unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startWrite(t, tt.env...)
			want := "not ready: " + tt.reason
			var status int
			var body string
			// Readiness asked several times: the log must still say it once.
			for i := 0; i < 5; i++ {
				status, body = readiness(t, p.URL())
				if status == http.StatusOK {
					t.Fatalf("ready, want not ready: %s", p.Output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if status != http.StatusServiceUnavailable || body != want {
				t.Errorf("readiness: got %d %q, want 503 %q", status, body, want)
			}
			if strings.Contains(body, "127.0.0.1") || strings.Contains(body, ":"+strconv.Itoa(master.Port)) {
				t.Errorf("readiness names an address: %q", body)
			}
			if n := strings.Count(p.Output(), tt.reason); n != 1 {
				t.Errorf("the log says %q %d times, want once:\n%s", tt.reason, n, p.Output())
			}
			testenv.CheckLog(t, p.Name, p.Output())
			code, c := create(t, p.URL(), "refused-key", "refused")
			if code != http.StatusServiceUnavailable || !strings.Contains(c.body, tt.reason) {
				t.Errorf("create: got %d %s, want 503 saying %q", code, c.body, tt.reason)
			}
		})
	}
}

// TestTLSSettingsCheckedAtStart: a TLS setting that cannot work stops either built
// function at start with one line naming the variable.
func TestTLSSettingsCheckedAtStart(t *testing.T) {
	certs := testenv.MakeCerts(t)
	missing := t.TempDir() + "/missing.crt"
	tests := []struct {
		main string
		env  []string
		want string
	}{
		{testenv.WriteMain, []string{"REDIS_TLS=yes"}, `REDIS_TLS="yes": must be on or off`},
		{testenv.ReadMain, []string{"REDIS_TLS=on", "REDIS_TLS_CA_FILE=" + missing}, "REDIS_TLS_CA_FILE=" + missing + ": no such file or directory"},
		{testenv.WriteMain, []string{"REDIS_TLS=on", "REDIS_TLS_CA_FILE=" + certs.ClientKey}, "REDIS_TLS_CA_FILE=" + certs.ClientKey + `: holds a PEM block of type "EC PRIVATE KEY"`},
		{testenv.ReadMain, []string{"REDIS_TLS=on", "REDIS_TLS_KEY_FILE=" + certs.ClientKey}, "REDIS_TLS_KEY_FILE: set without REDIS_TLS_CERT_FILE"},
		{testenv.WriteMain, []string{"REDIS_TLS_CA_FILE=" + certs.CA}, "REDIS_TLS_CA_FILE: set while REDIS_TLS is off"},
		{testenv.ReadMain, []string{"REDIS_USERNAME=cqrs-read"}, "REDIS_USERNAME: set without REDIS_PASSWORD"},
		{testenv.WriteMain, []string{"REDIS_TLS=on", "REDIS_TLS_CERT_FILE=" + certs.ExpiredCert, "REDIS_TLS_KEY_FILE=" + certs.ExpiredKey},
			"REDIS_TLS_CERT_FILE=" + certs.ExpiredCert + ": expired on "},
	}
	for _, tt := range tests {
		t.Run(tt.want[:strings.IndexAny(tt.want, ":=")], func(t *testing.T) {
			p := testenv.Start(t, testenv.Build(t, tt.main), tt.env...)
			if code := p.Wait(5 * time.Second); code <= 0 {
				t.Fatalf("exit code %d, want a failure at start", code)
			}
			out := strings.TrimSpace(p.Output())
			if strings.Count(out, "\n") != 0 || !strings.Contains(out, "configuration: "+tt.want) {
				t.Errorf("output %q, want one line with %q", out, tt.want)
			}
		})
	}
}
