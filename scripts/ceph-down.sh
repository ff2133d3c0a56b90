#!/usr/bin/env bash
# ceph-down.sh [DIR] [DAEMON...] — stop the daemons that scripts/ceph-up.sh started in
# DIR (default: $DISTORE_CEPH_DIR, else /tmp/distore-ceph), by their pid files only
# (SIGTERM, then SIGKILL after 10 s). With DAEMON names (rgw, osd, mgr, mon, or a pid
# file's name such as client.rgw.a) it stops only those, leaving the rest running:
# `ceph-down.sh DIR rgw` stops radosgw and `ceph-up.sh DIR` starts it again.
# Without names it stops everything; DIR is kept (remove it yourself, or let the next
# ceph-up.sh, which makes a fresh cluster when the mon is down, wipe it).
DIR=${1:-${DISTORE_CEPH_DIR:-/tmp/distore-ceph}}
shift || true
names=()
for n in "$@"; do
  case $n in
    rgw) names+=(client.rgw.a) ;;
    osd) names+=(osd.0) ;;
    mgr) names+=(mgr.x) ;;
    mon) names+=(mon.a) ;;
    *) names+=("$n") ;;
  esac
done
if [ ${#names[@]} -eq 0 ]; then
  # radosgw first, the mon last, so clients do not hang on a missing mon
  names=(client.rgw.a mgr.x osd.0 mon.a)
  for f in "$DIR"/run/*.pid; do
    [ -e "$f" ] || continue
    b=$(basename "$f" .pid)
    [[ " ${names[*]} " == *" $b "* ]] || names+=("$b")
  done
fi
# one at a time, waiting for each: radosgw hangs on SIGTERM if the mon goes first
for n in "${names[@]}"; do
  f="$DIR/run/$n.pid"
  [ -s "$f" ] || continue
  p=$(cat "$f")
  # a stale pid file may name a reused pid: only signal ceph daemons
  case $(cat "/proc/$p/comm" 2>/dev/null) in ceph-*|radosgw) ;; *) rm -f "$f"; continue ;; esac
  kill "$p" 2>/dev/null || { rm -f "$f"; continue; }
  echo "stopping $n (pid $p)"
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then echo "$n (pid $p) still alive after 10 s: SIGKILL"; kill -9 "$p" 2>/dev/null; sleep 0.2; fi
  rm -f "$f"
done
true
