package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
)

// errHandshakeTimeout marks a TLS handshake that did not finish within dialTimeout
// on a connection the server had accepted: most often a server that does not speak
// TLS on that port, and waits for the rest of what it takes for a command.
var errHandshakeTimeout = errors.New("no TLS handshake within the dial timeout")

// tlsDialer connects over TLS (tls.Dialer: an empty ServerName in cfg is the host
// dialled), the TCP connection and the handshake both within dialTimeout, and tells
// a handshake that never ended from a server that did not accept: the dial's own
// timeout is a net.OpError of op "dial", the handshake's the bare context error.
func tlsDialer(cfg *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	d := &tls.Dialer{Config: cfg}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		conn, err := d.DialContext(ctx, network, addr)
		var oe *net.OpError
		if errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &oe) && oe.Op == "dial") {
			return nil, fmt.Errorf("%w: %w", errHandshakeTimeout, err)
		}
		return conn, err
	}
}
