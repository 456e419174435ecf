package main

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqrs-knative/cqrs-knative/functions/internal/testenv"
)

// TestClusterStackStartsServesAndStopsClean runs the built cqrs-local with a Redis
// Cluster (REDIS_CLUSTER=1, what make run CLUSTER=1 asks for with -cluster): six
// nodes, three of them masters, each with an append-only file in a directory of its
// own; a record created through the write function is read back by its token
// through the UI from a replica; after Ctrl-C no process it started is left, no
// node's port (nor its cluster bus port) listens, and its temporary directory is
// gone.
func TestClusterStackStartsServesAndStopsClean(t *testing.T) {
	testenv.RequireRedis(t)
	p, writeURL, _ := runStack(t, "REDIS_CLUSTER=1")
	out := p.Output()
	ui := regexp.MustCompile(`UI +(http://\S+)`).FindStringSubmatch(out)
	dir := regexp.MustCompile(`temp dir (\S+)`).FindStringSubmatch(out)
	if ui == nil || dir == nil {
		t.Fatalf("no UI URL or temp dir in the output:\n%s", out)
	}
	if !regexp.MustCompile(`redis +cluster, masters \S+, \S+, \S+; replicas \S+, \S+, \S+\n`).MatchString(out) {
		t.Errorf("the banner does not name three masters and three replicas:\n%s", out)
	}

	type node struct{ pid, port int }
	nodes := map[string]node{}
	for _, m := range regexp.MustCompile(`started (redis-\S+) pid=(\d+) addr=127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[2])
		port, _ := strconv.Atoi(m[3])
		nodes[m[1]] = node{pid, port}
	}
	if len(nodes) != 6 {
		t.Fatalf("got Redis %v, want six nodes", nodes)
	}
	for name, n := range nodes {
		d := strings.TrimPrefix(name, "redis-")
		for _, f := range []string{"nodes.conf", "appendonlydir"} {
			if _, err := os.Stat(dir[1] + "/cluster/" + d + "/" + f); err != nil {
				t.Errorf("%s (port %d): %v; want its own directory with its cluster state and append-only file", name, n.port, err)
			}
		}
	}

	// Create, then read by the token the create answered, through the UI's proxy.
	resp, err := http.Post(writeURL+"/records", "application/json", strings.NewReader(`{"type":"rvw","text":"on a local cluster"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		ID, Token string
	}
	err = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated || created.Token == "" {
		t.Fatalf("POST /records: got %d, %+v (%v), want 201 with a token", resp.StatusCode, created, err)
	}
	resp, err = http.Get(ui[1] + "/api/records?type=rvw&q=local+cluster&token=" + url.QueryEscape(created.Token))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), created.ID) || resp.Header.Get("X-Served-By") != "replica" {
		t.Errorf("GET /api/records with the token: got %d %s (served by %q), want 200 with record %s from a replica",
			resp.StatusCode, body, resp.Header.Get("X-Served-By"), created.ID)
	}
	// A cluster takes tokens only: the master/replica stack's minSeq is refused.
	resp, err = http.Get(ui[1] + "/api/records?minSeq=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /api/records?minSeq=1 on a cluster: got %d, want 400", resp.StatusCode)
	}

	pids := map[string]int{"write": pidOf(t, p, "write"), "read": pidOf(t, p, "read"), "ui": pidOf(t, p, "ui")}
	for name, n := range nodes {
		pids[name] = n.pid
	}
	stopStack(t, p)
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after cqrs-local stopped (kill 0: %v)", name, pid, err)
		}
	}
	for name, n := range nodes {
		for _, port := range []int{n.port, n.port + 10000} {
			if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
				c.Close()
				t.Errorf("%s: port %d still listens after cqrs-local stopped", name, port)
			}
		}
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after cqrs-local stopped (stat: %v)", dir[1], err)
	}
}
