# Versions of everything the local cluster runs. The Go modules under mods/ pin
# the same versions in their go.mod files; the build cache is keyed by those
# files, so changing a version there rebuilds exactly what it affects.
K8S_VERSION=v1.30.14              # k8s.io/kubernetes (staging modules v0.30.14)
KNATIVE_SERVING_VERSION=v0.42.2   # knative.dev/serving
KNATIVE_EVENTING_VERSION=v0.42.3  # knative.dev/eventing
TRAEFIK_VERSION=v3.6.0            # github.com/traefik/traefik/v3 (Knative provider)
COREDNS_VERSION=v1.11.3           # github.com/coredns/coredns (without forward)
REGISTRY_VERSION=v3.1.2           # github.com/distribution/distribution/v3
KO_VERSION=v0.19.1                # github.com/google/ko
KN_VERSION=v0.42.0                # knative.dev/client
# Debian packages of the node, and of what runs on it: redis-server and curl are
# copied into the Redis and curl images, chromium drives the e2e browser test (on
# a fresh machine it would otherwise be skipped).
DEBIAN_PACKAGES="containerd runc containernetworking-plugins iptables conntrack socat ethtool ebtables etcd-server ipset openssl curl redis-server chromium"
