package redisproc

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestOneDirectoryPerServer: a replica in its master's directory is refused (the
// two would share dump.rdb), and the directory is free again once its server is
// stopped.
func TestOneDirectoryPerServer(t *testing.T) {
	requireRedis(t)
	dir := t.TempDir()
	m, err := StartMaster(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	if r, err := StartReplica(dir, 0, m); err == nil {
		r.Kill()
		t.Fatal("a replica started in its master's directory; want an error")
	} else if !strings.Contains(err.Error(), "is the directory of the Redis master on port") {
		t.Errorf("error %q does not say whose directory it is", err)
	}
	m.Stop()
	again, err := StartMaster(dir, 0)
	if err != nil {
		t.Fatalf("a master in the directory of a stopped one: %v", err)
	}
	again.Kill()
}

// TestStartAfterDeath: a server that died on its own says so (Exited, ExitErr) and
// starts again on its port with its files: a master with an append-only file keeps
// what it acknowledged.
func TestStartAfterDeath(t *testing.T) {
	requireRedis(t)
	m, err := StartMaster(t.TempDir(), 0, "--appendonly", "yes")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Kill()
	if _, err := m.Do("SET", "cqrs:k", "v"); err != nil {
		t.Fatal(err)
	}
	pid := m.PID()
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-m.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("Exited not closed 10s after kill -9")
	}
	if err := m.ExitErr(); err == nil || err.Error() != "signal: killed" {
		t.Errorf("ExitErr = %v, want signal: killed", err)
	}
	if err := m.Start(); err != nil {
		t.Fatalf("start after death: %v", err)
	}
	if m.PID() == pid {
		t.Errorf("pid %d after the restart, want a new process", pid)
	}
	if err := m.WaitLoaded(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Do("GET", "cqrs:k"); err != nil || v != "v" {
		t.Errorf("GET after the restart = %q, %v; want v from the append-only file", v, err)
	}
}
