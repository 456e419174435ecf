package main

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/launch"
	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestMain removes the binaries that the tests built once they have all run.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

// buildStack compiles cqrs-local and the binaries it runs into one directory, as
// make build does.
func buildStack(t *testing.T) string {
	t.Helper()
	for _, pkg := range []string{"./functions/cmd/cqrs-write", "./functions/cmd/cqrs-read", "./functions/cmd/cqrs-ui"} {
		testenv.Build(t, pkg)
	}
	return testenv.Build(t, "./functions/tools/cqrs-local")
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	seen := map[int]bool{}
	var ports []int
	for len(ports) < n {
		p, err := launch.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// TestStackStartsServesAndStopsClean runs the built cqrs-local on free ports, uses
// the stack through the UI, sends SIGINT (Ctrl-C) and checks that every process it
// started is gone, nothing listens any more and its temporary directory is removed.
func TestStackStartsServesAndStopsClean(t *testing.T) {
	testenv.RequireRedis(t)
	bin := buildStack(t)
	ports := freePorts(t, 5)
	p := testenv.StartOnPort(t, bin, ports[0],
		"UI_PORT="+strconv.Itoa(ports[0]), "WRITE_PORT="+strconv.Itoa(ports[1]), "READ_PORT="+strconv.Itoa(ports[2]),
		"REDIS_MASTER_PORT="+strconv.Itoa(ports[3]), "REDIS_REPLICA_PORT="+strconv.Itoa(ports[4]))
	testenv.Ready(t, p, 30*time.Second)
	// The banner with the addresses follows the "ready" line; its last line ends it.
	// The children's log lines come through pipes of their own (and each process
	// writes its lines up to 5 ms late), so one may follow the banner: wait for all.
	wants := []string{"Press Ctrl-C to stop everything.", "http://localhost:" + strconv.Itoa(ports[0]), "write | {", "read  | {", "ui    | {"}
	has := func(out string) bool {
		for _, want := range wants {
			if !strings.Contains(out, want) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !has(p.Output()) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	out := p.Output()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// The stack works end to end through the UI.
	resp, err := http.Post(p.URL()+"/add", "application/json", strings.NewReader(`{"d_type":"bp","data":"local stack works"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /add: got %d, want 200", resp.StatusCode)
	}
	resp, err = http.Get(p.URL() + "/api/records?q=local+stack")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "local stack works") || resp.Header.Get("X-Served-By") != "replica" {
		t.Errorf("GET /api/records: got %s (served by %q), want the record from the replica", body, resp.Header.Get("X-Served-By"))
	}

	pids := map[string]int{}
	for _, m := range regexp.MustCompile(`started (\S+) pid=(\d+)`).FindAllStringSubmatch(out, -1) {
		pids[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(pids) != 5 {
		t.Fatalf("got pids %v, want redis-master, redis-replica, write, read and ui", pids)
	}
	m := regexp.MustCompile(`temp dir (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no temp dir in output:\n%s", out)
	}
	dir := m[1]
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("temp dir while running: %v", err)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("%s (pid %d) is not running while the stack is: %v", name, pid, err)
		}
	}

	if err := p.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Fatalf("cqrs-local exited with %d after SIGINT, want 0:\n%s", code, p.Output())
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after cqrs-local stopped (kill 0: %v)", name, pid, err)
		}
	}
	for _, port := range ports {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still listens after cqrs-local stopped", port)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after cqrs-local stopped (stat: %v)", dir, err)
	}
}

// TestRefusesToStart checks the one-line answers for what stops the stack before
// anything starts.
func TestRefusesToStart(t *testing.T) {
	testenv.RequireRedis(t)
	bin := buildStack(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)
	ports := freePorts(t, 2)
	other := testenv.Master(t) // another stack's Redis
	otherPort := strconv.Itoa(other.Port)
	free := []string{"UI_PORT=" + strconv.Itoa(ports[0]), "WRITE_PORT=0", "READ_PORT=" + strconv.Itoa(ports[1])}
	tests := []struct {
		name     string
		env      []string
		wantCode int
		wantLine string
	}{
		{"no redis-server", []string{"PATH=" + t.TempDir()}, 1, "cqrs-local: redis-server is not installed"},
		{"bad port variable", []string{"UI_PORT=web"}, 2, `cqrs-local: UI_PORT="web": not a port number`},
		{"port in use", []string{"UI_PORT=" + busyPort, "WRITE_PORT=" + strconv.Itoa(ports[0]), "READ_PORT=" + strconv.Itoa(ports[1])},
			1, "cqrs-local: port " + busyPort + " for the UI is not free"},
		{"master port held by a listener", append([]string{"REDIS_MASTER_PORT=" + busyPort}, free...),
			1, "cqrs-local: port " + busyPort + " for the Redis master is not free"},
		{"replica port held by a listener", append([]string{"REDIS_REPLICA_PORT=" + busyPort}, free...),
			1, "cqrs-local: port " + busyPort + " for the Redis replica is not free"},
		{"master port held by another Redis", append([]string{"REDIS_MASTER_PORT=" + otherPort}, free...),
			1, "cqrs-local: port " + otherPort + " for the Redis master is not free"},
		{"replica port held by another Redis", append([]string{"REDIS_REPLICA_PORT=" + otherPort}, free...),
			1, "cqrs-local: port " + otherPort + " for the Redis replica is not free"},
		{"bad cluster variable", []string{"REDIS_CLUSTER=maybe"}, 2, `cqrs-local: REDIS_CLUSTER="maybe": not 1 or 0`},
		{"a master port with a cluster", append([]string{"REDIS_CLUSTER=1", "REDIS_MASTER_PORT=" + busyPort}, free...),
			2, "cqrs-local: -redis-master-port (REDIS_MASTER_PORT) is for one master and its replica"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testenv.StartOnPort(t, bin, 0, tt.env...)
			code := p.Wait(10 * time.Second)
			out := strings.TrimSpace(p.Output())
			if code != tt.wantCode || !strings.HasPrefix(out, tt.wantLine) || strings.Contains(out, "\n") ||
				strings.Contains(out, "cqrs-local: ready") || strings.Contains(out, "cqrs-local: started") {
				t.Errorf("got exit %d and %q, want exit %d and one line starting %q", code, out, tt.wantCode, tt.wantLine)
			}
		})
	}
}
