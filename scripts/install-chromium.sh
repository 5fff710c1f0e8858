#!/usr/bin/env bash
# Installs Debian's chromium package (headless browser for the dashboard
# test, ./internal/e2e/dashboard) when no chromium is on the PATH. It needs
# root, or sudo without a password, and a reachable Debian mirror. Exits
# non-zero when chromium is still missing afterwards.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
run=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run=(sudo -n)
  else
    echo "install-chromium: not root and no password-less sudo: cannot install chromium" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here (not Debian or Ubuntu): install chromium by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${run[@]}" apt-get update -qq
"${run[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null 2>&1
