package testenv

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/redisproc"
)

// Secure says how SecureRedis protects its servers: TLS only (no plain port),
// certificates of Certs, a password for Redis' default user (the test's admin) and
// ACL users of the test's.
type Secure struct {
	Certs *Certs
	// AuthClients is tls-auth-clients: "optional" (the default here) or "yes".
	AuthClients string
	// AdminPassword is the default user's password; the functions must never
	// connect as that user.
	AdminPassword string
	// Users are ACL rules, each a user as ACL SETUSER takes it ("name on >pass
	// ~keys -@all +cmd ..."), given to every server (ACLs do not replicate).
	Users []string
}

// Security is how redisproc starts a server protected by s.
func (s Secure) Security() redisproc.Security {
	auth := s.AuthClients
	if auth == "" {
		auth = "optional"
	}
	return redisproc.Security{
		Password: s.AdminPassword,
		TLS: &redisproc.TLS{CertFile: s.Certs.ServerCert, KeyFile: s.Certs.ServerKey, CAFile: s.Certs.CA,
			AuthClients: auth, Client: s.Certs.ClientTLS()},
	}
}

// userArgs are the users as redis-server options, so that a restarted server has
// them again.
func (s Secure) userArgs() []string {
	var a []string
	for _, u := range s.Users {
		a = append(a, "--user")
		a = append(a, strings.Fields(u)...)
	}
	return a
}

// SecureMaster starts a lone master protected by s, killed when the test ends.
func SecureMaster(tb testing.TB, s Secure) *redisproc.Server {
	tb.Helper()
	RequireRedis(tb)
	m, err := redisproc.StartMasterWith(tb.TempDir(), 0, s.Security(), s.userArgs()...)
	if err != nil {
		tb.Fatalf("start master: %v", err)
	}
	tb.Cleanup(func() { m.Kill() })
	return m
}

// SecureRedis starts a master and a replica protected by s, each in a directory of
// its own, replicating over TLS, and waits until the replica is in sync.
func SecureRedis(tb testing.TB, s Secure) *Pair {
	tb.Helper()
	m := SecureMaster(tb, s)
	r, err := redisproc.StartReplica(tb.TempDir(), 0, m, s.userArgs()...)
	if err != nil {
		tb.Fatalf("start replica: %v", err)
	}
	tb.Cleanup(func() { r.Kill() })
	if err := r.WaitLinkUp(10 * time.Second); err != nil {
		tb.Fatal(err)
	}
	return &Pair{Master: m, Replica: r}
}

// SecureCluster starts a Redis Cluster of three masters with a replica each, every
// node protected by s and the nodes speaking TLS among themselves too, until the
// test ends.
func SecureCluster(tb testing.TB, s Secure) *redisproc.Cluster {
	tb.Helper()
	RequireRedis(tb)
	c, err := redisproc.StartClusterWith(tb.TempDir(), 3, 1, s.Security(), s.userArgs()...)
	if err != nil {
		tb.Fatalf("start a Redis Cluster: %v", err)
	}
	tb.Cleanup(c.Kill)
	return c
}

// AdminName is the client name of Admin's connections, so that a test can tell
// them from the functions' in CLIENT LIST.
const AdminName = "cqrs-test-admin"

// Admin is a client of srv as its default user (the test's admin), over TLS when
// srv has TLS, closed when the test ends.
func Admin(tb testing.TB, srv *redisproc.Server) *redis.Client {
	tb.Helper()
	o := &redis.Options{Addr: srv.Addr(), Password: srv.Security.Password, ClientName: AdminName, DisableIdentity: true}
	if t := srv.Security.TLS; t != nil {
		o.TLSConfig = t.Client
	}
	c := redis.NewClient(o)
	tb.Cleanup(func() { c.Close() })
	return c
}
