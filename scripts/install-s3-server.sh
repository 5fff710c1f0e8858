#!/usr/bin/env bash
# Installs the S3-compatible server the S3 target's tests run on loopback:
# versitygw (github.com/versity/versitygw), built from the Go module proxy,
# into .cache/bin (not committed). Does nothing when it is there already.
# Prints the binary's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=v1.8.0
bin="$PWD/.cache/bin"
exe="$bin/versitygw-$VERSION"
if [ ! -x "$exe" ]; then
  mkdir -p "$bin"
  echo "building versitygw $VERSION from the Go module proxy into $bin (a few minutes the first time)" >&2
  tmp=$(mktemp -d "$bin/.build-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "github.com/versity/versitygw/cmd/versitygw@$VERSION" >&2
  mv "$tmp/versitygw" "$exe"
fi
echo "$exe"
