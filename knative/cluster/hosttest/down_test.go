package hosttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startTime is when the process started, in clock ticks since boot (field 22 of
// /proc/PID/stat), as cluster.sh notes it.
func startTime(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	return fields[19]
}

// running says whether pid is still there and not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+1:])
	return len(f) > 0 && f[0] != "Z"
}

// TestDownAfterTheProcessesAreGone: after a restart (or a kill of every
// process), the cluster's run directory still lists PIDs that other processes
// may hold by now. `cluster.sh down` signals a listed PID only while it is the
// process the cluster started (its start time as noted, or, in a list without
// start times, a command line naming the cluster's directory), says which are
// gone, and finishes the teardown all the same. It runs in a network namespace
// of the test's own, so that its network part changes nothing of the machine.
func TestDownAfterTheProcessesAreGone(t *testing.T) {
	requireHost(t)
	ns := newNetns(t)
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(run, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Each listed PID is a stand-in of this test's: "another" ones play
	// processes that took a gone process's PID, "own" ones the cluster's.
	anotherKubelet := standin(t, "kubelet")                                            // start time noted, but not its
	anotherEtcd := standin(t, "etcd", "--data-dir", "/var/lib/etcd")                   // no start time, another directory
	ownRegistry := standin(t, "registry", "serve")                                     // its start time noted
	ownContainerd := standin(t, "containerd", "--config", run+"/conf/containerd.toml") // no start time, the cluster's directory
	wrong := fmt.Sprint(mustAtoi(t, startTime(t, anotherKubelet)) + 1)
	pids := fmt.Sprintf("etcd %d\nregistry %d %s\ncontainerd %d\nkubelet %d %s\n",
		anotherEtcd, ownRegistry, startTime(t, ownRegistry), ownContainerd, anotherKubelet, wrong)
	if err := os.WriteFile(filepath.Join(run, "pids"), []byte(pids), 0o644); err != nil {
		t.Fatal(err)
	}

	out, _ := ns.exec([]string{"CLUSTER_DIR=" + dir}, clusterSh(t), "down")
	// The exit code is the check's, which also looks at the machine's cgroups
	// (a cluster that is up elsewhere has some): not this test's subject.
	for _, c := range []struct {
		name string
		pid  int
		want bool
	}{
		{"kubelet (its PID, another start time)", anotherKubelet, true},
		{"etcd (its PID, another command line)", anotherEtcd, true},
		{"registry (the start time noted)", ownRegistry, false},
		{"containerd (the cluster's directory)", ownContainerd, false},
	} {
		// A signalled stand-in is gone within the teardown's own wait; give a
		// slow machine a bounded moment more to reap it.
		got := running(c.pid)
		for i := 0; got && !c.want && i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			got = running(c.pid)
		}
		if got != c.want {
			t.Errorf("%s, PID %d: running after down %v, want %v\n%s", c.name, c.pid, got, c.want, out)
		}
	}
	if !strings.Contains(out, "not running any more") || !strings.Contains(out, "etcd kubelet") {
		t.Errorf("down: got\n%s\nwant it to name etcd and kubelet as not running any more", out)
	}
	if _, err := os.Stat(run); !os.IsNotExist(err) {
		t.Errorf("down: %s is still there (%v), want it removed\n%s", run, err, out)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}
