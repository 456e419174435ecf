package store

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/cqrs-knative/cqrs-knative/functions/fail"
)

// refusedAccess turns what a Redis (or a Sentinel) does to a client it will not
// serve into an unavailable error whose message names the setting to fix: a TLS
// handshake that fails either way, credentials it refuses, a command or key the
// ACL user may not use. Retrying cannot cure these until the setting changes, but
// they are still 503s: the fix may be on the Redis side (an ACL, a certificate),
// and a client's retry then succeeds. The message is safe to show (it names no
// address; readiness answers it); the cause, for the log, keeps the detail. Other
// errors give nil.
//
// They count as down, so the read side turns to the master when a replica refuses
// it, as it would for a replica that does not answer; a handshake never answered
// counts as slow, as a connection that times out does.
func refusedAccess(err error) error {
	msg := accessMessage(err)
	if msg == "" {
		return nil
	}
	kind := errDown
	if errors.Is(err, errHandshakeTimeout) {
		kind = errSlow // perhaps a server too busy to answer
	}
	return fail.Unavailable(msg, fmt.Errorf("%w: %w", kind, err))
}

// accessMessage returns the explanation of a refused access, "" for other errors.
func accessMessage(err error) string {
	user, auth := "REDIS_USERNAME", "REDIS_USERNAME and REDIS_PASSWORD"
	if fromSentinel(err) {
		user, auth = "REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD"
	}
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		header   tls.RecordHeaderError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return "redis TLS: the server's certificate is not signed by a CA trusted here; check REDIS_TLS_CA_FILE"
	case errors.As(err, &hostname):
		return "redis TLS: the server's certificate does not name the host dialled; set REDIS_TLS_SERVER_NAME to a name it holds"
	case errors.As(err, &invalid):
		return "redis TLS: the server's certificate is not valid now (expired, not yet valid, or not for a server)"
	case errors.As(err, &verify):
		return "redis TLS: the server's certificate was refused; check REDIS_TLS_CA_FILE"
	case errors.As(err, &header):
		return "redis TLS: the server does not speak TLS on this port; set REDIS_TLS=off or use its TLS port"
	case errors.Is(err, errHandshakeTimeout):
		return "redis TLS: the server accepted the connection but did not answer the TLS handshake; does it speak TLS on this port? (REDIS_TLS)"
	case errors.As(err, &op) && op.Op == "remote error":
		// An alert from the server: it refused the handshake, most often the client
		// certificate (none, or one its CA did not sign).
		return "redis TLS: the server refused the handshake (" + strings.TrimPrefix(op.Err.Error(), "tls: ") +
			"); check REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE"
	case redis.HasErrorPrefix(err, "WRONGPASS"):
		return "redis refused the credentials (WRONGPASS); check " + auth
	case redis.HasErrorPrefix(err, "NOAUTH"):
		return "redis asks for a password (NOAUTH); set " + auth
	case redis.HasErrorPrefix(err, "NOPERM"), scriptRefused(err):
		return "redis refused a command or key to the ACL user (NOPERM); grant " + user +
			" the commands and keys docs/configuration.md lists (the Redis' ACL LOG names the one refused)"
	}
	return ""
}

// scriptRefused reports whether a script stopped at a command or key the ACL user
// may not use: Redis 7 says so in an ERR, not a NOPERM.
func scriptRefused(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "The user executing the script can't")
}

// fromSentinel reports whether err came from asking the Sentinels; go-redis says so
// in its message, and only there.
func fromSentinel(err error) bool {
	return strings.Contains(err.Error(), "sentinel")
}
