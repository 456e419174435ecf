#!/usr/bin/env bash
# Installs the system packages the tests need: redis-server (real master, replica and
# sentinel processes) and chromium (browser tests of the UI). Uses apt-get as root or
# through sudo; elsewhere says what to install and stops.
set -euo pipefail

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  echo "deps: please install: ${need[*]} (no apt-get here)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "deps: please install: ${need[*]} (for example: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
echo "deps: installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "deps: installed ${need[*]}"
