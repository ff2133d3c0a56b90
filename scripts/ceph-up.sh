#!/usr/bin/env bash
# ceph-up.sh [DIR] — a throwaway single-node Ceph for distore's tests and benchmarks:
# 1 mon, 1 mgr, 1 OSD, radosgw on 127.0.0.1, a RADOS pool and an S3 user.
#
# All state lives under DIR (default: $DISTORE_CEPH_DIR, else /tmp/distore-ceph); no
# systemd; daemons run as the invoking user (root in CI) and keep pid files in
# DIR/run/*.pid. It writes DIR/env.sh; `source DIR/env.sh` exports:
#
#   DISTORE_CEPH_DIR      DIR itself (tests use it to stop/restart radosgw)
#   CEPH_CONF             DIR/ceph.conf (client.admin keyring under [client])
#   DISTORE_CEPH_USER     the RADOS user for the ceph tier ("admin")
#   DISTORE_CEPH_POOL     the RADOS pool for the ceph tier ("distore")
#   DISTORE_S3_ENDPOINT   http://127.0.0.1:$RGW_PORT  (also S3_ENDPOINT)
#   DISTORE_S3_BUCKET     a bucket name for tests ("distore-test"; created on first use)
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION   the S3 user's credentials
#
# Missing packages are installed from Debian (ceph-mon ceph-osd ceph-mgr radosgw
# ceph-common librados-dev, --no-install-recommends; curl; gcc and libc6-dev for cgo),
# with $DISTORE_APT_EXTRA (a caller's own packages) in the same apt-get run.
# The OSD is bluestore on a sparse file (DIR/osd.0/block, 8 GiB apparent, only written
# bytes take disk), because the tests write objects of 256 MiB and memstore keeps every
# byte in RAM without enforcing its size. OBJECTSTORE=memstore picks memstore instead.
#
# Ports (fixed, override by environment): MON_V2=3300 MON_V1=6789 RGW_PORT=7480.
#
# Idempotent: when the cluster in DIR is already up it only starts the daemons that are
# not running (so `ceph-down.sh DIR rgw; ceph-up.sh DIR` restarts radosgw), makes sure
# the pool and the user exist, and rewrites env.sh. A DIR whose mon is not running is
# wiped and the cluster made afresh.
set -euo pipefail
DIR=${1:-${DISTORE_CEPH_DIR:-/tmp/distore-ceph}}
DIR=$(realpath -m "$DIR")
MON_V2=${MON_V2:-3300}; MON_V1=${MON_V1:-6789}; RGW_PORT=${RGW_PORT:-7480}
OBJECTSTORE=${OBJECTSTORE:-bluestore}
POOL=${DISTORE_CEPH_POOL:-distore}
S3_ACCESS=DISTORETESTACCESS000
S3_SECRET=distoretestsecret0000000000000000000000
T0=$EPOCHREALTIME
ts() { printf '[%7.2fs] %s\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")" "$*"; }
C="$DIR/ceph.conf"
CEPH="ceph -c $C --connect-timeout 10"

# ---- packages -------------------------------------------------------------------------
need=()
for p in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph-mgr:ceph-mgr radosgw:radosgw \
  ceph:ceph-common rados:ceph-common radosgw-admin:ceph-common curl:curl gcc:gcc; do
  command -v "${p%%:*}" >/dev/null 2>&1 || need+=("${p#*:}")
done
[ -e /usr/include/rados/librados.h ] || need+=(librados-dev)
# gcc only recommends the C library headers that cgo needs
[ -e /usr/include/stdlib.h ] || need+=(libc6-dev)
# A caller's own packages join the same apt-get run (scripts/test.sh: etcd, Python's venv).
read -r -a extra <<<"${DISTORE_APT_EXTRA:-}"
need+=("${extra[@]}")
if [ ${#need[@]} -gt 0 ]; then
  mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
  ts "installing: ${need[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >"${TMPDIR:-/tmp}/distore-ceph-apt.log" 2>&1; then
    $SUDO apt-get update -q >>"${TMPDIR:-/tmp}/distore-ceph-apt.log" 2>&1
    $SUDO apt-get install -y -q --no-install-recommends "${need[@]}" >>"${TMPDIR:-/tmp}/distore-ceph-apt.log" 2>&1 ||
      { tail -20 "${TMPDIR:-/tmp}/distore-ceph-apt.log"; echo "ceph-up: apt-get install failed" >&2; exit 1; }
  fi
  ts "installed"
fi

alive() { [ -s "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }

write_env() {
  cat > "$DIR/env.sh" <<EOF
# written by scripts/ceph-up.sh; source it
export DISTORE_CEPH_DIR=$DIR
export CEPH_CONF=$C
export DISTORE_CEPH_USER=admin
export DISTORE_CEPH_POOL=$POOL
export DISTORE_S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
export DISTORE_S3_BUCKET=distore-test
export AWS_ACCESS_KEY_ID=$S3_ACCESS
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
export AWS_REGION=us-east-1
EOF
}

start_mgr() { alive mgr.x || ceph-mgr -c "$C" -i x 2>>"$DIR/log/mgr.x.stderr"; }
start_osd() {
  alive osd.0 || ceph-osd -c "$C" -i 0 2>>"$DIR/log/osd.0.stderr"
  local i
  for i in $(seq 1 300); do
    $CEPH osd stat -f json 2>/dev/null | grep -q '"num_up_osds":1' && return 0
    sleep 0.2
  done
  echo "ceph-up: osd.0 did not come up; see $DIR/log/osd.0.log" >&2; return 1
}
start_rgw() {
  alive client.rgw.a || radosgw -c "$C" -n client.rgw.a 2>>"$DIR/log/client.rgw.a.stderr"
  local i
  for i in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$RGW_PORT/" && return 0
    sleep 0.2
  done
  echo "ceph-up: radosgw not answering on 127.0.0.1:$RGW_PORT; see $DIR/log/client.rgw.a.log" >&2; return 1
}
ensure_pool_user() {
  if ! $CEPH osd pool ls | grep -qx "$POOL"; then
    $CEPH osd pool create "$POOL" 8 8 >/dev/null 2>&1
    $CEPH osd pool application enable "$POOL" rados >/dev/null 2>&1
  fi
  if ! radosgw-admin -c "$C" user info --uid=distore >/dev/null 2>&1; then
    radosgw-admin -c "$C" user create --uid=distore --display-name=distore-tests \
      --access-key="$S3_ACCESS" --secret-key="$S3_SECRET" >/dev/null
  fi
}

# ---- already up? ----------------------------------------------------------------------
if alive mon.a && $CEPH mon stat >/dev/null 2>&1; then
  ts "cluster in $DIR already up; starting what is not running"
  start_mgr; start_osd; start_rgw; ensure_pool_user; write_env
  ts "ready: source $DIR/env.sh"
  exit 0
fi

# ---- fresh cluster --------------------------------------------------------------------
if [ -d "$DIR/run" ]; then "$(dirname "$0")/ceph-down.sh" "$DIR" >/dev/null || true; fi
for port in "$MON_V2" "$MON_V1" "$RGW_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "ceph-up: 127.0.0.1:$port is in use (another cluster? stop it with ceph-down.sh on its DIR, or set MON_V2, MON_V1, RGW_PORT)" >&2
    exit 1
  fi
done
rm -rf "$DIR"; mkdir -p "$DIR"/{run,log,mon.a,mgr.x,osd.0,rgw.a}
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$C" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
# one node: size-1 pools, no redundancy warnings
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
auth allow insecure global id reclaim = false
# the root disk may be mostly used by other things
mon data avail warn = 2
mon data avail crit = 1
# without these each osdmap change waits ~1 s and radosgw needs ~16 s to start
paxos propose interval = 0.05
paxos min wait = 0.01

[client]
# here, not in [global]: a global keyring overrides each daemon's own
keyring = $DIR/keyring
# no admin socket for clients: two connections in one process would fight over it
admin socket =

[mon]
mon data = $DIR/mon.\$id
mon cluster log file = $DIR/log/cluster.log

[mgr]
mgr data = $DIR/mgr.\$id
mgr disabled modules = dashboard restful prometheus

[osd]
osd data = $DIR/osd.\$id
osd objectstore = $OBJECTSTORE
memstore device bytes = 2147483648
# sparse block file inside osd data (do not set bluestore block path)
bluestore block create = true
bluestore block size = 8589934592
bluestore fsck on mount = false
osd memory target = 1073741824
osd max object name len = 460
osd max object namespace len = 64
osd crush update on start = true

[client.rgw.a]
rgw data = $DIR/rgw.a
keyring = $DIR/rgw.a/keyring
admin socket = $DIR/run/\$name.asok
# tcp_nodelay: without it every small GET waits ~40 ms (Nagle against delayed ACK)
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT tcp_nodelay=1
rgw dns name = 127.0.0.1
rgw thread pool size = 128
# deleted objects' data is garbage-collected after 2 hours by default: the block
# file would fill up over a test or benchmark run
rgw gc obj min wait = 10
rgw gc processor period = 10
EOF

ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n client.admin \
  --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool "$DIR/mon.keyring" --import-keyring "$DIR/keyring" >/dev/null
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_V2,v1:127.0.0.1:$MON_V1]" "$DIR/monmap" >/dev/null
ceph-mon -c "$C" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring"
ceph-mon -c "$C" -i a
for i in $(seq 1 150); do $CEPH mon stat >/dev/null 2>&1 && break; sleep 0.2; done
$CEPH mon stat >/dev/null || { echo "ceph-up: mon did not start; see $DIR/log/mon.a.log" >&2; exit 1; }
ts "mon up"
$CEPH mon enable-msgr2 >/dev/null 2>&1 || true

$CEPH auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$DIR/mgr.x/keyring"
start_mgr
ts "mgr started"

OSD_UUID=$(cat /proc/sys/kernel/random/uuid); OSD_SECRET=$(ceph-authtool --gen-print-key)
OSD_ID=$(echo "{\"cephx_secret\": \"$OSD_SECRET\"}" | $CEPH osd new "$OSD_UUID" -i -)
[ "$OSD_ID" = 0 ] || { echo "ceph-up: expected osd.0, got osd.$OSD_ID" >&2; exit 1; }
ceph-authtool --create-keyring "$DIR/osd.0/keyring" --name osd.0 --add-key "$OSD_SECRET" >/dev/null
ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$OSD_UUID" >"$DIR/log/osd.0.mkfs.log" 2>&1 ||
  { cat "$DIR/log/osd.0.mkfs.log" >&2; echo "ceph-up: osd mkfs failed" >&2; exit 1; }
start_osd
ts "osd.0 up ($OBJECTSTORE)"

$CEPH auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$DIR/rgw.a/keyring"
start_rgw
ts "radosgw answering on 127.0.0.1:$RGW_PORT"
ensure_pool_user
write_env
ts "pool $POOL and S3 user ready: source $DIR/env.sh"
