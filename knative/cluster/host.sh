# The machine as the local cluster finds it and leaves it (sourced by cluster.sh
# after lib.sh): the preflight, the record of the host's network taken before
# `up` changes anything, the network set-up, and the teardown that removes only
# what appeared after the record.
#
# kube-proxy, the kubelet and the CNI plugins name their iptables chains
# themselves (KUBE-*, CNI-*), so a name proves nothing: `up` notes every chain and
# rule (iptables and ip6tables, every table), link, address, route, network
# namespace and the sysctls the cluster's parts change, and `down` removes a
# chain, rule, link, address or route only when it is new since the record and
# of a kind the cluster makes. A chain that was there before survives, whatever
# its name; a sysctl goes back to the value noted.

BEFORE=$STATE/before

# Sysctls of the network namespace that the cluster's parts set: net_up
# (ip_forward, bridge-nf-call-iptables), the CNI bridge plugin (ip_forward),
# kube-proxy (route_localnet, for node ports on localhost).
NET_SYSCTLS="net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv4/conf/all/route_localnet net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables"
# Machine-wide ones the kubelet sets (its kernel tunables; protectKernelDefaults
# is off). Only a whole cluster records and restores these, never the network
# test, which runs beside whatever else the machine does.
KERNEL_SYSCTLS="vm/overcommit_memory vm/panic_on_oom kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes"

# Chains that kube-proxy (and the kubelet) make under fixed names, or under a
# prefix it owns: it rewrites or deletes such chains as it likes, so the cluster
# does not start where they are already. Any other KUBE-* chain is left alone.
KUBE_PROXY_CHAINS='KUBE-(SERVICES|EXTERNAL-SERVICES|NODEPORTS|POSTROUTING|MARK-MASQ|MARK-DROP|FORWARD|PROXY-FIREWALL|PROXY-CANARY|FIREWALL|KUBELET-CANARY|IPTABLES-HINT|NODE-PORT|LOAD-BALANCER|SOURCE-RANGES-FIREWALL|(SVC|SEP|SVL|EXT|FW|XLB)-[A-Z0-9]{16})'

# ---------------------------------------------------------------- preflight
# preflight: refuse to start where the cluster would meet another Kubernetes or
# a leftover of its own, naming everything it found.
preflight() {
  local found=() p n port
  [ ! -d "$STATE" ] && [ ! -d "$RUN" ] ||
    found+=("$WORK: the cluster is up or was not torn down (cluster.sh down)")
  # Another Kubernetes node on this machine: it would share iptables, cgroups and
  # ports with this one, and its kube-proxy would rewrite this one's chains.
  for n in kubelet kube-proxy k3s k3s-server k3s-agent kubelite k0s; do
    for p in $(pgrep -x "$n" || true); do found+=("another Kubernetes: $n (PID $p: $(cmdline "$p"))"); done
  done
  # A containerd on this cluster's own socket or state directory (a system
  # containerd, Debian's or Docker's, has its own and is no reason to stop).
  for p in $(pgrep -x containerd || true); do
    case " $(cmdline "$p") " in *"$WORK/"*) found+=("containerd on this cluster's paths (PID $p: $(cmdline "$p"))") ;; esac
  done
  grep -qF " $RUN/containerd/containerd.sock" /proc/net/unix 2>/dev/null &&
    found+=("a process listening on $RUN/containerd/containerd.sock")
  n=$(iptables_chains | grep -E " ($KUBE_PROXY_CHAINS)\$" | paste -sd, - || true)
  [ -z "$n" ] || found+=("kube-proxy's chains (family table chain) of another Kubernetes: ${n//,/, }")
  # What this cluster would take: its address, bridge, guard chain, routes, ports.
  ip -o addr show dev lo | has " $NODE_IP/" && found+=("$NODE_IP is on lo already")
  ip link show "$BRIDGE" >/dev/null 2>&1 && found+=("a link named $BRIDGE is there already")
  iptables_chains | awk -v g="$GUARD" '$3 == g {f = 1} END {exit !f}' && found+=("the chain $GUARD is there already")
  n=$(ip route show table all | awk -v p="$POD_CIDR" -v s="$SVC_CIDR" '!f && ($1 == p || $2 == p || $1 == s || $2 == s) {f = 1; print}')
  [ -z "$n" ] || found+=("a route to the cluster's addresses is there already ($n)")
  for port in "$REGISTRY_ADDR" "$ETCD_CLIENT" "$ETCD_PEER"; do
    ss -ltnH "( sport = :${port##*:} )" 2>/dev/null | has "${port%:*}:${port##*:}\|\*:${port##*:}\|0.0.0.0:${port##*:}" &&
      found+=("port $port is in use")
  done
  [ ${#found[@]} -eq 0 ] && return 0
  printf '[cluster] error: not starting beside what is on this machine:\n' >&2
  printf '  %s\n' "${found[@]}" >&2
  die "stop it, or remove it (cluster.sh down for this cluster's own), first"
}

cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | cut -c1-200; }

