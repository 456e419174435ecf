package redisenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// TLSOn reports whether REDIS_TLS turns TLS on.
func (r Redis) TLSOn() bool {
	v := strings.ToLower(r.RedisTLS)
	return v == "on" || v == "true"
}

// tlsConfig returns the TLS configuration of every connection to Redis and its
// Sentinels, nil with TLS off, or an error naming the variable at fault. The files
// are read once, at start: a rotated certificate takes effect with the next start of
// the process (on Knative, the next revision or pod).
func (r Redis) tlsConfig() (*tls.Config, error) {
	switch strings.ToLower(r.RedisTLS) {
	case "", "off", "false":
		for _, v := range []struct{ name, value string }{
			{"REDIS_TLS_CA_FILE", r.RedisTLSCAFile}, {"REDIS_TLS_SERVER_NAME", r.RedisTLSServerName},
			{"REDIS_TLS_CERT_FILE", r.RedisTLSCertFile}, {"REDIS_TLS_KEY_FILE", r.RedisTLSKeyFile},
		} {
			if v.value != "" {
				return nil, fmt.Errorf("%s: set while REDIS_TLS is off; set REDIS_TLS=on, or unset it", v.name)
			}
		}
		return nil, nil
	case "on", "true":
	default:
		return nil, fmt.Errorf("REDIS_TLS=%q: must be on or off", r.RedisTLS)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: r.RedisTLSServerName}
	if n := r.RedisTLSServerName; n != "" && strings.ContainsAny(n, ":/ \t") {
		return nil, fmt.Errorf("REDIS_TLS_SERVER_NAME=%q: must be a host name alone, without port or scheme", n)
	}
	if r.RedisTLSCAFile != "" {
		pool, err := certPool(r.RedisTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("REDIS_TLS_CA_FILE=%s: %w", r.RedisTLSCAFile, err)
		}
		c.RootCAs = pool
	}
	// Without a CA file, the system's roots: a managed Redis usually shows a
	// certificate of a public CA.
	switch {
	case r.RedisTLSCertFile == "" && r.RedisTLSKeyFile != "":
		return nil, errors.New("REDIS_TLS_KEY_FILE: set without REDIS_TLS_CERT_FILE")
	case r.RedisTLSCertFile != "" && r.RedisTLSKeyFile == "":
		return nil, errors.New("REDIS_TLS_CERT_FILE: set without REDIS_TLS_KEY_FILE")
	case r.RedisTLSCertFile != "":
		cert, err := keyPair(r.RedisTLSCertFile, r.RedisTLSKeyFile)
		if err != nil {
			return nil, err
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// mustTLSConfig is tlsConfig for a configuration Check has passed. Should the files
// have gone bad since, it fails closed: a configuration that trusts no CA, so every
// handshake fails and says the CA is not trusted, and nothing is ever sent in
// plain text.
func (r Redis) mustTLSConfig() *tls.Config {
	c, err := r.tlsConfig()
	if err != nil {
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: x509.NewCertPool()}
	}
	return c
}

// certPool reads the PEM certificates of file; every block must be a certificate
// that parses, and there must be at least one.
func certPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, pathErr(err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a PEM block of type %q; want certificates only", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, errors.New("holds no PEM certificate")
	}
	return pool, nil
}

// keyPair reads the client certificate and its key, naming the variable of the
// file at fault.
func keyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("REDIS_TLS_CERT_FILE=%s: %w", certFile, pathErr(err))
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("REDIS_TLS_KEY_FILE=%s: %w", keyFile, pathErr(err))
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("REDIS_TLS_CERT_FILE=%s and REDIS_TLS_KEY_FILE=%s: %w", certFile, keyFile, err)
	}
	if now := time.Now(); now.After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, fmt.Errorf("REDIS_TLS_CERT_FILE=%s: expired on %s", certFile, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return cert, nil
}

// pathErr is err without the path, which the message names already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
