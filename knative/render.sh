#!/usr/bin/env bash
# Renders what `make deploy` applies: an overlay of knative/ (knative/base, the
# plain manifests, unless another is named) through kustomize, with every object
# in one namespace and the UI's URLs of the functions naming it.
#
#   knative/render.sh NAMESPACE [OVERLAY]                  the manifests, on stdout
#   knative/render.sh --kustomization NAMESPACE [OVERLAY]  only the kustomization
#                                                          it renders
#
# OVERLAY is a directory relative to the repository root (knative/sentinel,
# knative/cluster-local, or one of yours beside them). kustomize takes no
# namespace on its command line, so this writes a kustomization of one use in
# knative/.render-* (removed afterwards) that sets the namespace, takes the
# overlay, and runs the replacements of knative/base/function-urls.yaml, which
# must come after the namespace. KUBECTL names kubectl (kubectl kustomize).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

only_kustomization=0
if [ "${1:-}" = --kustomization ]; then
  only_kustomization=1
  shift
fi
ns=${1:-}
overlay=${2:-knative/base}
overlay=${overlay%/}
# A namespace is a DNS label (RFC 1123): at most 63 of a-z, 0-9 and "-", a
# letter or digit at each end.
if ! [[ $ns =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || [ ${#ns} -gt 63 ]; then
  echo "render: NAMESPACE=\"$ns\" is not a namespace name (a-z, 0-9 and -, at most 63)" >&2
  exit 2
fi
case "$overlay" in
  /*) echo "render: OVERLAY=$overlay must be relative to the repository root" >&2; exit 2 ;;
esac
[ -f "$overlay/kustomization.yaml" ] || { echo "render: OVERLAY=$overlay has no kustomization.yaml" >&2; exit 2; }

kustomization() {
  cat <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $ns
resources:
  - ../../$overlay
replacements:
  - path: ../base/function-urls.yaml
EOF
}

if [ $only_kustomization = 1 ]; then
  kustomization
  exit 0
fi
dir=$(mktemp -d knative/.render-XXXXXX)
trap 'rm -rf "$dir"' EXIT
kustomization >"$dir/kustomization.yaml"
"${KUBECTL:-kubectl}" kustomize --load-restrictor LoadRestrictionsNone "$dir"
