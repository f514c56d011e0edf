#!/usr/bin/env bash
# Set up pocketstack on a fresh Debian 12 machine: system packages (as root), a virtualenv, the Python deps.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc qemu-utils
  # qemu driver: the hypervisor, config drives and the KVM probe (mtools, vfat)
  qemu-system-x86 mtools dosfstools syslinux syslinux-common cpio
  # the test guest (pocketstack image build-guest; its kernel comes from `apt-get download linux-image-cloud-amd64`)
  busybox-static dropbear-bin lz4
  # the host network data plane (network/agent): bridges, taps, namespaces, DHCP, security groups
  iproute2 dnsmasq-base nftables
  # guest tests and bench/guest.py: SSH into guests
  openssh-client
  # docs/haproxy.cfg's test (distributed mode)
  haproxy
  # the dashboard's browser tests (Playwright drives Debian's chromium)
  chromium)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# the dashboard's front-end packages come through npm: Debian's only where no Node.js with npm is installed
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages (install them as root): ${missing[*]}" >&2
  fi
fi

# The test guest's kernel is fetched with `apt-get download`: apt must know the package (lists present).
if ! apt-cache show --no-all-versions linux-image-cloud-amd64 >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
  else
    echo "warning: apt does not know linux-image-cloud-amd64 (run apt-get update as root)" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
# The dashboard's and the noVNC proxy's front-end libraries (package.json + package-lock.json), served from
# node_modules and build/ by the apps
if command -v npm >/dev/null; then
  npm ci --no-audit --no-fund --silent
  npm run build --silent  # noVNC's client bundled for the browser (build/novnc/rfb.js)
else
  echo "warning: npm missing: the dashboard serves its pages without htmx (no live updates), no noVNC client" >&2
fi
echo "pocketstack installed in $(pwd)/.venv"
