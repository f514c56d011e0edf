#!/usr/bin/env bash
# Set up pocketstack on a fresh Debian 12 machine: system packages (as root), a virtualenv, the Python deps.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86 .. openssh-client: the test guest (`pocketstack image build-guest`) and booting it;
# iproute2 .. nftables: the host network data plane (network/agent); haproxy: docs/haproxy.cfg's test
APT_PACKAGES=(python3 python3-venv python3-dev gcc qemu-utils qemu-system-x86 busybox-static dropbear-bin syslinux
              syslinux-common mtools dosfstools cpio openssh-client iproute2 dnsmasq-base nftables haproxy)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "pocketstack installed in $(pwd)/.venv"
