#!/usr/bin/env bash
# The README's run command: builds the binaries once into bin/ (saying so
# while a first build fetches modules), then replaces itself with
# bin/distore-server, so signals (Ctrl-C, SIGTERM) and the exit status are the
# server's own. Arguments go to the server:
#
#   ./scripts/run.sh                          # memory,disk on 127.0.0.1:7070
#   ./scripts/run.sh --levels memory,disk --memory-capacity 4GiB
#   ./scripts/run.sh --help                   # its flags (docs/server-flags.md)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

# Fetch the modules not in the cache yet (a fresh machine), one line each as
# they arrive; nothing is printed when they are all there.
go mod download -x 2>&1 |
	sed -un 's|^# get .*/\(.*\)/@v/\(.*\)\.zip: 200 OK.*|\1@\2|p' |
	awk 'NR == 1 { print "run.sh: fetching Go modules (first build only)..." } { print "run.sh:   " $0; fflush() }' >&2 ||
	echo "run.sh: go mod download failed; the build below says why" >&2
echo "run.sh: building bin/distore-server and bin/distore" >&2
go build -o bin/ ./cmd/distore-server ./cmd/distore
exec bin/distore-server "$@"
