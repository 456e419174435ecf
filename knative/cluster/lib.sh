# Functions of cluster.sh (sourced; HERE, REPO and the versions are set).

# ---------------------------------------------------------------- settings
WORK=${CLUSTER_DIR:-$REPO/.cluster}
CACHE=$WORK/cache
RUN=$WORK/run
STATE=$WORK/state        # what `up` changed on the machine, for `down`
NODE_IP=10.10.0.1        # the node's address, on lo only
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24 # the one node's pods
SVC_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
BRIDGE=cqrs0
GUARD=CQRS-CLUSTER-GUARD # iptables chain that keeps the cluster's traffic inside
REGISTRY=localhost:5000
REGISTRY_ADDR=127.0.0.1:5000
ETCD_CLIENT=127.0.0.1:12379
ETCD_PEER=127.0.0.1:12380
INGRESS_HTTP=$NODE_IP:80  # Traefik, public Knative routes (Host header)
BASE_IMAGE=$REGISTRY/cqrs-cluster/base:static
REDIS_IMAGE=$REGISTRY/cqrs-cluster/redis:standin
CURL_IMAGE=$REGISTRY/cqrs-cluster/curl:standin
KUBECONFIG_FILE=$RUN/pki/admin.kubeconfig
BIN=$RUN/bin             # links to the cached binaries, for PATH

export GOFLAGS=${GOFLAGS:--buildvcs=false}
# knative.dev/client-pkg (a dependency of kn) is missing from the checksum
# database; its hash is in mods/kn/go.sum all the same.
export GONOSUMDB=knative.dev/client-pkg

T0=$(date +%s)

