#!/usr/bin/env bash
# Installs the system packages a target needs, with apt-get as root or through sudo:
#   deps.sh run    redis-server (make run)
#   deps.sh bench  redis-server, redis-tools (make bench: redis-benchmark)
#   deps.sh test   redis-server, redis-tools, chromium, curl, iptables, iproute2
#                  and procps (make test)
# Where it cannot install, it says in one line what is missing and stops.
set -euo pipefail

mode=${1:-test}
case "$mode" in
  run | bench | test) ;;
  *) echo "deps: unknown mode $mode (run, bench or test)" >&2; exit 2 ;;
esac

need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ "$mode" != run ]; then
  command -v redis-benchmark >/dev/null || need+=(redis-tools)
fi
if [ "$mode" = test ]; then
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
  command -v curl >/dev/null || need+=(curl)
  # knative/cluster/hosttest: the local cluster's network set-up and preflight in
  # network namespaces of the test's own.
  command -v iptables >/dev/null || need+=(iptables)
  command -v ip >/dev/null || need+=(iproute2)
  command -v pgrep >/dev/null || need+=(procps)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "deps: missing ${need[*]}; install them with your package manager (no apt-get here)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "deps: missing ${need[*]}; install them: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
echo "deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "deps: installed ${need[*]}"