# ---------------------------------------------------------------- the record
# iptables_chains: "family table chain", one line per chain, every table.
iptables_chains() {
  local fam
  for fam in iptables ip6tables; do
    "$fam-save" 2>/dev/null | awk -v f="$fam" '/^\*/ {t = substr($1, 2)} /^:/ {print f, t, substr($1, 2)}'
  done
}

# iptables_rules: "family table -A CHAIN ...", one line per rule, every table.
iptables_rules() {
  local fam
  for fam in iptables ip6tables; do
    "$fam-save" 2>/dev/null | awk -v f="$fam" '/^\*/ {t = substr($1, 2)} /^-A / {print f, t, $0}'
  done
}

# host_state DIR [kernel]: the host's network as it is now, one file per kind;
# with "kernel", the machine-wide sysctls too.
host_state() {
  local d=$1 s
  mkdir -p "$d"
  iptables_chains >"$d/chains"
  iptables_rules >"$d/rules"
  ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' >"$d/links"
  ip -o addr show | awk '{print $2, $4}' >"$d/addrs"
  { ip route show table all; ip -6 route show table all; } 2>/dev/null >"$d/routes"
  ip netns list 2>/dev/null | awk '{print $1}' >"$d/netns"
  : >"$d/sysctls"
  for s in $NET_SYSCTLS ${2:+$KERNEL_SYSCTLS}; do
    [ -r "/proc/sys/$s" ] && echo "$s $(cat "/proc/sys/$s")" >>"$d/sysctls"
  done
  return 0
}

# note_host [kernel]: the record that `down` compares with, and when the machine
# booted.
note_host() {
  rm -rf "$BEFORE"
  host_state "$BEFORE" "${1:-}"
  boot_time >"$BEFORE/boot"
  outside_if >"$STATE/outside_if" || true
}

# boot_time: when the machine booted, in seconds since the epoch.
boot_time() { awk '$1 == "btime" {print $2}' /proc/stat; }

# rebooted: the machine booted again since the record (btime moves by a second
# or so with clock adjustments; a reboot moves it by much more).
rebooted() {
  local then now
  then=$(cat "$BEFORE/boot" 2>/dev/null) || return 1
  now=$(boot_time)
  [ -n "$then" ] && [ -n "$now" ] && [ $((now - then)) -gt 60 ]
}

# new_lines BEFORE NOW: the lines of NOW that BEFORE lacks, counting repeats (a
# rule added a second time is new too).
# (FILENAME, not NR == FNR: the record may be empty.)
new_lines() { awk 'FILENAME == ARGV[1] {c[$0]++; next} c[$0] > 0 {c[$0]--; next} {print}' "$1" "$2"; }

