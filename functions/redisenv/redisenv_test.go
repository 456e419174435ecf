package redisenv_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
	"github.com/cqrs-knative/cqrs-knative/functions/redisenv"
)

// plain is a valid configuration without TLS, as a function's defaults give it.
func plain() redisenv.Redis {
	return redisenv.Redis{RedisAddr: "cqrs-redis-master:6379", RedisSentinelMaster: "mymaster", RedisPoolSize: 64}
}

// TestCheckRefuses: every value that cannot work is refused with one line that
// starts with the variable at fault.
func TestCheckRefuses(t *testing.T) {
	certs := testenv.MakeCerts(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o600)
	keyAsCA := certs.ServerKey
	badBlock := filepath.Join(dir, "bad-block.pem")
	os.WriteFile(badBlock, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600)
	missing := filepath.Join(dir, "missing.crt")
	tlsOn := func(edit func(*redisenv.Redis)) redisenv.Redis {
		r := plain()
		r.RedisTLS, r.RedisTLSCAFile = "on", certs.CA
		edit(&r)
		return r
	}
	tests := []struct {
		name string
		r    redisenv.Redis
		want string // the start of the error
	}{
		{"no address", func() redisenv.Redis { r := plain(); r.RedisAddr = ""; return r }(), "REDIS_ADDR: must not be empty"},
		{"pool", func() redisenv.Redis { r := plain(); r.RedisPoolSize = 0; return r }(), "REDIS_POOL_SIZE=0:"},
		{"user without password", func() redisenv.Redis { r := plain(); r.RedisUsername = "cqrs-write"; return r }(),
			"REDIS_USERNAME: set without REDIS_PASSWORD"},
		{"sentinel user without password", func() redisenv.Redis {
			r := plain()
			r.RedisSentinelAddrs, r.RedisSentinelUsername = []string{"s:26379"}, "u"
			return r
		}(), "REDIS_SENTINEL_USERNAME: set without REDIS_SENTINEL_PASSWORD"},
		{"sentinel password without sentinels", func() redisenv.Redis { r := plain(); r.RedisSentinelPassword = "p"; return r }(),
			"REDIS_SENTINEL_PASSWORD: set without REDIS_SENTINEL_ADDRS"},
		{"sentinel user without sentinels", func() redisenv.Redis {
			r := plain()
			r.RedisSentinelUsername, r.RedisSentinelPassword = "u", "p"
			return r
		}(), "REDIS_SENTINEL_USERNAME: set without REDIS_SENTINEL_ADDRS"},
		{"empty sentinel address", func() redisenv.Redis { r := plain(); r.RedisSentinelAddrs = []string{"s:26379", ""}; return r }(),
			`REDIS_SENTINEL_ADDRS="s:26379,": holds an empty address`},
		{"tls neither on nor off", tlsOn(func(r *redisenv.Redis) { r.RedisTLS = "yes" }), `REDIS_TLS="yes": must be on or off`},
		{"ca file with tls off", tlsOn(func(r *redisenv.Redis) { r.RedisTLS = "off" }), "REDIS_TLS_CA_FILE: set while REDIS_TLS is off"},
		{"server name with tls unset", func() redisenv.Redis { r := plain(); r.RedisTLSServerName = "redis"; return r }(),
			"REDIS_TLS_SERVER_NAME: set while REDIS_TLS is off"},
		{"cert with tls off", func() redisenv.Redis {
			r := plain()
			r.RedisTLS, r.RedisTLSCertFile, r.RedisTLSKeyFile = "false", certs.ClientCert, certs.ClientKey
			return r
		}(), "REDIS_TLS_CERT_FILE: set while REDIS_TLS is off"},
		{"ca file missing", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCAFile = missing }),
			"REDIS_TLS_CA_FILE=" + missing + ": no such file or directory"},
		{"ca file not pem", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCAFile = garbage }), "REDIS_TLS_CA_FILE=" + garbage + ": holds no PEM certificate"},
		{"ca file holds a key", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCAFile = keyAsCA }),
			"REDIS_TLS_CA_FILE=" + keyAsCA + `: holds a PEM block of type "EC PRIVATE KEY"`},
		{"ca certificate does not parse", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCAFile = badBlock }),
			"REDIS_TLS_CA_FILE=" + badBlock + ": certificate 1:"},
		{"key without cert", tlsOn(func(r *redisenv.Redis) { r.RedisTLSKeyFile = certs.ClientKey }), "REDIS_TLS_KEY_FILE: set without REDIS_TLS_CERT_FILE"},
		{"cert without key", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCertFile = certs.ClientCert }), "REDIS_TLS_CERT_FILE: set without REDIS_TLS_KEY_FILE"},
		{"cert missing", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCertFile, r.RedisTLSKeyFile = missing, certs.ClientKey }),
			"REDIS_TLS_CERT_FILE=" + missing + ": no such file or directory"},
		{"key missing", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCertFile, r.RedisTLSKeyFile = certs.ClientCert, missing }),
			"REDIS_TLS_KEY_FILE=" + missing + ": no such file or directory"},
		{"key of another certificate", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCertFile, r.RedisTLSKeyFile = certs.ClientCert, certs.ServerKey }),
			"REDIS_TLS_CERT_FILE=" + certs.ClientCert + " and REDIS_TLS_KEY_FILE=" + certs.ServerKey + ": tls: private key does not match public key"},
		{"cert expired", tlsOn(func(r *redisenv.Redis) { r.RedisTLSCertFile, r.RedisTLSKeyFile = certs.ExpiredCert, certs.ExpiredKey }),
			"REDIS_TLS_CERT_FILE=" + certs.ExpiredCert + ": expired on "},
		{"server name with a port", tlsOn(func(r *redisenv.Redis) { r.RedisTLSServerName = "redis.example:6379" }),
			`REDIS_TLS_SERVER_NAME="redis.example:6379": must be a host name alone`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Check()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Check() = %v, want one line starting %q", err, tt.want)
			}
		})
	}
}

