package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of target that can lose answers: while
// it drops, everything target sends back is thrown away, as on a link that fails
// after a request went out.
type Proxy struct {
	Addr string
	drop atomic.Bool
	ln   net.Listener
	mu   sync.Mutex
	open []net.Conn
}

// NewProxy starts a proxy to target, closed when the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln}
	go p.accept(target)
	tb.Cleanup(p.close)
	return p
}

// Drop starts or stops throwing away what target answers.
func (p *Proxy) Drop(on bool) { p.drop.Store(on) }

func (p *Proxy) accept(target string) {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.open = append(p.open, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() { p.back(c, s); c.Close() }()
	}
}

// back copies target's answers to the client unless the proxy drops them.
func (p *Proxy) back(c, s net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 && !p.drop.Load() {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
}
