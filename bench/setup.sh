#!/usr/bin/env bash
# Installs what the benchmarks need besides Go: Debian's etcd (server and
# etcdctl) for the side-by-side figures, and openssl for the raw limit.
# Idempotent: it does nothing when they are already installed.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "bench/setup.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# The package's service is not wanted: the benchmark starts its own members.
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
