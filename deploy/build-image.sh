#!/usr/bin/env bash
# Builds the static clusterkeep binary and the FROM-scratch image
# clusterkeep:dev from it (the Dockerfile says what the context holds).
set -euo pipefail
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/clusterkeep" ./cmd/clusterkeep
cp deploy/Dockerfile "$ctx/Dockerfile"
mkdir "$ctx/tmp"
docker build -q -t clusterkeep:dev "$ctx"
