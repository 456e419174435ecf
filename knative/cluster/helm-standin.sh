#!/usr/bin/env bash
# Stands in for helm in `make deploy` on the local cluster, where Bitnami's charts
# and images cannot be fetched:
#
#   make deploy HELM=knative/cluster/helm-standin.sh
#   make deploy HELM=knative/cluster/helm-standin.sh REDIS_MODE=cluster
#
# `helm upgrade --install cqrs-redis <chart> ... --namespace NS ...` applies, for
# Bitnami's redis chart, knative/cluster/manifests/redis-standin.yaml (a Redis
# master and replica under the chart's names, from the image the cluster built)
# and waits for it; for Bitnami's redis-cluster chart (a chart whose name ends in
# redis-cluster), knative/cluster/manifests/redis-cluster-standin.yaml (six nodes
# under the names the values give: fullnameOverride, existingSecret,
# existingSecretPasswordKey), waits for them and makes them a Redis Cluster of
# three masters with a replica each, as the chart does at install.
# `helm uninstall cqrs-redis` deletes either. Anything else is refused.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
RUN=${CLUSTER_RUN:-$(cd "$HERE/../.." && pwd)/.cluster/run}
REDIS_IMAGE=${CQRS_REDIS_IMAGE:-localhost:5000/cqrs-cluster/redis:standin}

ns=default
values=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --namespace) ns=${args[$((i + 1))]} ;;
    -f | --values) values+=("${args[$((i + 1))]}") ;;
  esac
done

# value KEY DEFAULT: a top-level scalar of the values files (the last one that
# sets it), unquoted; DEFAULT where none does.
value() {
  local v="" f line
  for f in ${values[@]+"${values[@]}"}; do
    line=$(sed -n "s/^$1:[[:space:]]*//p" "$f" | tail -n 1)
    [ -z "$line" ] || v=$line
  done
  v=${v%%#*}
  v=${v//\"/}
  v=${v//\'/}
  v=${v%"${v##*[![:space:]]}"}
  echo "${v:-$2}"
}

manifest() { sed -e "s|@RUN@|$RUN|g" -e "s|@REDIS_IMAGE@|$REDIS_IMAGE|g" -e "s|namespace: default|namespace: $ns|" "$HERE/manifests/redis-standin.yaml"; }

cluster_manifest() {
  sed -e "s|@NAME@|$name|g" -e "s|@SECRET@|$secret|g" -e "s|@SECRET_KEY@|$secret_key|g" \
    -e "s|@REDIS_IMAGE@|$REDIS_IMAGE|g" -e "s|namespace: default|namespace: $ns|" "$HERE/manifests/redis-cluster-standin.yaml"
}

node() { $KUBECTL exec --namespace "$ns" "$name-$1" -c redis -- redis-cli "${@:2}"; }

cluster_ok() { node "$1" cluster info | tr -d '\r' | grep -x 'cluster_state:ok' >/dev/null; }

install_cluster() {
  name=$(value fullnameOverride cqrs-redis)
  secret=$(value existingSecret "$name")
  secret_key=$(value existingSecretPasswordKey redis-password)
  echo "helm stand-in: a Redis Cluster of six nodes (three masters, three replicas) as $name in namespace $ns, password from Secret $secret key $secret_key"
  # The chart makes its own Secret when the values name none.
  $KUBECTL get secret --namespace "$ns" "$secret" >/dev/null 2>&1 ||
    $KUBECTL create secret generic --namespace "$ns" "$secret" \
      --from-literal="$secret_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
  cluster_manifest | $KUBECTL apply -f -
  $KUBECTL rollout status --namespace "$ns" "statefulset/$name" --timeout=5m
  if cluster_ok 0 && node 0 cluster info | tr -d '\r' | grep -x 'cluster_known_nodes:6' >/dev/null; then
    echo "helm stand-in: $name is a cluster already"
    return 0
  fi
  local ips=() i ip
  for i in 0 1 2 3 4 5; do
    ip=$($KUBECTL get pod --namespace "$ns" "$name-$i" -o jsonpath='{.status.podIP}')
    [ -n "$ip" ] || { echo "helm stand-in: $name-$i has no address" >&2; exit 1; }
    ips+=("$ip:6379")
  done
  node 0 --cluster create "${ips[@]}" --cluster-replicas 1 --cluster-yes
  # Every node agrees that the cluster is up (bounded: 2 minutes).
  for ((i = 0; i < 120; i++)); do
    if cluster_ok 0 && cluster_ok 1 && cluster_ok 2 && cluster_ok 3 && cluster_ok 4 && cluster_ok 5; then
      node 0 cluster nodes
      return 0
    fi
    sleep 1
  done
  echo "helm stand-in: $name: cluster_state is not ok on every node after 2 minutes" >&2
  node 0 cluster nodes >&2 || true
  exit 1
}

case "${1:-} ${2:-} ${3:-}" in
  "upgrade --install cqrs-redis")
    case "${4:-}" in
      *redis-cluster) install_cluster ;;
      *)
        echo "helm stand-in: Redis master + replica under Bitnami's names in namespace $ns"
        manifest | $KUBECTL apply -f -
        $KUBECTL rollout status --namespace "$ns" statefulset/cqrs-redis-master --timeout=5m
        $KUBECTL rollout status --namespace "$ns" statefulset/cqrs-redis-replicas --timeout=5m
        ;;
    esac
    ;;
  "uninstall cqrs-redis "*)
    manifest | $KUBECTL delete --ignore-not-found -f -
    name=$(value fullnameOverride cqrs-redis) secret=x secret_key=x
    cluster_manifest | $KUBECTL delete --ignore-not-found -f -
    ;;
  *)
    echo "helm stand-in: only 'upgrade --install cqrs-redis ...' and 'uninstall cqrs-redis' are supported" >&2
    exit 2
    ;;
esac
