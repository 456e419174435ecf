package redisproc

import (
	"net"
	"os"
	"strings"
	"testing"
)

// TestStartRefusesATakenPort: a Redis started on a port that another Redis or another
// program holds must fail at start, not report the other one as its own.
func TestStartRefusesATakenPort(t *testing.T) {
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	other, err := StartMaster(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Kill()
	if s, err := StartMaster(t.TempDir(), other.Port); err == nil {
		s.Kill()
		t.Fatalf("a second master on port %d started; want an error, as another Redis holds the port", other.Port)
	} else if !strings.Contains(err.Error(), "taken by another Redis") && !strings.Contains(err.Error(), "port taken") {
		t.Errorf("error %q does not say the port is taken", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if s, err := StartMaster(t.TempDir(), port); err == nil {
		s.Kill()
		t.Fatalf("a master started on port %d that a plain listener holds", port)
	}
}
