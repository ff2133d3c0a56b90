#!/usr/bin/env bash
# etcd-up.sh [DIR] — start a single-node etcd (Debian's etcd-server, or
# $DISTORE_ETCD) on free loopback ports, data in DIR/etcd. Prints the client
# URL; the pid is in DIR/etcd.pid, the URL in DIR/etcd.url. Stop it with
# cluster-down.sh DIR (or kill the pid).
set -euo pipefail
DIR=${1:-${TMPDIR:-/tmp}/distore-cluster}
ETCD=${DISTORE_ETCD:-$(command -v etcd || echo /usr/bin/etcd)}
[ -x "$ETCD" ] || { echo "etcd-up: no etcd binary (apt-get install etcd-server, or set DISTORE_ETCD)" >&2; exit 1; }
mkdir -p "$DIR"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CP=$(freeport); PP=$(freeport)
CU=http://127.0.0.1:$CP; PU=http://127.0.0.1:$PP
"$ETCD" --name n1 --data-dir "$DIR/etcd" \
  --listen-client-urls "$CU" --advertise-client-urls "$CU" \
  --listen-peer-urls "$PU" --initial-advertise-peer-urls "$PU" \
  --initial-cluster "n1=$PU" --initial-cluster-state new --log-level warn >"$DIR/etcd.log" 2>&1 &
echo $! >"$DIR/etcd.pid"
echo "$CU" >"$DIR/etcd.url"
for _ in $(seq 1 200); do
  if curl -fsS --max-time 1 "$CU/health" >/dev/null 2>&1; then echo "$CU"; exit 0; fi
  kill -0 "$(cat "$DIR/etcd.pid")" 2>/dev/null || break
  sleep 0.05
done
echo "etcd-up: etcd did not become healthy; log:" >&2; cat "$DIR/etcd.log" >&2; exit 1
