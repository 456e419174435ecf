package hosttest

import (
	"slices"
	"strings"
	"testing"
)

// What the cluster's set-up (net_up in knative/cluster/host.sh) adds, by its own
// names and addresses.
const (
	guardChain = "CQRS-CLUSTER-GUARD"
	nodeAddr   = "10.10.0.1/32"
	podCIDR    = "10.244.0.0/16"
)

// foreign is what another Kubernetes or another program has on the machine
// before the cluster starts: a KUBE-... chain that is none of kube-proxy's own
// names, with a rule and a jump to it, a CNI-... chain with a rule, the same in
// ip6tables, a bridge with an address, and an outside interface with the
// default route (which gives the guard chain its rules). Addresses are from the
// documentation ranges, inside the test's namespace only; links get no IPv6
// link-local address (addr_gen_mode 1), whose late arrival would look like a
// change.
const foreign = `
echo 1 >/proc/sys/net/ipv6/conf/default/addr_gen_mode
ip link set lo up
ip link add cqrs-out type veth peer name cqrs-out-peer
ip addr add 192.0.2.1/24 dev cqrs-out
ip link set cqrs-out up
ip link set cqrs-out-peer up
ip route add default via 192.0.2.2 dev cqrs-out
ip link add br-foreign type bridge
ip addr add 198.51.100.1/24 dev br-foreign
iptables -w -N KUBE-FOREIGN
iptables -w -A KUBE-FOREIGN -s 198.51.100.0/24 -m comment --comment "another cluster's rule" -j RETURN
iptables -w -A FORWARD -j KUBE-FOREIGN
iptables -w -t nat -N CNI-FOREIGN
iptables -w -t nat -A CNI-FOREIGN -d 198.51.100.0/24 -j ACCEPT
iptables -w -t nat -A POSTROUTING -s 198.51.100.0/24 -j CNI-FOREIGN
ip6tables -w -N KUBE-FOREIGN
ip6tables -w -A KUBE-FOREIGN -s 2001:db8::/32 -j RETURN
ip6tables -w -A FORWARD -j KUBE-FOREIGN
`

// clusterParts plays kube-proxy, the kubelet and the CNI bridge plugin once the
// set-up has run: chains under their names with jumps from the built-in chains,
// the pod bridge with a pod's veth on it, and route_localnet.
const clusterParts = `
iptables -w -t nat -N KUBE-SERVICES
iptables -w -t nat -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -w -t nat -A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
iptables -w -t nat -N KUBE-SVC-ABCDEFGHIJKLMNOP
iptables -w -t nat -A KUBE-SERVICES -d 10.96.0.1/32 -p tcp --dport 443 -j KUBE-SVC-ABCDEFGHIJKLMNOP
iptables -w -N KUBE-FORWARD
iptables -w -I FORWARD 1 -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
iptables -w -N KUBE-KUBELET-CANARY
iptables -w -t nat -N CNI-0123456789abcdef01234567
iptables -w -t nat -A POSTROUTING -s 10.244.0.5/32 -j CNI-0123456789abcdef01234567
ip6tables -w -N KUBE-FORWARD
ip6tables -w -I FORWARD 1 -j KUBE-FORWARD
ip link add cqrs0 type bridge
ip addr add 10.244.0.1/24 dev cqrs0
echo 1 >/proc/sys/net/ipv4/conf/all/route_localnet
`

// podVeth is a pod's veth on the bridge, as the CNI plugin leaves it while the
// pod's namespace exists. Once the namespaces are gone (the usual case at
// teardown, and always after a restart) the bridge has none.
const podVeth = `
ip link add veth-pod type veth peer name veth-pod-in
ip link set veth-pod master cqrs0
`

// hostNet is the network of a namespace as the tests compare it.
type hostNet struct {
	chains  []string // user-defined chains: "iptables filter NAME"
	rules   []string // "iptables filter -A CHAIN ..."
	links   []string
	addrs   []string // "dev address/prefix"
	routes  []string
	sysctls []string // "path value"
}

