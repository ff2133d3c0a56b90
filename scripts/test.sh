#!/usr/bin/env bash
# The README's test command: installs and starts what the tests need (a
# single-node Ceph with radosgw, from Debian packages), runs every Go test
# with -race (the Ceph tier's under its build tag), the Python client's tests
# when python/ exists, stops the cluster, and ends with a summary that lists
# every skipped test and why (scripts/testsummary). It fails if the run left
# anything behind in /tmp or /dev/shm.
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

# What /tmp and /dev/shm hold now; the end of the run must find no more.
snapshot() { find /tmp /dev/shm -mindepth 1 -maxdepth 1 2>/dev/null | sort; }
before=$(snapshot)
# The tests' own temporary files go under .tmp, removed at the end.
scratch="$root/.tmp/test-tmp"
rm -rf "$scratch"
mkdir -p "$scratch"
export TMPDIR="$scratch"

# No debug information (DWARF) in what the run compiles and links: race
# reports and panics use the symbol table, and leaving it out takes a tenth
# off compiling and half off linking each test binary. In GOFLAGS, so that the
# programs the tests build themselves share these compiles.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-gcflags=all=-dwarf=false -ldflags=-w"

log "static checks"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted"; exit 1; fi
# Built in the background while Ceph installs and starts: the container
# tests' static server (the tests run the same command: a cache hit), and the
# binaries the tests start, with -race, so that their packages are compiled
# once for the binaries, go vet and go test alike.
# The static settings are also those of every program a test builds and runs
# (internal/testutil.BuildProgram): one compile of the dependencies serves all.
(export CGO_ENABLED=0
	go build -tags nogpu -trimpath -o deploy/build/distore-server ./cmd/distore-server &&
	go build -trimpath -o "$root/.tmp/bin/static/" ./cmd/distore-server ./cmd/distore ./python/tests/goclient) &
static_build=$!
go build -race -o "$root/.tmp/bin/" ./scripts/testsummary ./cmd/distore-server ./cmd/distore &
race_build=$!

cluster="$root/.tmp/ceph"
stop_cluster() { [ -x scripts/ceph-down.sh ] && scripts/ceph-down.sh "$cluster" >/dev/null 2>&1 || true; }
trap stop_cluster EXIT
# The cluster tests' etcd and the Python tests' venv and numpy install with
# Ceph, in one apt-get run.
python_debs=(python3-venv python3-setuptools python3-wheel python3-numpy)
python_ready() { /usr/bin/python3 -c 'import ensurepip, setuptools, wheel, numpy' 2>/dev/null; }
extra=()
command -v etcd >/dev/null 2>&1 || extra+=(etcd-server)
python_ready || extra+=("${python_debs[@]}")
export DISTORE_APT_EXTRA="${extra[*]}"
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

wait "$race_build" || { echo "build of the test binaries failed"; exit 1; }
log "go vet $ceph_tags"
go vet -race $ceph_tags ./...
wait "$static_build" || { echo "static build of distore-server failed"; exit 1; }

# The Python client's tests run beside the Go tests (they mostly wait on the
# servers they start): the client installs into a venv (pip install ./python),
# with numpy (Debian's) so that the numpy.frombuffer test runs too, and the
# tests start their servers from the binary built above.
python_tests() {
	python_ready || apt-get install -y -q "${python_debs[@]}" >/dev/null # Ceph's install failed before it
	rm -rf .tmp/venv
	/usr/bin/python3 -m venv --system-site-packages .tmp/venv
	.tmp/venv/bin/pip install -q --no-build-isolation ./python || { echo "pip install ./python failed"; return 1; }
	DISTORE_SERVER_BIN="$root/.tmp/bin/distore-server" DISTORE_CLI_BIN="$root/.tmp/bin/distore" \
		.tmp/venv/bin/python3 -m unittest discover -s python/tests -v
}
python_run=
if [ -d python ]; then
	python_tests >"$root/.tmp/python-tests.log" 2>&1 &
	python_run=$!
fi

pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
log "go test -race ${pkgs[*]}"
status=0
# -p 2: two cores; the packages' own big tests are sized for this machine.
# -json feeds the summary; it prints package results and failed tests' output.
go test -json -race -p 2 -timeout 20m $ceph_tags "${pkgs[@]}" 2>&1 | "$root/.tmp/bin/testsummary" || status=1

if [ -n "$python_run" ]; then
	log "python client tests (run beside the Go tests)"
	wait "$python_run" || status=1
	cat "$root/.tmp/python-tests.log"
fi

stop_cluster
trap - EXIT
rm -rf "$scratch"
log "checking that nothing was left in /tmp or /dev/shm"
left=$(comm -13 <(echo "$before") <(snapshot))
if [ -n "$left" ]; then
	echo "left behind (a test that does not clean up, or another process on this machine):"
	echo "$left" | sed 's/^/  /'
	status=1
fi
if [ "$status" -ne 0 ]; then
	log "FAILED"
	exit 1
fi
log "all tests passed"
