#!/usr/bin/env bash
# cluster-up.sh N [DIR] — a local test cluster: etcd plus N distore-servers on
# free loopback ports, data and logs under DIR (default $TMPDIR/distore-cluster).
# Prints one server address a line (also in DIR/addrs). Stop it with
# cluster-down.sh DIR.
#
#   ETCD=embed       the first server runs an embedded etcd instead of Debian's etcd-server
#   GROUP=actor      every server joins the group (GROUP="a b": several)
#   SERVER_BIN=path  use this binary (default: go build ./cmd/distore-server)
#   LEASE_TTL=5s     the lease TTL; EXTRA="--levels memory" more flags
set -euo pipefail
N=${1:?usage: cluster-up.sh N [DIR]}
DIR=${2:-${TMPDIR:-/tmp}/distore-cluster}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
BIN=${SERVER_BIN:-}
if [ -z "$BIN" ]; then
  BIN=$DIR/distore-server
  (cd "$ROOT" && go build -o "$BIN" ./cmd/distore-server)
fi
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
groups=()
for g in ${GROUP:-}; do groups+=(--group "$g"); done
if [ "${ETCD:-}" = embed ]; then
  EADDR=127.0.0.1:$(freeport)
  ETCDARG="embed=$EADDR"; URL=http://$EADDR
else
  URL=$("$ROOT/scripts/etcd-up.sh" "$DIR")
  ETCDARG=$URL
fi
: >"$DIR/addrs"
for i in $(seq 1 "$N"); do
  d=$DIR/n$i; mkdir -p "$d"
  arg=$URL; [ "$i" = 1 ] && arg=$ETCDARG
  # shellcheck disable=SC2086
  "$BIN" --listen 127.0.0.1:0 --data-dir "$d" --etcd "$arg" --node-id "n$i" \
    --lease-ttl "${LEASE_TTL:-5s}" --memory-capacity 256MiB "${groups[@]}" ${EXTRA:-} >"$d/log" 2>&1 &
  echo $! >"$d/pid"
  addr=
  for _ in $(seq 1 300); do
    addr=$(sed -n 's/.*msg="distore-server listening" addr=\([^ ]*\).*/\1/p' "$d/log" | head -1)
    [ -n "$addr" ] && break
    kill -0 "$(cat "$d/pid")" 2>/dev/null || { echo "cluster-up: server n$i exited:" >&2; cat "$d/log" >&2; exit 1; }
    sleep 0.05
  done
  [ -n "$addr" ] || { echo "cluster-up: server n$i did not start:" >&2; cat "$d/log" >&2; exit 1; }
  echo "$addr" >>"$DIR/addrs"
  echo "n$i http://$addr"
done
echo "etcd $URL"
