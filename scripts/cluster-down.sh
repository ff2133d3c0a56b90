#!/usr/bin/env bash
# cluster-down.sh [DIR] — stop what cluster-up.sh (or etcd-up.sh) started in
# DIR: the servers first (SIGTERM, then SIGKILL after 10 s), then etcd.
DIR=${1:-${TMPDIR:-/tmp}/distore-cluster}
stop() {
  local pid; pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || { rm -f "$1"; return 0; }
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$1"; return 0; }; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null; rm -f "$1"
}
for p in "$DIR"/n*/pid; do [ -e "$p" ] && stop "$p"; done
[ -e "$DIR/etcd.pid" ] && stop "$DIR/etcd.pid"
exit 0
