package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are the PEM files of a CA made for one test and of certificates it signed,
// in a directory of the test's.
type Certs struct {
	CA string // the CA's certificate
	// ServerCert and ServerKey are the Redis servers' (and Sentinels'); the
	// certificate holds the DNS name ServerName and no IP address, like certificates
	// made for Kubernetes Services, so a client that dials an IP (as Sentinel
	// hands out) must be told the name.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client's, for servers that ask for one.
	ClientCert, ClientKey string
	// ExpiredCert and ExpiredKey are a client certificate that has expired.
	ExpiredCert, ExpiredKey string

	pool   *x509.CertPool
	client tls.Certificate
}

// ServerName is the one name the servers' certificates hold.
const ServerName = "redis.cqrs.test"

// MakeCerts makes a CA and the certificates it signs, in a new directory of the
// test's. Two calls make two unrelated CAs.
func MakeCerts(tb testing.TB) *Certs {
	tb.Helper()
	dir := tb.TempDir()
	caKey := newKey(tb)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: serial(tb), Subject: pkix.Name{CommonName: "cqrs test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	c := &Certs{CA: filepath.Join(dir, "ca.crt"), pool: x509.NewCertPool()}
	c.pool.AddCert(ca)
	writePEM(tb, c.CA, "CERTIFICATE", caDER)

	leaf := func(name string, dns []string, from, until time.Time) (certFile, keyFile string) {
		key := newKey(tb)
		tmpl := &x509.Certificate{
			SerialNumber: serial(tb), Subject: pkix.Name{CommonName: name}, DNSNames: dns,
			NotBefore: from, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature,
			// Redis shows its server certificate to its master as a client certificate.
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			tb.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			tb.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		writePEM(tb, certFile, "CERTIFICATE", der)
		writePEM(tb, keyFile, "EC PRIVATE KEY", keyDER)
		return certFile, keyFile
	}
	c.ServerCert, c.ServerKey = leaf("server", []string{ServerName}, now.Add(-time.Hour), now.Add(24*time.Hour))
	c.ClientCert, c.ClientKey = leaf("client", nil, now.Add(-time.Hour), now.Add(24*time.Hour))
	c.ExpiredCert, c.ExpiredKey = leaf("expired", nil, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	c.client, err = tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// ClientTLS is a client configuration that trusts the CA, checks ServerName and
// shows the client certificate.
func (c *Certs) ClientTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.pool, ServerName: ServerName, Certificates: []tls.Certificate{c.client}}
}

func newKey(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func writePEM(tb testing.TB, path, typ string, der []byte) {
	tb.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}
