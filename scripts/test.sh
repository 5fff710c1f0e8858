#!/usr/bin/env bash
# Runs every check and test of clusterkeep: formatting, vet, then the test
# suite. Packages with goroutines and shared state run under the race
# detector; the end-to-end tests run the real binary as separate processes;
# the dashboard test drives a headless Chromium (installed with
# scripts/install-chromium.sh when missing); the container suite runs three
# nodes in FROM-scratch containers when a Docker engine answers. Each says
# clearly when it did not run.
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

echo "== bench/setup.sh (etcd for the benchmark smoke run's side by side)"
./bench/setup.sh || echo "WARNING: bench/setup.sh could not install etcd: the smoke run says it skips the etcd side by side"

echo "== go test (race detector on the concurrent packages)"
race_pkgs=$(go list ./internal/... | grep -v -e /internal/e2e$ -e /internal/e2e/docker$ -e /internal/e2e/dashboard$ -e /internal/e2e/s3$)
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
  go test -v -count=1 -timeout 15m ./internal/e2e/docker
else
  echo "NOT RUN: the container suite (./internal/e2e/docker) needs a Docker engine, and 'docker info' failed here."
fi
