#!/usr/bin/env bash
# gpu-check.sh: the GPU tier's checks on a machine with an NVIDIA GPU.
#
#   scripts/gpu-check.sh build   # here: compile the three programs into bin/gpu-check/
#   scripts/gpu-check.sh         # on the GPU machine: run them (or `go` them where Go is)
#
# It prints nvidia-smi and the driver version, then runs
#   1. go test -v ./gpu                      (TestConformance on the real device, and the rest)
#   2. go test -v ./spill -run TestGPUStack  (a gpu,memory,disk stack spills and promotes back)
#   3. go run ./bench -suite gpu             (Put/Get vs pinned cuMemcpy, 64 MiB and 1 GiB)
# each under its own timeout, all under GPU_CHECK_TIMEOUT seconds (default 480). With $OUT
# set, everything is also written there: one file per step and summary.txt.
#
# The GPU machine may have no Go toolchain or module cache: `build` puts stripped binaries
# (about 30 MiB) in bin/gpu-check/, which is git-ignored; carry that folder to the machine.
# Where bin/gpu-check/ holds them they are used; otherwise `go` must be on PATH.
# GPU_CHECK_RACE=1 builds and runs the tests with the race detector.
set -u -o pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=$root/bin/gpu-check
race=()
[ "${GPU_CHECK_RACE:-0}" = 1 ] && race=(-race)
export PATH="$PATH:/usr/local/go/bin"

if [ "${1:-}" = build ]; then
	mkdir -p "$bin"
	set -e
	go test -c "${race[@]}" -ldflags='-s -w' -o "$bin/gpu.test" ./gpu
	go test -c "${race[@]}" -ldflags='-s -w' -o "$bin/spill.test" ./spill
	go build -ldflags='-s -w' -o "$bin/bench" ./bench
	ls -l "$bin"
	du -sh "$bin"
	exit 0
fi

total=${GPU_CHECK_TIMEOUT:-480}
start=$(date +%s)
out=${OUT:-}
[ -n "$out" ] && mkdir -p "$out"
summary=()
failed=0

# left prints the seconds left of the overall budget (at least 1).
left() {
	local l=$((total - ($(date +%s) - start)))
	[ "$l" -lt 1 ] && l=1
	echo "$l"
}

# step NAME BUDGET DIR CMD...: runs CMD in DIR (a test binary runs in its
# package's folder, as go test runs it) for at most BUDGET seconds (and what is
# left overall), prints its output, and keeps it in $OUT/NAME.txt.
step() {
	local name=$1 budget=$2 dir=$3
	shift 3
	local l
	l=$(left)
	[ "$budget" -gt "$l" ] && budget=$l
	echo
	echo "==== $name (timeout ${budget}s): $*"
	local t0=$(date +%s) rc
	if [ -n "$out" ]; then
		(cd "$dir" && timeout -k 10 "$budget" "$@") 2>&1 | tee "$out/$name.txt"
		rc=${PIPESTATUS[0]}
	else
		(cd "$dir" && timeout -k 10 "$budget" "$@") 2>&1
		rc=$?
	fi
	local verdict=ok
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		verdict="TIMED OUT"
	elif [ "$rc" != 0 ]; then
		verdict="FAILED"
	fi
	[ "$verdict" = ok ] || failed=1
	summary+=("$(printf '%-10s %-9s rc=%-3s %4ss' "$name" "$verdict" "$rc" $(($(date +%s) - t0)))")
}

step nvidia-smi 30 . bash -c 'nvidia-smi && nvidia-smi --query-gpu=name,uuid,driver_version,memory.total,pci.bus_id --format=csv'
step go-env 10 . bash -c 'uname -a; (go version 2>/dev/null || echo "no go toolchain: using bin/gpu-check")'

if [ -x "$bin/gpu.test" ] && [ -x "$bin/spill.test" ] && [ -x "$bin/bench" ]; then
	echo "using the programs in $bin"
	step gpu-test 240 gpu "$bin/gpu.test" -test.v -test.count=1 -test.timeout=230s
	step spill-gpu 120 spill "$bin/spill.test" -test.v -test.count=1 -test.run '^TestGPUStack$' -test.timeout=110s
	step bench-gpu 180 . "$bin/bench" -suite gpu
else
	step gpu-test 300 . go test "${race[@]}" -v -count=1 -timeout=280s ./gpu
	step spill-gpu 180 . go test "${race[@]}" -v -count=1 -timeout=170s ./spill -run '^TestGPUStack$'
	step bench-gpu 240 . go run ./bench -suite gpu
fi

# A test that skipped for want of a GPU did not check anything: say so.
if [ -n "$out" ] && grep -hE -- '--- SKIP: (TestConformance|TestGPUStack)|^\(gpu skipped' \
	"$out"/gpu-test.txt "$out"/spill-gpu.txt "$out"/bench-gpu.txt 2>/dev/null; then
	summary+=("WARNING: a GPU check skipped (see above): the device was not used")
	failed=1
fi

echo
echo "==== summary ($(($(date +%s) - start))s of ${total}s)"
printf '%s\n' "${summary[@]}" | { [ -n "$out" ] && tee "$out/summary.txt" || cat; }
exit "$failed"
