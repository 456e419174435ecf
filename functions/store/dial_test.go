package store

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
)

// TestTLSDialerTellsHandshakeFromConnect: a server that accepts and never answers the
// handshake is told apart (errHandshakeTimeout); a port where nothing listens is not.
func TestTLSDialerTellsHandshakeFromConnect(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	held := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			held <- c // kept open, never written to
		}
	}()
	defer func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	dial := tlsDialer(&tls.Config{ServerName: "redis.test"})
	if c, err := dial(context.Background(), "tcp", silent.Addr().String()); !errors.Is(err, errHandshakeTimeout) {
		t.Errorf("dial a server that never answers the handshake: %v, %v; want errHandshakeTimeout", c, err)
	}
	if c, err := dial(context.Background(), "tcp", closedAddr); err == nil || errors.Is(err, errHandshakeTimeout) {
		t.Errorf("dial a closed port: %v, %v; want a refused connection, not errHandshakeTimeout", c, err)
	}
}
