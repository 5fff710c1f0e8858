#!/usr/bin/env bash
# Runs every check and test of clusterkeep: formatting, vet, then the test
# suite. Packages with goroutines and shared state run under the race
# detector; the end-to-end tests run the real binary as separate processes;
# the dashboard test drives a headless Chromium (installed with
# scripts/install-chromium.sh when missing); the container suite runs three
# nodes in FROM-scratch containers when a Docker engine answers, and the
# Debian package on three containers booting systemd. Each says clearly
# when it did not run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
(cd bench/etcdload && go vet ./...)
(cd deploy/mkdeb && go vet ./...)

echo "== the systemd unit (systemd-analyze verify)"
if command -v systemd-analyze >/dev/null 2>&1; then
  unit_tmp=$(mktemp -d)
  go build -o "$unit_tmp/clusterkeep" ./cmd/clusterkeep
  "$unit_tmp/clusterkeep" gen-man "$unit_tmp/man"
  scripts/verify-unit.sh "$unit_tmp/clusterkeep" "$unit_tmp/man"
  rm -rf "$unit_tmp"
else
  echo "NOT RUN: systemd-analyze is missing, so deploy/systemd/clusterkeep.service was not verified (apt-get install systemd)."
fi

echo "== bench/setup.sh (etcd for the benchmark smoke run's side by side)"
./bench/setup.sh || echo "WARNING: bench/setup.sh could not install etcd: the smoke run says it skips the etcd side by side"

echo "== go test (race detector on the concurrent packages)"
race_pkgs=$(go list ./cmd/... ./internal/... | grep -v -e /internal/e2e$ -e /internal/e2e/docker$ -e /internal/e2e/dashboard$ -e /internal/e2e/s3$)
go test -race -count=1 -timeout 20m $race_pkgs

echo "== go test (end to end: agent processes on loopback)"
go test -count=1 -timeout 20m ./internal/e2e ./bench/...

echo "== go test (the dashboard in headless Chromium)"
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing: installing Debian's package (scripts/install-chromium.sh)"
  ./scripts/install-chromium.sh || true
fi
if command -v chromium >/dev/null 2>&1; then
  go test -v -count=1 -timeout 10m ./internal/e2e/dashboard
else
  echo "NOT RUN: the dashboard test (./internal/e2e/dashboard) needs chromium, which is missing and could not be installed (scripts/install-chromium.sh needs root and apt-get)."
fi

echo "== go test (the S3 target against a real S3-compatible server on loopback)"
# versitygw, built from the Go module proxy into .cache/bin when missing; the
# tests fail saying so if it cannot be installed.
./scripts/install-s3-server.sh >/dev/null || echo "WARNING: scripts/install-s3-server.sh failed: the S3 tests will fail"
go test -count=1 -timeout 20m ./internal/e2e/s3

echo "== go test (containers: three nodes on docker networks)"
if docker info >/dev/null 2>&1; then
  # The package test boots systemd in a Debian image made with debootstrap
  # (once; cached in .cache/systemd-rootfs and in the engine); it says it
  # did not run when debootstrap cannot be installed.
  ./scripts/install-debootstrap.sh || echo "WARNING: scripts/install-debootstrap.sh failed: the package test on systemd hosts will say it did not run"
  go test -v -count=1 -timeout 25m ./internal/e2e/docker
else
  echo "NOT RUN: the container suite (./internal/e2e/docker) needs a Docker engine, and 'docker info' failed here."
fi
