package hosttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// standin starts the test binary under the given process name (a symlink of
// that name, so that the kernel names the process after it) with args, and ends
// it by its PID when the test ends.
func standin(t *testing.T, name string, args ...string) int {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), standinEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// The process carries its name from exec on; wait (bounded) until it shows.
	for i := 0; i < 100; i++ {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == name {
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stand-in %s (PID %d) never showed its name", name, pid)
	return 0
}

// preflight runs cluster.sh preflight in ns (so that its checks of addresses,
// ports and chains see the test's namespace, not the machine's) with its own
// CLUSTER_DIR.
func preflight(t *testing.T, ns netns, dir string) (string, error) {
	t.Helper()
	return ns.exec([]string{"CLUSTER_DIR=" + dir}, clusterSh(t), "preflight")
}

// TestPreflightRefusesBesideAnotherKubernetes: cluster.sh preflight refuses,
// naming the process, beside a running kubelet, kube-proxy or k3s (stand-ins of
// those names, started here), and beside a containerd on the cluster's own
// paths; a containerd of the system (its own config and socket) is no reason
// to refuse.
func TestPreflightRefusesBesideAnotherKubernetes(t *testing.T) {
	requireHost(t)
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		refuse bool
	}{
		{name: "kubelet", args: []string{"--config=/var/lib/kubelet/config.yaml"}, refuse: true},
		{name: "kube-proxy", args: []string{"--config=/var/lib/kube-proxy/config.conf"}, refuse: true},
		{name: "k3s-server", refuse: true},
		{name: "containerd", args: []string{"--config", dir + "/run/conf/containerd.toml"}, refuse: true},
		{name: "containerd", args: []string{"--config", "/etc/containerd/config.toml"}, refuse: false},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			ns := newNetns(t)
			pid := standin(t, tt.name, tt.args...)
			out, err := preflight(t, ns, dir)
			named := strings.Contains(out, fmt.Sprintf("PID %d", pid))
			switch {
			case tt.refuse && (err == nil || !named || !strings.Contains(out, tt.name)):
				t.Errorf("preflight beside %s (PID %d): got %v\n%s\nwant a refusal naming it", tt.name, pid, err, out)
			case !tt.refuse && named:
				t.Errorf("preflight beside the system's %s (PID %d): got\n%s\nwant it not named", tt.name, pid, out)
			}
		})
	}
}

// TestPreflightRefusesWhatItWouldTake: chains under kube-proxy's own names (which
// kube-proxy rewrites or deletes), the cluster's address, bridge, guard chain or
// a route to its pod network make the preflight refuse, naming them; a foreign
// KUBE-... or CNI-... chain of any other name does not.
func TestPreflightRefusesWhatItWouldTake(t *testing.T) {
	requireHost(t)
	for _, tt := range []struct {
		script string
		want   string // in the refusal; "" for none
	}{
		{"iptables -w -t nat -N KUBE-SERVICES", "kube-proxy's chains"},
		{"ip6tables -w -N KUBE-SVC-ABCDEFGHIJKLMNOP", "KUBE-SVC-ABCDEFGHIJKLMNOP"},
		{"iptables -w -N " + guardChain, guardChain},
		{"ip addr add " + nodeAddr + " dev lo", "10.10.0.1 is on lo"},
		{"ip link add cqrs0 type bridge", "cqrs0"},
		{"ip link set lo up; ip route add blackhole " + podCIDR, "a route to the cluster's addresses"},
		{"iptables -w -N KUBE-FOREIGN; iptables -w -t nat -N CNI-FOREIGN", ""},
	} {
		t.Run(tt.script, func(t *testing.T) {
			ns := newNetns(t)
			ns.sh(t, tt.script)
			out, err := preflight(t, ns, t.TempDir())
			if tt.want != "" && (err == nil || !strings.Contains(out, tt.want)) {
				t.Errorf("preflight with %q: got %v\n%s\nwant a refusal naming %q", tt.script, err, out, tt.want)
			}
			if tt.want == "" && strings.Contains(out, "FOREIGN") {
				t.Errorf("preflight with %q: got\n%s\nwant the foreign chains not named", tt.script, out)
			}
		})
	}
}
