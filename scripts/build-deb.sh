#!/usr/bin/env bash
# Builds clusterkeep's Debian package into dist/ (or $OUT_DIR): the static
# binary, its man pages (the hidden `gen-man` command) and shell
# completions (`completion bash|zsh|fish`), staged and packaged by
# deploy/mkdeb (nfpm as a Go library, a module of its own) from
# deploy/debian/nfpm.yaml. Checks the unit with `systemd-analyze verify`
# when systemd-analyze is installed. Prints the package's path last.
#
#   VERSION   the package version (default: internal/version's with ~ for
#             -, then +git, the commit's UTC time and its hash)
#   ARCH      Debian architecture (default: Go's GOARCH)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

base=$(sed -n 's/^var Version = "\(.*\)"$/\1/p' internal/version/version.go)
# +git, the commit's UTC time (so that later commits sort later) and its hash.
commit=$(TZ=UTC git log -1 --date=format-local:%Y%m%d%H%M%S --format=%cd.%h 2>/dev/null || echo 0.unknown)
version=${VERSION:-${base//-/\~}+git$commit}
arch=${ARCH:-$(go env GOARCH)}
out_dir=${OUT_DIR:-$root/dist}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

echo "build-deb: building clusterkeep $version for $arch" >&2
CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath \
	-ldflags "-s -w -X github.com/clusterkeep/clusterkeep/internal/version.Version=$version" \
	-o "$stage/clusterkeep" ./cmd/clusterkeep
# The host runs the staged binary to write its man pages and completions,
# so cross-builds take them from a native build of the same source.
gen=$stage/clusterkeep
if [ "$arch" != "$(go env GOARCH)" ]; then
	gen=$stage/clusterkeep-native
	go build -trimpath -o "$gen" ./cmd/clusterkeep
fi
mkdir -p "$stage/man" "$stage/completion"
"$gen" gen-man "$stage/man"
gzip -9n "$stage"/man/*.1
for sh in bash zsh fish; do
	"$gen" completion "$sh" > "$stage/completion/clusterkeep.$sh"
done

if command -v systemd-analyze >/dev/null 2>&1; then
	scripts/verify-unit.sh "$stage/clusterkeep" "$stage/man"
else
	echo "build-deb: systemd-analyze is missing: the unit was NOT verified" >&2
fi

mkdir -p "$out_dir"
deb=$out_dir/clusterkeep_${version}_${arch}.deb
(cd deploy/mkdeb && go run . -config "$root/deploy/debian/nfpm.yaml" -stage "$stage" \
	-version "$version" -arch "$arch" -o "$deb")
echo "$deb"
