#!/usr/bin/env bash
# Installs Debian's debootstrap package when it is missing: the container
# suite's package test (internal/e2e/docker, TestPackageOnThreeSystemdHosts)
# makes its Debian image with systemd from Debian's packages with it. It
# needs root (debootstrap itself does too) and a reachable Debian mirror.
# Exits non-zero when debootstrap is still missing afterwards.
set -euo pipefail

if command -v debootstrap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-debootstrap: not root: cannot install debootstrap (nor run it)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-debootstrap: no apt-get here (not Debian or Ubuntu): install debootstrap by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
command -v debootstrap >/dev/null 2>&1
