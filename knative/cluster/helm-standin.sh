#!/usr/bin/env bash
# Stands in for helm in `make deploy` on the local cluster, where Bitnami's chart
# and images cannot be fetched:
#
#   make deploy HELM=knative/cluster/helm-standin.sh
#
# `helm upgrade --install cqrs-redis <chart> ... --namespace NS ...` applies
# knative/cluster/manifests/redis-standin.yaml (a Redis master and replica under
# the chart's names, from the image the cluster built) and waits for it;
# `helm uninstall cqrs-redis` deletes it. Anything else is refused.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-kubectl}
RUN=${CLUSTER_RUN:-$(cd "$HERE/../.." && pwd)/.cluster/run}
REDIS_IMAGE=${CQRS_REDIS_IMAGE:-localhost:5000/cqrs-cluster/redis:standin}

ns=default
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = --namespace ] && ns=${args[$((i + 1))]}
done
manifest() { sed -e "s|@RUN@|$RUN|g" -e "s|@REDIS_IMAGE@|$REDIS_IMAGE|g" -e "s|namespace: default|namespace: $ns|" "$HERE/manifests/redis-standin.yaml"; }

case "${1:-} ${2:-} ${3:-}" in
  "upgrade --install cqrs-redis")
    echo "helm stand-in: Redis master + replica under Bitnami's names in namespace $ns"
    manifest | $KUBECTL apply -f -
    $KUBECTL rollout status --namespace "$ns" statefulset/cqrs-redis-master --timeout=5m
    $KUBECTL rollout status --namespace "$ns" statefulset/cqrs-redis-replicas --timeout=5m
    ;;
  "uninstall cqrs-redis "*)
    manifest | $KUBECTL delete --ignore-not-found -f -
    ;;
  *)
    echo "helm stand-in: only 'upgrade --install cqrs-redis ...' and 'uninstall cqrs-redis' are supported" >&2
    exit 2
    ;;
esac
