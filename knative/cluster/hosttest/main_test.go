// Package hosttest holds no code, only tests of what knative/cluster/cluster.sh
// does to the machine, run without the cluster: the network set-up and teardown
// inside a network namespace of the test's own (ip netns add), and the preflight
// beside stand-ins of another Kubernetes' processes. They need root, ip and
// iptables; without them they are skipped, and under CI=true they fail.
package hosttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// standinEnv makes the test binary a stand-in process: started under another
// name (a symlink named kubelet, containerd, ...), it only waits to be ended.
const standinEnv = "CQRS_HOSTTEST_STANDIN"

// standinLife bounds a stand-in whose test died before ending it.
const standinLife = 2 * time.Minute

func TestMain(m *testing.M) {
	if os.Getenv(standinEnv) == "1" {
		time.Sleep(standinLife)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// clusterSh is the script under test.
func clusterSh(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "cluster.sh")
}

// missing skips the test, or fails it under CI=true, because what it needs is
// not there.
func missing(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// requireHost checks for root and the tools the tests and the script use.
func requireHost(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root: network namespaces and iptables")
	}
	for _, tool := range []string{"bash", "ip", "iptables", "iptables-save", "ip6tables", "ip6tables-save", "unshare", "ss", "pgrep"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool+" is not installed (make test installs iptables, iproute2, procps and util-linux where it can)")
		}
	}
}

// cmdTimeout bounds every command a test runs.
const cmdTimeout = time.Minute

// run runs a command and returns its combined output and error.
func run(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// netns is a network namespace made by the test with ip netns add, deleted when
// the test ends.
type netns string

func newNetns(t *testing.T) netns {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("cqrs-hosttest-%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	if out, err := run(nil, "ip", "netns", "add", name); err != nil {
		missing(t, fmt.Sprintf("ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := run(nil, "ip", "netns", "del", name); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return netns(name)
}

// exec runs a command inside the namespace.
func (n netns) exec(env []string, name string, args ...string) (string, error) {
	return run(env, "ip", append([]string{"netns", "exec", string(n), name}, args...)...)
}

// sh runs a shell script inside the namespace and fails the test if it fails.
func (n netns) sh(t *testing.T, script string) string {
	t.Helper()
	out, err := n.exec(nil, "bash", "-euo", "pipefail", "-c", script)
	if err != nil {
		t.Fatalf("in %s: %v\n%s\nscript:\n%s", n, err, out, script)
	}
	return out
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for l := range strings.Lines(s) {
		if l = strings.TrimRight(l, "\n"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
