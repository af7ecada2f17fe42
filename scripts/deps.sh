#!/usr/bin/env bash
# Installs the system packages HFReduce builds and tests with (Debian 12). Needs root; does
# nothing for packages already present.
set -euo pipefail
packages=(libibverbs-dev libnuma-dev libhwloc-dev iproute2 pkg-config python3 python3-numpy python3-torch)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "scripts/deps.sh: missing packages ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