# ---------------------------------------------------------------- output
log() { printf '[cluster %4ds] %s\n' "$(($(date +%s) - T0))" "$*"; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

# stage NAME CMD...: run one stage, print its duration.
stage() {
  local name=$1 s
  shift
  s=$(date +%s)
  log "$name ..."
  "$@"
  log "$name done in $(($(date +%s) - s))s"
}

# wait_for DESC SECONDS CMD...: run CMD every second until it succeeds, at most
# SECONDS times.
wait_for() {
  local desc=$1 n=$2 i
  shift 2
  for ((i = 1; i <= n; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "$desc: not ready after ${n}s"
}

render() { # FILE: the file with @VAR@ placeholders filled in
  sed -e "s|@RUN@|$RUN|g" -e "s|@NODE_IP@|$NODE_IP|g" -e "s|@POD_CIDR@|$POD_CIDR|g" \
    -e "s|@POD_SUBNET@|$POD_SUBNET|g" -e "s|@DNS_IP@|$DNS_IP|g" -e "s|@BRIDGE@|$BRIDGE|g" \
    -e "s|@REDIS_IMAGE@|$REDIS_IMAGE|g" "$1"
}

# has PATTERN...: grep for a pipeline's end; it reads all of its input (grep -q
# stops at the first match, and under pipefail the writer's SIGPIPE would then
# turn a match into a failure).
has() { grep "$@" >/dev/null; }

need_root() { [ "$(id -u)" = 0 ] || die "the local cluster needs root (network namespaces, iptables, mounts)"; }

kc() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ---------------------------------------------------------------- build
# key FILES...: a short hash of the files and of the Go toolchain, naming a cache
# entry; when a go.mod, go.sum or source changes, the entry is new.
key() { { cat "$@"; go version; } | sha256sum | cut -c1-12; }

install_debian() {
  local missing=() p
  for p in $DEBIAN_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | has 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then log "Debian packages present"; return; fi
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# gobuild NAME MODDIR LDFLAGS PKG...: build the packages of one module under mods/
# into $CACHE/bin/NAME-<key>/, unless that directory is complete already.
gobuild() {
  local name=$1 mod=$HERE/mods/$2 ldflags=$3 k out
  shift 3
  k=$(key "$mod"/go.mod "$mod"/go.sum $(find "$mod" -name '*.go' | sort))
  out=$CACHE/bin/$name-$k
  if [ -f "$out/.done" ]; then log "$name: cached ($out)"; echo "$out" >"$CACHE/bin/$name.current"; return; fi
  log "$name: building (cache key $k)"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/" "$@")
  touch "$out/.done"
  echo "$out" >"$CACHE/bin/$name.current"
}

# mod_dir MODDIR MODULE[@VERSION]: the directory of MODULE in the module cache (at
# the version MODDIR's go.mod pins, unless one is given), downloaded first. `go
# list -m -f '{{.Dir}}'` answers an empty string for a module that is not in the
# cache yet, which is every module on a machine with an empty GOMODCACHE.
mod_dir() {
  local out d
  out=$(cd "$1" && go mod download -json "$2" 2>&1) || true
  d=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$out")
  [ -n "$d" ] && [ -d "$d" ] ||
    die "go mod download $2 (in ${1#"$REPO"/}): $(sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' <<<"$out")"
  echo "$d"
}

# Traefik's module zip has no web UI files for its go:embed; it is built from a
# copy of the module with an empty page in their place.
build_traefik() {
  local out=$CACHE/bin/traefik-$TRAEFIK_VERSION src dir
  if [ -f "$out/.done" ]; then log "traefik: cached ($out)"; echo "$out" >"$CACHE/bin/traefik.current"; return; fi
  dir=$(mod_dir "$HERE/mods/imgtool" "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")
  src=$CACHE/src/traefik-$TRAEFIK_VERSION
  rm -rf "$src" && mkdir -p "$CACHE/src" && cp -r "$dir" "$src" && chmod -R u+w "$src"
  mkdir -p "$src/webui/static"
  [ -f "$src/webui/static/index.html" ] || echo '<!doctype html><title>traefik</title>' >"$src/webui/static/index.html"
  log "traefik: building $TRAEFIK_VERSION"
  rm -rf "$out" && mkdir -p "$out"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" -o "$out/traefik" ./cmd/traefik)
  touch "$out/.done"
  echo "$out" >"$CACHE/bin/traefik.current"
}

build_binaries() {
  mkdir -p "$CACHE/bin"
  local kv="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=30 -X k8s.io/component-base/version.gitTreeState=clean"
  stage "build imgtool" gobuild imgtool imgtool "" ./cmd/mkimage ./cmd/pause
  stage "build registry" gobuild registry registry "" .
  stage "build ko" gobuild ko ko "-X github.com/google/ko/pkg/commands.Version=$KO_VERSION" github.com/google/ko
  stage "build kubernetes" gobuild k8s k8s "$kv" k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
  stage "build coredns" gobuild coredns coredns "" .
  stage "build traefik" build_traefik
  stage "build kn" build_kn
  stage "build func (make func-cli)" build_func
}

build_kn() { gobuild kn kn "-X knative.dev/client/pkg/commands/version.Version=$KN_VERSION" knative.dev/client/cmd/kn; }

# knative/func's CLI comes from the project's own tool module (knative/func,
# make func-cli: bin/func and bin/kn-func, rebuilt only when its go.mod changes).
build_func() { (cd "$REPO" && make -s func-cli GO=go >/dev/null); test -x "$REPO/bin/func"; }

# link_bins: $RUN/bin holds every tool under its usual name (kn-func is how kn
# finds its func plugin).
link_bins() {
  local n d f
  rm -rf "$BIN" && mkdir -p "$BIN"
  for n in imgtool registry ko k8s coredns traefik kn; do
    d=$(cat "$CACHE/bin/$n.current" 2>/dev/null) || die "$n is not built: run cluster.sh build"
    for f in "$d"/*; do ln -sf "$f" "$BIN/"; done
  done
  ln -sf "$REPO/bin/func" "$BIN/func"
  ln -sf "$REPO/bin/func" "$BIN/kn-func"
}

build_all() {
  stage "Debian packages" install_debian
  build_binaries
  log "build complete"
}

# ---------------------------------------------------------------- processes
# start NAME CMD...: start a process in its own session, log to logs/NAME.log,
# remember its PID and when it started (a PID alone names another process once
# this one is gone, after a restart say, and the teardown must never signal that).
start() {
  local name=$1 p
  shift
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  p=$!
  echo "$name $p $(started_at "$p")" >>"$RUN/pids"
}

# started_at PID: when the process started, in clock ticks since boot (field 22
# of /proc/PID/stat); "-" when there is no such process.
started_at() {
  local line f
  read -r line 2>/dev/null <"/proc/$1/stat" || { echo -; return 0; }
  read -r -a f <<<"${line##*) }"
  echo "${f[19]}"
}

# ours PID [START]: PID is still the process the cluster started: the start time
# noted, or where none was noted, a command line naming the cluster's directory
# (every process of the cluster has one).
ours() {
  [[ $1 =~ ^[1-9][0-9]*$ ]] && [ -d "/proc/$1" ] || return 1
  if [ -n "${2:-}" ] && [ "$2" != - ]; then
    [ "$(started_at "$1")" = "$2" ]
    return
  fi
  has -aF -- "$WORK/" <"/proc/$1/cmdline" 2>/dev/null
}

# pid_of NAME: the PID of the cluster's process NAME, if it still runs.
pid_of() {
  local p s
  read -r p s < <(awk -v n="$1" '$1 == n {p = $2; s = $3} END {print p, s}' "$RUN/pids" 2>/dev/null) || return 0
  if [ -n "$p" ] && ours "$p" "$s"; then echo "$p"; fi
  return 0
}

# live_pids: the PIDs of the processes the cluster started that still run, the
# last started first.
live_pids() {
  local n p s
  tac "$RUN/pids" 2>/dev/null | while read -r n p s; do
    if ours "$p" "$s"; then echo "$p"; fi
  done
  return 0
}

# gone_names: the names of the cluster's processes that no longer run.
gone_names() {
  local n p s
  while read -r n p s; do
    ours "$p" "$s" || echo "$n"
  done <"$RUN/pids" | paste -sd' ' -
}

alive() { [ -n "$(pid_of "$1")" ]; }

# ---------------------------------------------------------------- PKI
pki() {
  local P=$RUN/pki
  mkdir -p "$P"
  (
    cd "$P"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 7 -subj "/CN=cqrs-cluster-ca" 2>/dev/null
    cert() { # NAME CN [ORG] [SANS]
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
      {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=serverAuth,clientAuth"
        [ -n "${4:-}" ] && echo "subjectAltName=$4"
      } >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 7 -extfile "$1.ext" 2>/dev/null
    }
    cert apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:${SVC_CIDR%.0/16}.1,IP:$NODE_IP"
    cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
    cert admin cluster-admin system:masters
    cert controller-manager system:kube-controller-manager
    cert scheduler system:kube-scheduler
    cert proxy system:kube-proxy
    cert kubelet system:node:node1 system:nodes "DNS:node1,IP:$NODE_IP,IP:127.0.0.1"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    local n
    for n in admin controller-manager scheduler proxy kubelet; do
      cat >"$n.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: cqrs-cluster
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $n
  user:
    client-certificate-data: $(base64 -w0 "$n.crt")
    client-key-data: $(base64 -w0 "$n.key")
contexts:
- name: cqrs-cluster
  context: {cluster: cqrs-cluster, user: $n}
current-context: cqrs-cluster
EOF
    done
  )
}

# ---------------------------------------------------------------- parts
start_etcd() {
  start etcd etcd --name node1 --data-dir "$RUN/etcd" \
    --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
    --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
    --initial-cluster "node1=http://$ETCD_PEER" --log-level warn
  wait_for etcd 30 curl -sf "http://$ETCD_CLIENT/health"
}

start_registry() {
  mkdir -p "$CACHE/registry"
  cat >"$RUN/conf/registry.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage:
  filesystem: {rootdirectory: $CACHE/registry}
  delete: {enabled: false}
http:
  addr: $REGISTRY_ADDR
EOF
  start registry env OTEL_TRACES_EXPORTER=none "$BIN/registry" serve "$RUN/conf/registry.yml"
  wait_for registry 30 curl -sf "http://$REGISTRY_ADDR/v2/"
}

# Images made here: the base for ko, the sandbox (pause), Redis from Debian's
# redis-server and redis-cli and the libraries they link. Pushing an unchanged image is a no-op.
push_images() {
  "$BIN/mkimage" base "$BASE_IMAGE" >/dev/null
  "$BIN/mkimage" pause "$REGISTRY/pause:latest" "$BIN/pause" >/dev/null
  local redis libs
  redis=$(readlink -f /usr/bin/redis-server)
  [ -x "$redis" ] || { log "installing redis-server for the Redis image"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; redis=$(readlink -f /usr/bin/redis-server); }
  # redis-cli beside it: the Redis Cluster stand-in (helm-standin.sh) makes its
  # nodes a cluster with it.
  libs=$({ libs_of "$redis"; libs_of /usr/bin/redis-cli; } | sort -u)
  # shellcheck disable=SC2086
  "$BIN/mkimage" files "$REDIS_IMAGE" /usr/bin/redis-server /usr/bin/redis-server /usr/bin/redis-cli $libs >/dev/null
  # curl, for the documentation's `kubectl run ... --image=curlimages/curl` lines.
  libs=$(libs_of /usr/bin/curl)
  # shellcheck disable=SC2086
  "$BIN/mkimage" files "$CURL_IMAGE" /usr/bin/curl /usr/bin/curl $libs >/dev/null
}

# libs_of BIN: the shared libraries BIN loads, the dynamic loader included.
libs_of() { ldd "$1" | awk '/=>/ {print $3} /^[[:space:]]*\/lib/ {print $1}' | sort -u; }

start_containerd() {
  mkdir -p "$RUN/containerd/certs.d/localhost:5000" "$RUN/cni/conf"
  cat >"$RUN/containerd/certs.d/localhost:5000/hosts.toml" <<EOF
server = "http://$REGISTRY_ADDR"
[host."http://$REGISTRY_ADDR"]
  capabilities = ["pull", "resolve"]
EOF
  render "$HERE/conf/containerd.toml" >"$RUN/conf/containerd.toml"
  render "$HERE/conf/cni-bridge.conflist" >"$RUN/cni/conf/10-cqrs-cluster.conflist"
  start containerd containerd --config "$RUN/conf/containerd.toml"
  wait_for containerd 30 test -S "$RUN/containerd/containerd.sock"
}

start_control_plane() {
  local P=$RUN/pki
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://$ETCD_CLIENT" \
    --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port=6443 \
    --service-cluster-ip-range="$SVC_CIDR" --client-ca-file="$P/ca.crt" \
    --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
    --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$P/ca.crt" --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --profiling=false --event-ttl=15m
  wait_for kube-apiserver 90 kc get --raw /readyz
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$P/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$P/controller-manager.kubeconfig" --authorization-kubeconfig="$P/controller-manager.kubeconfig" \
    --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
    --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
    --use-service-account-credentials=true --allocate-node-cidrs=true --cluster-cidr="$POD_CIDR" \
    --node-cidr-mask-size=24 --service-cluster-ip-range="$SVC_CIDR" --leader-elect=false \
    --bind-address=127.0.0.1 --profiling=false
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$P/scheduler.kubeconfig" \
    --authentication-kubeconfig="$P/scheduler.kubeconfig" --authorization-kubeconfig="$P/scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --profiling=false
}

node_ready() { kc get node node1 -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | has -x True; }

start_node() {
  render "$HERE/conf/kubelet.yaml" >"$RUN/conf/kubelet.yaml"
  render "$HERE/conf/kube-proxy.yaml" >"$RUN/conf/kube-proxy.yaml"
  mkdir -p "$RUN/kubelet"
  start kubelet "$BIN/kubelet" --config="$RUN/conf/kubelet.yaml" --kubeconfig="$RUN/pki/kubelet.kubeconfig" \
    --node-ip="$NODE_IP" --hostname-override=node1 --root-dir="$RUN/kubelet" --cert-dir="$RUN/kubelet/pki" -v=1
  start kube-proxy "$BIN/kube-proxy" --config="$RUN/conf/kube-proxy.yaml"
  wait_for "node Ready" 120 node_ready
  # kube-proxy's chains are in place once it has synced once; the guard goes
  # above them.
  wait_for kube-proxy 60 iptables -w -n -L KUBE-SERVICES
  guard
}

start_dns() {
  render "$HERE/conf/Corefile" >"$RUN/conf/Corefile"
  start coredns "$BIN/coredns" -conf "$RUN/conf/Corefile"
  render "$HERE/manifests/kube-dns.yaml" | kc apply -f - >/dev/null
  wait_for coredns 30 curl -sf http://127.0.0.1:18182/ready
}

# Knative's release YAML, resolved by ko against images built into the local
# registry. Cached by the Knative module's go.mod/go.sum and the base image: a
# later run reuses the YAML, whose images are still in the registry's storage.
KNATIVE_MOD=$HERE/mods/knative

# Lower the CPU each Knative component requests: the node has two cores, which
# Knative's defaults (about 1.4 cores) would nearly fill before any function runs.
lower_requests() {
  awk '
    /^[ ]*requests:[ ]*$/ { match($0, /^ */); ind = RLENGTH; inreq = 1; print; next }
    inreq { match($0, /^ */); if (RLENGTH <= ind) inreq = 0; else if ($1 == "cpu:") sub(/cpu: .*/, "cpu: 10m") }
    { print }'
}

resolve_knative() {
  local k out serving eventing networking caching
  k=$(key "$KNATIVE_MOD/go.mod" "$KNATIVE_MOD/go.sum" <(echo "$BASE_IMAGE"; "$BIN/ko" version 2>/dev/null; declare -f resolve_knative lower_requests))
  out=$CACHE/knative-$k
  if [ -f "$out/.done" ] && images_present "$out"/*.yaml; then log "Knative YAML: cached ($out)"; KNATIVE_YAML=$out; return; fi
  serving=$(mod_dir "$KNATIVE_MOD" knative.dev/serving)
  eventing=$(mod_dir "$KNATIVE_MOD" knative.dev/eventing)
  networking=$(mod_dir "$KNATIVE_MOD" knative.dev/networking)
  caching=$(mod_dir "$KNATIVE_MOD" knative.dev/caching)
  rm -rf "$out" && mkdir -p "$out"
  local ko_env=(env KO_DOCKER_REPO="$REGISTRY/knative" KO_DEFAULTBASEIMAGE="$BASE_IMAGE" KO_DEFAULTPLATFORMS=linux/amd64 KOCACHE="$CACHE/ko" GOFLAGS="$GOFLAGS")
  log "Knative Serving: ko resolve (builds its images)"
  (cd "$KNATIVE_MOD" && "${ko_env[@]}" "$BIN/ko" resolve --preserve-import-paths \
    -f "$networking/config/ingress.yaml" -f "$networking/config/certificate.yaml" \
    -f "$networking/config/serverlessservice.yaml" -f "$networking/config/domain-claim.yaml" \
    -f "$caching/config/image.yaml" -R -f "$serving/config/core" \
    -f "$networking/config/config-network.yaml") | lower_requests >"$out/serving.yaml"
  log "Knative Eventing: ko resolve (builds its images)"
  (cd "$KNATIVE_MOD" && "${ko_env[@]}" "$BIN/ko" resolve --preserve-import-paths \
    -R -f "$eventing/config/core" -R -f "$eventing/config/channels/in-memory-channel" \
    -R -f "$eventing/config/brokers/mt-channel-broker") | lower_requests >"$out/eventing.yaml"
  touch "$out/.done"
  KNATIVE_YAML=$out
}

# images_present YAML...: every localhost:5000 image the YAML names is in the
# registry.
images_present() {
  local ref repo digest
  for ref in $(grep -ho "$REGISTRY/[^\"' ]*@sha256:[0-9a-f]*" "$@" | sort -u); do
    repo=${ref#"$REGISTRY/"}
    digest=${repo#*@}
    repo=${repo%@*}
    curl -sf -o /dev/null -I -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
      "http://$REGISTRY_ADDR/v2/$repo/manifests/$digest" || return 1
  done
}

# apply_until FILE SECONDS: apply until it succeeds (CRDs must be established and
# webhooks up before the rest of a release applies).
apply_until() {
  local f=$1 n=$2 i
  for ((i = 1; i <= n; i += 5)); do
    if kc apply -f "$f" >"$RUN/logs/apply.log" 2>&1; then return 0; fi
    sleep 5
  done
  cat "$RUN/logs/apply.log" >&2
  die "apply $f failed for ${n}s"
}

deployments_available() { kc wait -n "$1" deploy --all --for=condition=Available --timeout=5s; }

start_serving() {
  apply_until "$KNATIVE_YAML/serving.yaml" 180
  # Traefik's Knative provider is the ingress; the routes' domain is
  # example.com (reached with a Host header, or a resolver rule in a browser).
  # The example-checksum annotation goes, or the webhook refuses the change.
  kc -n knative-serving patch configmap config-network --type merge \
    -p '{"metadata":{"annotations":{"knative.dev/example-checksum":null}},"data":{"ingress-class":"traefik.ingress.networking.knative.dev"}}' >/dev/null
  kc -n knative-serving patch configmap config-domain --type merge \
    -p '{"metadata":{"annotations":{"knative.dev/example-checksum":null}},"data":{"example.com":""}}' >/dev/null
  # Short autoscaler windows so that the tests see scale to zero within
  # seconds: 10 s of no traffic, then 10 s of grace (defaults 60 s and 30 s).
  kc -n knative-serving patch configmap config-autoscaler --type merge \
    -p '{"metadata":{"annotations":{"knative.dev/example-checksum":null}},"data":{"stable-window":"10s","scale-to-zero-grace-period":"10s"}}' >/dev/null
  render "$HERE/manifests/traefik.yaml" | kc apply -f - >/dev/null
  render "$HERE/conf/traefik.yaml" >"$RUN/conf/traefik.yaml"
  start traefik env KUBECONFIG="$KUBECONFIG_FILE" "$BIN/traefik" --configfile="$RUN/conf/traefik.yaml"
  wait_for "knative-serving deployments" 300 deployments_available knative-serving
  wait_for traefik 30 curl -s -o /dev/null "http://$INGRESS_HTTP/"
}

start_eventing() {
  apply_until "$KNATIVE_YAML/eventing.yaml" 180
  wait_for "knative-eventing deployments" 300 deployments_available knative-eventing
}

write_env() {
  cat >"$RUN/env.sh" <<EOF
# The local cluster's environment: . $RUN/env.sh
export KUBECONFIG=$KUBECONFIG_FILE
export PATH=$BIN:\$PATH
export KO_DOCKER_REPO=$REGISTRY
export KO_DEFAULTBASEIMAGE=$BASE_IMAGE
export KO_DEFAULTPLATFORMS=linux/amd64
export CQRS_E2E_INGRESS=$INGRESS_HTTP
export CQRS_E2E_LOCAL_CLUSTER=1
export CQRS_E2E_HELM=$HERE/helm-standin.sh
# The stand-in's own defaults name .cluster/run in the repository: with CLUSTER_DIR
# elsewhere, the Redis master's hostPath must come from here.
export CLUSTER_RUN=$RUN
export CQRS_REDIS_IMAGE=$REDIS_IMAGE
export CQRS_E2E_CURL_IMAGE=$CURL_IMAGE
EOF
}

cluster_up() {
  need_root
  [ ! -f "$RUN/pids" ] || die "the cluster is up already (or was not torn down): run cluster.sh down"
  local t=$(date +%s)
  build_all
  preflight
  # The record of the host comes first: `down` removes only what appeared after it.
  mkdir -p "$STATE"
  stage "record of the host (iptables, links, addresses, routes, sysctls)" note_host kernel
  ls -d /sys/fs/cgroup/*/kubepods >"$STATE/cgroups_before" 2>/dev/null || true
  mkdir -p "$RUN/logs" "$RUN/conf" "$RUN/volumes/redis-master"
  chown 1001:1001 "$RUN/volumes/redis-master"
  : >"$RUN/pids"
  # An empty resolv.conf for the pods: they know the cluster DNS and nothing beyond.
  : >"$RUN/conf/resolv.conf"
  link_bins
  stage "network (address on lo, guard chain)" net_up
  stage "etcd" start_etcd
  stage "registry" start_registry
  stage "images (base, pause, Redis)" push_images
  stage "containerd" start_containerd
  stage "certificates" pki
  stage "control plane" start_control_plane
  stage "node (kubelet, kube-proxy)" start_node
  stage "cluster DNS" start_dns
  stage "Knative YAML" resolve_knative
  stage "Knative Serving and Traefik" start_serving
  stage "Knative Eventing" start_eventing
  write_env
  log "cluster up in $(($(date +%s) - t))s; for a shell: . $RUN/env.sh"
}

# ---------------------------------------------------------------- down
# Processes of the cluster that it did not start directly: containerd's shims
# (found by the cluster's own containerd socket on their command line) and every
# process below them (the containers).
cluster_pids() {
  local f p
  # One grep over every command line; it lists itself too (its pattern is the
  # path), so only PIDs still alive afterwards count.
  for f in $(grep -laF -- "$RUN/" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    p=${f#/proc/}
    p=${p%/cmdline}
    [ "$p" != $$ ] && [ -d "/proc/$p" ] && echo "$p"
  done
  return 0
}

descendants() { # PID...: the PIDs and all their descendants
  local -A kids=()
  local f line pid fields
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null <"$f" || continue
    pid=${line%% *}
    # After the command name in parentheses: state, then the parent's PID.
    read -r -a fields <<<"${line##*) }"
    kids[${fields[1]}]="${kids[${fields[1]}]:-} $pid"
  done
  local out=" " queue=("$@") p
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    case "$out" in *" $p "*) continue ;; esac
    out="$out$p "
    # shellcheck disable=SC2206
    queue+=(${kids[$p]:-})
  done
  echo $out
}

is_ancestor() { # PID: is it this script or one of its parents?
  local p=$$ line fields
  while [ "$p" -gt 1 ]; do
    [ "$p" = "$1" ] && return 0
    read -r line 2>/dev/null </proc/$p/stat || return 1
    read -r -a fields <<<"${line##*) }"
    p=${fields[1]}
  done
  return 1
}

stop_pids() { # PID...: TERM, up to 15 s, then KILL
  stop_with TERM "$@"
}

kill_pids() { # PID...: KILL at once (the containers: the cluster goes anyway)
  stop_with KILL "$@"
}

stop_with() {
  local sig=$1 p i left pids=()
  shift
  # Only real PIDs of other processes: never 0, -1, 1, this script or its parents
  # (kill treats 0 and -1 as "the process group" and "every process").
  for p in "$@"; do
    [[ $p =~ ^[1-9][0-9]*$ ]] && [ "$p" -gt 1 ] && ! is_ancestor "$p" && pids+=("$p")
  done
  set -- "${pids[@]}"
  [ $# -gt 0 ] || return 0
  kill -"$sig" "$@" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    left=""
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
    [ -z "$left" ] && return 0
    sleep 0.5
  done
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null || true
  sleep 0.5
}

cluster_down() {
  need_root
  local t=$(date +%s) order n p pids
  # Neither a run directory nor a record: nothing of this cluster was started
  # (`up` stopped in its preflight, perhaps beside another cluster, whose
  # address, bridge and chains must not be taken for this one's).
  if [ ! -d "$RUN" ] && [ ! -d "$STATE" ]; then
    log "nothing of the cluster in $WORK is up"
    return 0
  fi
  if [ -f "$RUN/pids" ]; then
    # After a restart of the machine, or a kill of every process, the processes
    # are gone and their mounts, cgroups and network remain: the rest of the
    # teardown removes those all the same. Their PIDs may name other processes
    # by now: only a process with the start time noted is signalled.
    n=$(gone_names)
    [ -z "$n" ] || log "not running any more (the rest of what they made is removed all the same): $n"
    # The node first (so nothing restarts containers), then the containers, then
    # the rest in reverse order of starting.
    for n in kubelet kube-proxy traefik coredns; do
      p=$(pid_of $n)
      [ -n "$p" ] && stop_pids "$p"
    done
    # The containers: everything below containerd's shims.
    pids=$(for p in $(cluster_pids || true); do
      case "$(cat "/proc/$p/comm" 2>/dev/null)" in containerd-shim*) echo "$p" ;; esac
    done)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill_pids $(descendants $pids)
    order=$(live_pids)
    # shellcheck disable=SC2086
    stop_pids $order
  fi
  # Anything still running from the run directory (a shim whose containerd died).
  pids=$(cluster_pids || true)
  # shellcheck disable=SC2086
  [ -n "$pids" ] && stop_pids $(descendants $pids)
  unmount_all
  remove_cgroups
  net_down
  if [ -d "$RUN" ]; then
    rm -rf "$WORK/last-logs" && mkdir -p "$WORK/last-logs"
    cp -r "$RUN/logs/." "$WORK/last-logs/" 2>/dev/null || true
    rm -rf "$RUN"
  fi
  # The record stays beside the logs, for `cluster.sh check` later.
  if [ -d "$STATE" ]; then rm -rf "$WORK/last-state" && mv "$STATE" "$WORK/last-state"; fi
  log "cluster down in $(($(date +%s) - t))s (logs of the last run: $WORK/last-logs)"
  cluster_check
}

unmount_all() {
  local m i
  for ((i = 0; i < 5; i++)); do
    m=$(awk -v r="$RUN/" 'index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r)
    [ -z "$m" ] && return 0
    for p in $m; do umount "$p" 2>/dev/null || umount -l "$p" 2>/dev/null || true; done
  done
}

# The kubelet makes kubepods under each cgroup v1 controller (cgroupfs driver);
# the cluster's pods are all there. Remove them deepest first, once empty.
remove_cgroups() {
  local d
  [ -f "$STATE/cgroups_before" ] && grep -q kubepods "$STATE/cgroups_before" && return 0
  [ -f "$STATE/cgroups_before" ] || { log "no record of the cgroups before up: kubepods left alone"; return 0; }
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# cluster_check: exit 1 if anything of the cluster is left on the machine.
cluster_check() {
  local bad=0 x
  x=$(cluster_pids || true)
  [ -z "$x" ] || { echo "left: processes $x"; bad=1; }
  for n in etcd containerd kube-apiserver kubelet kube-proxy traefik coredns registry; do
    x=$(pgrep -x "$n" | while read -r p; do tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | has "$WORK" && echo "$p"; done || true)
    [ -z "$x" ] || { echo "left: $n $x"; bad=1; }
  done
  x=$(awk -v w="$WORK/" 'index($2, w) == 1 {print $2}' /proc/self/mounts)
  [ -z "$x" ] || { echo "left: mounts $x"; bad=1; }
  # The network, compared with the record of the host before up (of the cluster
  # that is up, or else of the last one torn down).
  [ -d "$STATE" ] || BEFORE=$WORK/last-state/before
  net_check || bad=1
  x=$(ls -d /sys/fs/cgroup/*/kubepods 2>/dev/null || true)
  [ -z "$x" ] || { echo "left: cgroups $x"; bad=1; }
  [ -d "$RUN" ] && { echo "left: $RUN"; bad=1; }
  if [ $bad = 0 ]; then log "check: nothing of the cluster is left on this machine, and what was here before up still is (ip_forward=$(cat /proc/sys/net/ipv4/ip_forward))"; else return 1; fi
}

cluster_status() {
  [ -f "$RUN/pids" ] || { echo "cluster: down"; return 0; }
  local n p s
  while read -r n p s; do
    if ours "$p" "$s"; then echo "$n $p running"; else echo "$n $p not running"; fi
  done <"$RUN/pids"
  kc get nodes,ksvc,broker,trigger -A 2>/dev/null || true
}

cluster_env() {
  [ -f "$RUN/env.sh" ] || die "the cluster is not up"
  cat "$RUN/env.sh"
}

# ---------------------------------------------------------------- e2e
# has_knative: the current kube context (kubectl on the PATH) serves Knative
# Serving and Eventing.
has_knative() {
  command -v kubectl >/dev/null 2>&1 || return 1
  timeout 20 kubectl api-resources --api-group=serving.knative.dev -o name 2>/dev/null | has '^services\.' &&
    timeout 20 kubectl api-resources --api-group=eventing.knative.dev -o name 2>/dev/null | has '^brokers\.'
}

run_e2e() {
  local rc=0 t=$(date +%s)
  if [ "${CQRS_E2E_CLUSTER:-auto}" != local ] && [ ! -f "$RUN/pids" ] && has_knative; then
    log "the current kube context has Knative Serving and Eventing: testing against it"
    stage "tools (kn, kn-func)" build_user_tools
    (cd "$REPO" && PATH="$CACHE/user-bin:$PATH" go test -tags e2e -v -count=1 -timeout 60m ./functions/blackbox/cluster/ "$@") || rc=$?
    log "e2e against the current context: exit $rc in $(($(date +%s) - t))s"
    return $rc
  fi
  local own=0
  if [ ! -f "$RUN/pids" ]; then
    own=1
    need_root
    stage "Debian packages" install_debian
    # Another owner's chains and bridge, which the teardown must leave (host.sh).
    foreign_make
    trap 'log "tearing down"; cluster_down || true; foreign_remove' EXIT
    trap 'exit 130' INT TERM
    cluster_up
  else
    alive kube-apiserver && alive kubelet ||
      die "the local cluster in $WORK is not running (gone: $(gone_names)), but was not torn down: make cluster-down first"
    log "using the local cluster that is up already (it stays up)"
  fi
  local s=$(date +%s)
  # shellcheck disable=SC1091
  (set +u; . "$RUN/env.sh"; cd "$REPO" && go test -tags e2e -v -count=1 -timeout 60m ./functions/blackbox/cluster/ "$@") || rc=$?
  log "e2e tests: exit $rc in $(($(date +%s) - s))s"
  if [ $own = 1 ]; then
    trap - EXIT INT TERM
    log "tearing down"
    # The exit code is the tests', unless the teardown removed what was not the
    # cluster's; a teardown that left something says so in its check.
    cluster_down || true
    foreign_check || rc=1
    foreign_remove
  fi
  log "make e2e: exit $rc in $(($(date +%s) - t))s"
  return $rc
}

# For a user's cluster the tests need kn and the func plugin; kubectl, ko and
# helm are the user's (make deploy uses them).
build_user_tools() {
  stage "build kn" build_kn
  stage "build func (make func-cli)" build_func
  rm -rf "$CACHE/user-bin" && mkdir -p "$CACHE/user-bin"
  ln -sf "$(cat "$CACHE/bin/kn.current")/kn" "$CACHE/user-bin/kn"
  ln -sf "$REPO/bin/func" "$CACHE/user-bin/kn-func"
}
