package testenv

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
)

// Answer is what one request got.
type Answer struct {
	Status int
	Body   string
	Err    error
}

// InFlight sends req in the background; the channel receives its answer.
func InFlight(req *http.Request) <-chan Answer {
	out := make(chan Answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- Answer{Err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- Answer{Status: resp.StatusCode, Body: string(b)}
	}()
	return out
}

// Terminate sends SIGTERM to p once a request sent just before has had time to
// arrive, and fails the test if p still takes new connections afterwards: a
// draining process finishes what it has and takes nothing new.
func Terminate(tb testing.TB, p *launch.Proc) {
	tb.Helper()
	time.Sleep(300 * time.Millisecond)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.Port), time.Second); err == nil {
		c.Close()
		tb.Errorf("%s still takes new connections while it drains", p.Name)
	}
}
