#!/usr/bin/env bash
# The README's test command: installs and starts what the tests need (a
# single-node Ceph with radosgw, from Debian packages), then runs every test
# with -race, the Ceph tier's under its build tag, and stops the cluster.
#
#   ./scripts/test.sh              # everything
#   ./scripts/test.sh ./disk/...   # some packages (the cluster is still started)
#
# With CI=true a service that cannot start fails the run (tests never skip it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

log() { printf '\n== %s (%ds)\n' "$*" "$SECONDS"; }

log "static checks"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi

cluster="$root/.tmp/ceph"
stop_cluster() { [ -x scripts/ceph-down.sh ] && scripts/ceph-down.sh "$cluster" >/dev/null 2>&1 || true; }
trap stop_cluster EXIT
log "starting a single-node Ceph (mon, mgr, osd, radosgw) on 127.0.0.1"
if scripts/ceph-up.sh "$cluster"; then
	# shellcheck disable=SC1091
	source "$cluster/env.sh"
	ceph_tags="-tags=ceph"
else
	echo "ceph-up.sh failed"
	if [ "${CI:-}" = true ]; then exit 1; fi
	ceph_tags=""
fi

log "go vet $ceph_tags"
go vet $ceph_tags ./...

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
log "go test -race ${pkgs[*]}"
# -p 2: two cores; the packages' own big tests are sized for this machine.
go test -race -p 2 -timeout 20m $ceph_tags "${pkgs[@]}"
log "all tests passed"
