#!/usr/bin/env bash
# The local Knative cluster: one node on this machine, built from Debian packages
# and Go modules, brought up and torn down by this script.
#
#   cluster.sh build    install the Debian parts, build (or reuse) every binary
#   cluster.sh up       build, then start the cluster (Kubernetes, Knative Serving
#                       and Eventing, Traefik as the ingress, a local registry)
#   cluster.sh down     stop everything the cluster started and undo its changes to
#                       the machine; then check that nothing is left
#   cluster.sh check    only the check of `down`: exit 1 if anything is left
#   cluster.sh status   what runs
#   cluster.sh env      print the environment for working with the cluster by hand
#   cluster.sh e2e      up (or use the current kube context if it has Knative),
#                       run the end-to-end tests, down; the exit code is the tests'
#   cluster.sh preflight  only the checks `up` makes before it changes anything
#   cluster.sh net-test-up | net-test-down
#                       only the network set-up (with the record of the host) and
#                       the teardown with its check, inside a network namespace
#                       of a test's own: ip netns exec NS cluster.sh net-test-up
#
# Everything stays on this machine: the node's address is on lo, pods live in
# network namespaces the cluster makes, a firewall chain drops whatever the
# cluster would send out of the machine's outside interface, the DNS has no
# upstream, and every image is built here. Before it changes anything it notes
# the host's network, and `down` removes only what appeared after (host.sh).
# Work files live in $CLUSTER_DIR (default .cluster/ at the top of the
# repository): cache/ keeps builds between runs, run/ holds the running cluster
# and goes away on `down`, state/ is the record of the host while it is up.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=versions.sh
source "$HERE/versions.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=host.sh
source "$HERE/host.sh"

cmd=${1:-}
shift || true
case "$cmd" in
  build) build_all ;;
  up) cluster_up ;;
  down) down_command ;;
  check) cluster_check ;;
  status) cluster_status ;;
  env) cluster_env ;;
  e2e) run_e2e "$@" ;;
  preflight) need_root && preflight ;;
  net-test-up) net_test_up ;;
  net-test-down) net_test_down ;;
  *)
    sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