# ---------------------------------------------------------------- set-up
outside_if() { ip -o route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'; }

# guard: chains that drop anything of the cluster's leaving by the outside
# interface. In filter FORWARD (pods' traffic) and in mangle POSTROUTING (the
# node's own traffic: there the outgoing interface is the one the packet really
# takes, also after kube-proxy's DNAT has re-routed it; in filter OUTPUT a
# packet DNATed to a pod would still show the interface chosen before). kube-proxy
# puts its own jumps at the top of FORWARD, so this runs again after it starts.
# A pod's packet for a Service address that kube-proxy did not rewrite (a
# Service without endpoints) would leave by the outside interface: it is
# rejected as kube-proxy's own rule for such a Service rejects it (which comes
# after this chain), so that a client in a pod sees its connection refused, as on
# any cluster, and not a silence until its timeout.
guard() {
  local out table chain r
  out=$(cat "$STATE/outside_if")
  for table in filter mangle; do
    iptables -w -t "$table" -N "$GUARD" 2>/dev/null || iptables -w -t "$table" -F "$GUARD"
  done
  if [ -n "$out" ]; then
    iptables -w -A "$GUARD" -i "$BRIDGE" -d "$SVC_CIDR" -o "$out" -j REJECT --reject-with icmp-port-unreachable
    iptables -w -A "$GUARD" -i "$BRIDGE" -o "$out" -j DROP
    for r in "-s $POD_CIDR" "-d $POD_CIDR" "-d $SVC_CIDR" "-d $NODE_IP/32"; do
      # shellcheck disable=SC2086
      iptables -w -A "$GUARD" -o "$out" $r -j DROP
      # shellcheck disable=SC2086
      iptables -w -t mangle -A "$GUARD" -o "$out" $r -j DROP
    done
  fi
  for chain in "filter FORWARD" "mangle POSTROUTING"; do
    set -- $chain
    while iptables -w -t "$1" -D "$2" -j "$GUARD" 2>/dev/null; do :; done
    iptables -w -t "$1" -I "$2" 1 -j "$GUARD"
  done
}

# net_up: the node address on lo, the guard, forwarding, and a blackhole for pod
# addresses no pod holds (never the default route). note_host runs before it.
net_up() {
  ip addr add "$NODE_IP/32" dev lo
  guard
  echo 1 >/proc/sys/net/ipv4/ip_forward
  if [ -f /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables; fi
  ip route add blackhole "$POD_CIDR"
}

# ---------------------------------------------------------------- teardown
# cluster_chain NAME: a name the cluster's parts give a chain.
cluster_chain() { case "$1" in KUBE-* | CNI-* | "$GUARD") return 0 ;; esac; return 1; }

# leftovers DIR: compare the host now (written to DIR) with the record and
# write what the cluster added and still holds:
#   DIR/chains-left  "family table chain"   new chains of the cluster's names
#   DIR/rules-left   "family table -A ..."  new rules in chains that stay, jumping
#                                           to one of those
#   DIR/links-left, DIR/addrs-left, DIR/routes-left, DIR/netns-left,
#   DIR/sysctls-left "path value-noted"     sysctls not back at the noted value
# and what was there before and is gone: DIR/chains-gone, DIR/rules-gone.
leftovers() {
  local d=$1 l
  host_state "$d" "$(grep -q '^vm/' "$BEFORE/sysctls" && echo kernel)"
  new_lines "$BEFORE/chains" "$d/chains" | while read -r fam table chain; do
    cluster_chain "$chain" && echo "$fam $table $chain"
  done >"$d/chains-left"
  new_lines "$BEFORE/rules" "$d/rules" | awk 'FILENAME == ARGV[1] {gone[$1 " " $2 " " $3]; next}
    ($1 " " $2 " " $4) in gone {next}
    {for (i = 5; i < NF; i++) if (($i == "-j" || $i == "-g") && (($1 " " $2 " " $(i + 1)) in gone)) {print; next}}' \
    "$d/chains-left" - >"$d/rules-left"
  new_lines "$BEFORE/links" "$d/links" | while read -r l; do
    { [ "$l" = "$BRIDGE" ] || ip -o link show dev "$l" 2>/dev/null | has " master $BRIDGE "; } && echo "$l"
  done >"$d/links-left"
  new_lines "$BEFORE/addrs" "$d/addrs" | awk -v a="$NODE_IP/32" '$1 == "lo" && $2 == a' >"$d/addrs-left"
  new_lines "$BEFORE/routes" "$d/routes" | awk -v c="$POD_CIDR" '$1 == "blackhole" && $2 == c' >"$d/routes-left"
  new_lines "$BEFORE/netns" "$d/netns" | while read -r l; do
    case "$l" in cni-*) ip netns exec "$l" ip -o addr 2>/dev/null | has " ${POD_SUBNET%.0/24}\." && echo "$l" ;; esac
  done >"$d/netns-left"
  awk 'FILENAME == ARGV[1] {now[$1] = $2; next} ($1 in now) && now[$1] != $2' "$d/sysctls" "$BEFORE/sysctls" >"$d/sysctls-left"
  new_lines "$d/chains" "$BEFORE/chains" >"$d/chains-gone"
  new_lines "$d/rules" "$BEFORE/rules" >"$d/rules-gone"
}