// TestOptions: what the variables say reaches the store's options, for every mode;
// plain mode stays as it was (no TLS, no user).
func TestOptions(t *testing.T) {
	certs := testenv.MakeCerts(t)
	p := plain()
	p.RedisPassword = "secret"
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	if o := p.Options(); o.TLS != nil || o.Username != "" || o.Password != "secret" || o.Addr != p.RedisAddr {
		t.Errorf("plain options = %+v, want the address and password alone", o)
	}

	r := plain()
	r.RedisUsername, r.RedisPassword = "cqrs-write", "pw"
	r.RedisSentinelAddrs, r.RedisSentinelUsername, r.RedisSentinelPassword = []string{"s1:26379", "s2:26379"}, "sen", "spw"
	r.RedisTLS, r.RedisTLSCAFile, r.RedisTLSServerName = "ON", certs.CA, testenv.ServerName
	r.RedisTLSCertFile, r.RedisTLSKeyFile = certs.ClientCert, certs.ClientKey
	if err := r.Check(); err != nil {
		t.Fatalf("Check() = %v, want nil", err)
	}
	o := r.Options()
	if o.Username != "cqrs-write" || o.Password != "pw" || o.SentinelUsername != "sen" || o.SentinelPassword != "spw" || len(o.SentinelAddrs) != 2 {
		t.Errorf("options = %+v, want the users and passwords of both", o)
	}
	if o.TLS == nil || o.TLS.ServerName != testenv.ServerName || len(o.TLS.Certificates) != 1 || o.TLS.RootCAs == nil || o.TLS.InsecureSkipVerify {
		t.Fatalf("TLS = %+v, want the server name, the client certificate and the CA, verified", o.TLS)
	}
	// The pool is the CA of the file: the servers' certificate verifies against it.
	pem, _ := os.ReadFile(certs.ServerCert)
	if _, err := parse(pem).Verify(x509.VerifyOptions{Roots: o.TLS.RootCAs, DNSName: testenv.ServerName}); err != nil {
		t.Errorf("server certificate against the CA file's pool: %v", err)
	}

	// Without a CA file, the system's roots.
	r.RedisTLSCAFile = ""
	if err := r.Check(); err != nil || r.Options().TLS.RootCAs != nil {
		t.Errorf("without REDIS_TLS_CA_FILE: Check %v, RootCAs %v; want nil, nil (the system's roots)", err, r.Options().TLS.RootCAs)
	}
}

// TestOptionsFailClosed: should a file go bad between Check and Options, the
// connections fail rather than fall back to plain text or trust anything.
func TestOptionsFailClosed(t *testing.T) {
	certs := testenv.MakeCerts(t)
	r := plain()
	r.RedisTLS, r.RedisTLSCAFile = "on", certs.CA
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	os.Remove(certs.CA)
	o := r.Options()
	if o.TLS == nil || o.TLS.InsecureSkipVerify || o.TLS.RootCAs == nil {
		t.Fatalf("TLS = %+v, want a configuration that trusts no CA", o.TLS)
	}
	pem, _ := os.ReadFile(certs.ServerCert)
	if _, err := parse(pem).Verify(x509.VerifyOptions{Roots: o.TLS.RootCAs, DNSName: testenv.ServerName}); err == nil {
		t.Errorf("the server's certificate verified against the fail-closed pool")
	}
}

// TestACLRules: the rules grant the store's keys and the listed commands only.
func TestACLRules(t *testing.T) {
	rule := redisenv.ACLRule("cqrs-read", "pw", redisenv.ReadCommands)
	for _, want := range []string{"cqrs-read on >pw resetkeys ~cqrs:* resetchannels -@all ", "+evalsha_ro"} {
		if !strings.Contains(rule, want) {
			t.Errorf("rule %q lacks %q", rule, want)
		}
	}
	for _, c := range []string{"+eval ", "+evalsha ", "+set ", "+wait", "+info", "+config", "+flushall", "+keys"} {
		if strings.Contains(redisenv.ReadCommands+" ", c) {
			t.Errorf("the read function's rules grant %s", c)
		}
	}
	for _, c := range []string{"+config", "+flushall", "+flushdb", "+keys", "+scan", "+unlink", "+@"} {
		if strings.Contains(redisenv.WriteCommands+" ", c) {
			t.Errorf("the write function's rules grant %s", c)
		}
	}
	if got := redisenv.Commands("-@all +ping +script|load +@read"); strings.Join(got, ",") != "ping,script|load" {
		t.Errorf("Commands = %v, want ping and script|load", got)
	}
}

// parse reads the first certificate of a PEM file's bytes.
func parse(b []byte) *x509.Certificate {
	block, _ := pem.Decode(b)
	if block == nil {
		return &x509.Certificate{}
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return &x509.Certificate{}
	}
	return c
}
