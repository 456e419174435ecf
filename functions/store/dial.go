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

// tlsDialer connects over TLS in two steps, so that a handshake that never ends can
// be told from a server that does not accept: the TCP connection, then the
// handshake, both within dialTimeout. An empty ServerName in cfg is the host
// dialled, as crypto/tls does it.
func tlsDialer(cfg *tls.Config) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		var d net.Dialer
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := cfg
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				raw.Close()
				return nil, err
			}
			c = cfg.Clone()
			c.ServerName = host
		}
		conn := tls.Client(raw, c)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: %w", errHandshakeTimeout, err)
			}
			return nil, err
		}
		return conn, nil
	}
}