func (n netns) state(t *testing.T) hostNet {
	t.Helper()
	var h hostNet
	for _, fam := range []string{"iptables", "ip6tables"} {
		table := ""
		for _, l := range lines(n.sh(t, fam+"-save")) {
			switch {
			case strings.HasPrefix(l, "*"):
				table = l[1:]
			case strings.HasPrefix(l, ":"):
				// ":NAME POLICY [counters]": a user-defined chain has no policy ("-").
				if f := strings.Fields(l[1:]); len(f) >= 2 && f[1] == "-" {
					h.chains = append(h.chains, fam+" "+table+" "+f[0])
				}
			case strings.HasPrefix(l, "-A "):
				h.rules = append(h.rules, fam+" "+table+" "+l)
			}
		}
	}
	for _, l := range lines(n.sh(t, "ip -o link show")) {
		if f := strings.SplitN(l, ": ", 3); len(f) == 3 {
			name, _, _ := strings.Cut(f[1], "@")
			h.links = append(h.links, name)
		}
	}
	for _, l := range lines(n.sh(t, "ip -o addr show")) {
		if f := strings.Fields(l); len(f) >= 4 {
			h.addrs = append(h.addrs, f[1]+" "+f[3])
		}
	}
	h.routes = lines(n.sh(t, "ip route show table all; ip -6 route show table all"))
	for _, s := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet", "net/ipv6/conf/all/forwarding"} {
		h.sysctls = append(h.sysctls, s+" "+strings.TrimSpace(n.sh(t, "cat /proc/sys/"+s)))
	}
	for _, l := range []*[]string{&h.chains, &h.rules, &h.links, &h.addrs, &h.routes, &h.sysctls} {
		slices.Sort(*l)
	}
	return h
}

// diff reports what want has and got lacks, and the other way round.
func diff(t *testing.T, what string, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("%s: %q is gone, want it kept", what, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("%s: %q is left, want it removed", what, g)
		}
	}
}

func has(list []string, substr string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, substr) })
}

// TestNetworkTeardownKeepsForeign: the cluster's network set-up and teardown,
// in a namespace that already holds another cluster's chains and a foreign
// bridge, leave the namespace exactly as they found it: the foreign chains
// (KUBE-FOREIGN, CNI-FOREIGN) with their rules and jumps, the bridge and its
// address survive; the guard chains, the node address, the blackhole route,
// the chains the cluster's parts made under KUBE-* and CNI-* names, the pod
// bridge and its veth go; the sysctls are back. Once with a pod's veth on the
// bridge, once with none.
func TestNetworkTeardownKeepsForeign(t *testing.T) {
	requireHost(t)
	for _, tt := range []struct{ name, parts string }{
		{"a pod's veth on the bridge", clusterParts + podVeth},
		{"no veth left on the bridge", clusterParts},
	} {
		t.Run(tt.name, func(t *testing.T) { testNetworkTeardownKeepsForeign(t, tt.parts) })
	}
}