# net_down: remove what leftovers finds, in an order that lets each step work:
# the jumps into the cluster's chains, then those chains (flushed, then
# deleted), the pods' namespaces and links, the address, the route; then the
# sysctls go back.
net_down() {
  local d=$STATE/now fam table rule chain l
  if [ ! -f "$BEFORE/chains" ]; then
    net_down_unrecorded
    return 0
  fi
  rm -rf "$d"
  leftovers "$d"
  while read -r fam table rule; do
    eval "$fam -w -t $table -D ${rule#-A }" 2>/dev/null || true
  done <"$d/rules-left"
  while read -r fam table chain; do $fam -w -t "$table" -F "$chain" 2>/dev/null || true; done <"$d/chains-left"
  while read -r fam table chain; do $fam -w -t "$table" -X "$chain" 2>/dev/null || true; done <"$d/chains-left"
  while read -r l; do ip netns del "$l" 2>/dev/null || true; done <"$d/netns-left"
  # The veths first, then the bridge they hang on. (Often there is no veth left:
  # a pod's veth goes with its namespace. grep then selects nothing and fails,
  # which under pipefail would end the teardown here.)
  { grep -vx "$BRIDGE" "$d/links-left" || true; } | while read -r l; do ip link del "$l" 2>/dev/null || true; done
  grep -qx "$BRIDGE" "$d/links-left" && { ip link del "$BRIDGE" 2>/dev/null || true; }
  [ -s "$d/addrs-left" ] && { ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true; }
  [ -s "$d/routes-left" ] && { ip route del blackhole "$POD_CIDR" 2>/dev/null || true; }
  while read -r s v; do echo "$v" >"/proc/sys/$s" 2>/dev/null || true; done <"$d/sysctls-left"
  rm -rf "$d"
  return 0
}

# Without a record (it was deleted, or `up` stopped before taking it) only the
# cluster's own names go: the guard chains and the jumps to them, the bridge,
# the node address, the blackhole route. KUBE-* and CNI-* chains stay: nothing
# says whose they are.
net_down_unrecorded() {
  local fam table rule
  log "no record of the host before up ($BEFORE): removing only the guard chains, $BRIDGE, $NODE_IP on lo and the blackhole route; KUBE-* and CNI-* chains are left alone"
  iptables_rules | awk -v g="$GUARD" '{for (i = 5; i < NF; i++) if ($i == "-j" && $(i + 1) == g) {print; next}}' |
    while read -r fam table rule; do eval "$fam -w -t $table -D ${rule#-A }" 2>/dev/null || true; done
  iptables_chains | awk -v g="$GUARD" '$3 == g' | while read -r fam table chain; do
    $fam -w -t "$table" -F "$chain" 2>/dev/null || true
    $fam -w -t "$table" -X "$chain" 2>/dev/null || true
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && { ip link del "$BRIDGE" || true; }
  ip -o addr show dev lo | has " $NODE_IP/" && { ip addr del "$NODE_IP/32" dev lo || true; }
  ip route show type blackhole | has "^blackhole $POD_CIDR" && { ip route del blackhole "$POD_CIDR" || true; }
  return 0
}

