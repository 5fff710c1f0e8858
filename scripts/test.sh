#!/usr/bin/env bash
# Runs every check and test of clusterkeep: formatting, vet, then the test
# suite. Packages with goroutines and shared state run under the race
# detector; the end-to-end tests run the real binary as separate processes.
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
./bench/setup.sh

echo "== go test (race detector on the concurrent packages)"
race_pkgs=$(go list ./internal/... | grep -v -e /internal/e2e$)
go test -race -count=1 -timeout 20m $race_pkgs

echo "== go test (end to end: agent processes on loopback)"
go test -count=1 -timeout 20m ./internal/e2e/... ./bench/...