func testNetworkTeardownKeepsForeign(t *testing.T, parts string) {
	ns := newNetns(t)
	ns.sh(t, foreign)
	before := ns.state(t)
	env := []string{"CLUSTER_DIR=" + t.TempDir()}

	if out, err := ns.exec(env, clusterSh(t), "net-test-up"); err != nil {
		t.Fatalf("cluster.sh net-test-up: %v\n%s", err, out)
	}
	up := ns.state(t)
	// The set-up did change the namespace, so the comparison below can fail.
	for _, c := range []struct {
		what string
		list []string
		want string
	}{
		{"chains", up.chains, "iptables filter " + guardChain},
		{"chains", up.chains, "iptables mangle " + guardChain},
		{"rules", up.rules, "iptables filter -A FORWARD -j " + guardChain},
		{"rules", up.rules, "iptables mangle -A POSTROUTING -j " + guardChain},
		{"rules", up.rules, "-o cqrs-out -j DROP"},
		{"rules", up.rules, "-o cqrs-out -j REJECT --reject-with icmp-port-unreachable"},
		{"addresses", up.addrs, "lo " + nodeAddr},
		{"routes", up.routes, "blackhole " + podCIDR},
		{"sysctls", up.sysctls, "net/ipv4/ip_forward 1"},
	} {
		if !has(c.list, c.want) {
			t.Errorf("after net-test-up, %s: no %q in\n%s", c.what, c.want, strings.Join(c.list, "\n"))
		}
	}
	ns.sh(t, parts)

	if out, err := ns.exec(env, clusterSh(t), "net-test-down"); err != nil {
		t.Fatalf("cluster.sh net-test-down: %v\n%s", err, out)
	}
	after := ns.state(t)
	diff(t, "chains", after.chains, before.chains)
	diff(t, "rules", after.rules, before.rules)
	diff(t, "links", after.links, before.links)
	diff(t, "addresses", after.addrs, before.addrs)
	diff(t, "routes", after.routes, before.routes)
	diff(t, "sysctls", after.sysctls, before.sysctls)
}

// TestNetworkTeardownWithoutRecord: with the record of the host gone, the
// teardown removes only the cluster's own names (the guard, the node address,
// the blackhole route, its bridge) and leaves every KUBE-* and CNI-* chain,
// since nothing then says whose they are.
func TestNetworkTeardownWithoutRecord(t *testing.T) {
	requireHost(t)
	ns := newNetns(t)
	ns.sh(t, foreign)
	dir := t.TempDir()
	env := []string{"CLUSTER_DIR=" + dir}
	if out, err := ns.exec(env, clusterSh(t), "net-test-up"); err != nil {
		t.Fatalf("cluster.sh net-test-up: %v\n%s", err, out)
	}
	ns.sh(t, clusterParts+podVeth)
	withParts := ns.state(t)
	ns.sh(t, "rm -rf "+dir+"/state/before")
	out, err := ns.exec(env, clusterSh(t), "net-test-down")
	if err != nil {
		t.Fatalf("cluster.sh net-test-down: %v\n%s", err, out)
	}
	if !strings.Contains(out, "no record of the host") {
		t.Errorf("net-test-down without a record: got %q, want it to say it has no record", out)
	}
	after := ns.state(t)
	for _, c := range withParts.chains {
		if strings.Contains(c, guardChain) {
			continue
		}
		if !slices.Contains(after.chains, c) {
			t.Errorf("chain %q removed without a record of the host, want it kept", c)
		}
	}
	for _, gone := range []struct{ what, s string }{
		{"chains", guardChain}, {"addresses", nodeAddr}, {"routes", "blackhole " + podCIDR}, {"links", "cqrs0"},
	} {
		list := map[string][]string{"chains": after.chains, "addresses": after.addrs, "routes": after.routes, "links": after.links}[gone.what]
		if has(list, gone.s) {
			t.Errorf("%s: %q left, want the cluster's own removed", gone.what, gone.s)
		}
	}
}

// TestNetTestOnlyInOwnNamespace: net-test-up refuses to run in a network
// namespace that is not a named one of a test (here an unnamed one, so that a
// regression changes only that namespace) and changes nothing there.
func TestNetTestOnlyInOwnNamespace(t *testing.T) {
	requireHost(t)
	dir := t.TempDir()
	out, err := run([]string{"CLUSTER_DIR=" + dir}, "unshare", "--net", "bash", "-c",
		clusterSh(t)+" net-test-up; rc=$?; ip -o addr show dev lo; exit $rc")
	if err == nil {
		t.Fatalf("net-test-up outside a named namespace: exit 0, want a refusal\n%s", out)
	}
	if !strings.Contains(out, "named network namespace") || strings.Contains(out, "10.10.0.1") {
		t.Errorf("net-test-up outside a named namespace: got %q, want a refusal that changed nothing", out)
	}
}