# net_check: exit 1, saying what, if the cluster's network changes are still
# there or something noted before `up` is gone.
net_check() {
  local d bad=0 f what
  if [ ! -f "$BEFORE/chains" ]; then
    iptables_chains | has " $GUARD\$" && { echo "left: chain $GUARD"; bad=1; }
    ip link show "$BRIDGE" >/dev/null 2>&1 && { echo "left: bridge $BRIDGE"; bad=1; }
    ip -o addr show dev lo | has " $NODE_IP/" && { echo "left: $NODE_IP on lo"; bad=1; }
    ip route show type blackhole | has "^blackhole $POD_CIDR" && { echo "left: blackhole route"; bad=1; }
    return $bad
  fi
  d=$(mktemp -d)
  leftovers "$d"
  for f in chains-left:"left: chains" rules-left:"left: rules" links-left:"left: links" addrs-left:"left: addresses" \
    routes-left:"left: routes" netns-left:"left: network namespaces" sysctls-left:"not restored: sysctls (path, value before)" \
    chains-gone:"gone since up: chains" rules-gone:"gone since up: rules"; do
    what=${f#*:}
    f=$d/${f%%:*}
    [ -s "$f" ] || continue
    # A reboot takes every chain and rule that nothing makes again at boot: not
    # the teardown's doing, so said but not counted.
    if [ "${f##*-}" = gone ] && rebooted; then
      echo "$what (the machine restarted since up, which removed them; not counted):"
      sed -n '1,20s/^/  /p' "$f"
      continue
    fi
    echo "$what:"
    sed -n '1,20s/^/  /p' "$f"
    bad=1
  done
  rm -rf "$d"
  return $bad
}

# ---------------------------------------------------------------- network test
# The network set-up and teardown alone, for the tests, inside a network
# namespace of the test's own (never the machine's: in_own_netns):
#   ip netns exec NS cluster.sh net-test-up     record, then net_up
#   ip netns exec NS cluster.sh net-test-down   net_down, then net_check
in_own_netns() {
  [ -n "$(ip netns identify 2>/dev/null)" ] ||
    die "the network test runs only inside a named network namespace of its own (ip netns exec NS $0 ...), never on the machine's"
}

net_test_up() {
  need_root
  in_own_netns
  [ ! -d "$STATE" ] || die "$STATE is there: net-test-down first"
  mkdir -p "$STATE"
  note_host
  net_up
}

net_test_down() {
  need_root
  in_own_netns
  net_down
  net_check || die "the network teardown left something (above)"
  rm -rf "$STATE"
}

# ---------------------------------------------------------------- e2e's own witness
# `make e2e` on a local cluster of its own puts things of another owner on the
# machine before `up`: a chain with a KUBE-... name that is none of kube-proxy's,
# with a rule and a jump to it from FORWARD, a CNI-... chain with a rule, and a
# bridge. After `down` they must all still be there; then it removes them. The
# rules match only a documentation range (192.0.2.0/24), which no traffic here
# uses.
FOREIGN_KUBE=KUBE-CQRS-E2E-FOREIGN
FOREIGN_CNI=CNI-CQRS-E2E-FOREIGN
FOREIGN_BRIDGE=cqrs-e2e-br0

# foreign_rules: "table rule", as iptables-save prints the rule.
foreign_rules() {
  cat <<RULES
filter -A $FOREIGN_KUBE -s 192.0.2.0/24 -m comment --comment "another owner" -j RETURN
filter -A FORWARD -s 192.0.2.0/24 -j $FOREIGN_KUBE
nat -A $FOREIGN_CNI -d 192.0.2.0/24 -j RETURN
RULES
}

# WITNESS marks that they are on the machine, so that a `cluster.sh down` after
# an interrupted make e2e (killed, or the machine restarted) removes them too.
WITNESS=$WORK/e2e-witness

foreign_make() {
  local table rule
  foreign_remove
  mkdir -p "$WORK" && : >"$WITNESS"
  iptables -w -N "$FOREIGN_KUBE"
  iptables -w -t nat -N "$FOREIGN_CNI"
  foreign_rules | while read -r table rule; do eval "iptables -w -t $table $rule"; done
  ip link add "$FOREIGN_BRIDGE" type bridge
  log "made on the machine before up, to be found again after down: chains $FOREIGN_KUBE (filter, with a jump from FORWARD) and $FOREIGN_CNI (nat), bridge $FOREIGN_BRIDGE"
}

# foreign_check: exit 1, naming it, if any of them is gone.
foreign_check() {
  local gone=() table rule chains rules
  chains=$(iptables_chains)
  rules=$(iptables_rules)
  grep -qx "iptables filter $FOREIGN_KUBE" <<<"$chains" || gone+=("chain $FOREIGN_KUBE")
  grep -qx "iptables nat $FOREIGN_CNI" <<<"$chains" || gone+=("chain $FOREIGN_CNI")
  while read -r table rule; do
    grep -qxF "iptables $table $rule" <<<"$rules" || gone+=("rule $table $rule")
  done < <(foreign_rules)
  ip link show "$FOREIGN_BRIDGE" >/dev/null 2>&1 || gone+=("bridge $FOREIGN_BRIDGE")
  if [ ${#gone[@]} -gt 0 ]; then
    printf '[cluster] error: the teardown removed what was not the cluster'"'"'s: %s\n' "${gone[*]}" >&2
    return 1
  fi
  log "after down, the chains $FOREIGN_KUBE and $FOREIGN_CNI with their rules and the bridge $FOREIGN_BRIDGE are still there"
}

foreign_remove() {
  local table rule
  foreign_rules | while read -r table rule; do eval "iptables -w -t $table -D ${rule#-A }" 2>/dev/null || true; done
  iptables -w -X "$FOREIGN_KUBE" 2>/dev/null || true
  iptables -w -t nat -X "$FOREIGN_CNI" 2>/dev/null || true
  ip link del "$FOREIGN_BRIDGE" 2>/dev/null || true
  rm -f "$WITNESS"
}

# down_command: `cluster.sh down`: the teardown, and then what an interrupted
# make e2e left of its witness.
down_command() {
  local rc=0
  cluster_down || rc=$?
  if [ -f "$WITNESS" ]; then
    log "removing what an interrupted make e2e made as another owner's: chains $FOREIGN_KUBE, $FOREIGN_CNI, bridge $FOREIGN_BRIDGE"
    foreign_remove
  fi
  return $rc
}
