#!/usr/bin/env bash
# Checks deploy/systemd/clusterkeep.service, alone and with the example
# drop-in deploy/debian/run-as-root.conf, with `systemd-analyze verify`
# in a scratch root holding the host's own units, the unit and BINARY at
# /usr/bin/clusterkeep; with MANDIR (uncompressed or .gz pages), the man
# page the unit names must be there too. Any complaint fails, warnings
# included (systemd-analyze exits 0 on those).
#
#   scripts/verify-unit.sh BINARY [MANDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: verify-unit.sh BINARY [MANDIR]}
mandir=${2:-}
units=$(dirname "$(command -v systemd-analyze)")/../lib/systemd/system
[ -d /usr/lib/systemd/system ] && units=/usr/lib/systemd/system
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/usr/bin" "$scratch/usr/lib/systemd"
cp -a "$units" "$scratch/usr/lib/systemd/system"
cp deploy/systemd/clusterkeep.service "$scratch/usr/lib/systemd/system/"
cp "$bin" "$scratch/usr/bin/clusterkeep"
man=no
if [ -n "$mandir" ] && command -v man >/dev/null 2>&1; then
	mkdir -p "$scratch/man/man1"
	cp "$mandir"/* "$scratch/man/man1/"
	man=yes
	export MANPATH=$scratch/man
fi
verify() {
	if ! out=$(systemd-analyze verify --man=$man --root="$scratch" clusterkeep.service 2>&1) || [ -n "$out" ]; then
		echo "verify-unit: systemd-analyze verify complains about deploy/systemd/clusterkeep.service$1:" >&2
		echo "$out" >&2
		exit 1
	fi
}
verify ""
# And with the package's example drop-in that runs the agent as root.
mkdir -p "$scratch/etc/systemd/system/clusterkeep.service.d"
cp deploy/debian/run-as-root.conf "$scratch/etc/systemd/system/clusterkeep.service.d/"
verify " with deploy/debian/run-as-root.conf"
echo "verify-unit: systemd-analyze verify passes, with and without the run-as-root drop-in (man pages checked: $man)" >&2
