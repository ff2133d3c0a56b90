"""The local socket protocol (docs/local.md): frames, the arena mapping,
references. Mirrors distore/wire/localproto."""

import collections
import mmap
import os
import socket
import struct
import threading
import time
import zlib

from . import errors

VERSION = 1
HEADER = struct.Struct("<IB3x")
MAX_PAYLOAD = 128 << 10
MAX_INLINE = 64 << 10
NO_OFFSET = (1 << 64) - 1

# A reply is awaited by polling the socket for up to SPIN seconds before
# blocking in the kernel: on a machine with a core to spare, the wake-up of
# a blocked process costs about as much as the server's whole answer (on the
# virtual machines measured, a round trip went from 55 to 40 µs). Never on
# one core, where spinning would keep the server from running.
SPIN = 50e-6 if (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) > 1 else 0.0
# Releases wait to go out with the next request (one send, not two), at
# most PENDING_RELEASES of them, or until the idle timer runs.
PENDING_RELEASES = 64

OP_HELLO, OP_MAP_WRITE, OP_GET, OP_RELEASE, OP_CREATE, OP_WRITE, OP_SEAL, OP_ABORT = 1, 2, 3, 4, 5, 6, 7, 8
OP_PUT_INLINE, OP_DELETE, OP_PIN, OP_UNPIN, OP_PREFETCH, OP_INFO = 9, 10, 11, 12, 13, 14
OP_REGISTER_GROUP, OP_SPREAD, OP_EPOCHS, OP_WRITTEN, OP_PUT_REF, OP_SELECT, OP_SCHEMA = 15, 16, 17, 18, 19, 20, 21
REPLY_OK, REPLY_ERROR, REPLY_HELLO, REPLY_OBJECT, REPLY_CREATED, REPLY_INFO, REPLY_CHUNK = 64, 65, 66, 67, 68, 69, 70

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_REF_OFF = struct.Struct("<QQ")
_GET_HDR = struct.Struct("<IB3xI")  # header + the ID string's length
_RELEASE = struct.Struct("<IB3xQ")  # header + the reference
_PUT_INLINE = struct.Struct("<qII")  # importance, checksum (0: the server computes it), size
_INFO_TAIL = struct.Struct("<qIqqI")  # importance, pins, created, accessed, checksum


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return _U32.pack(len(b)) + b


class Info(dict):
    """An object's metadata: id, size, level (bit set: 1 gpu, 2 memory, 4 disk,
    8 remote), tier, importance, pins, created and accessed (unix nanoseconds
    on the local socket, RFC 3339 strings over HTTP), checksum (CRC-32C)."""

    __getattr__ = dict.__getitem__


def _info(p, o):
    (n,) = _U32.unpack_from(p, o)
    o += 4
    oid = bytes(p[o:o + n]).decode()
    o += n
    size, level = struct.unpack_from("<QB", p, o)
    o += 9
    (n,) = _U32.unpack_from(p, o)
    o += 4
    tier = bytes(p[o:o + n]).decode()
    o += n
    imp, pins, created, accessed, crc = _INFO_TAIL.unpack_from(p, o)
    return Info(id=oid, size=size, level=level, tier=tier, importance=imp, pins=pins,
                created=created, accessed=accessed, checksum=crc)


# Kept references (docs/local.md, "Cached references"): as the Go client.
CACHE_MAX_IDLE = 256
CACHE_MAX_IDLE_BYTES = 64 << 20
CACHE_IDLE_TTL = 0.5


class _Ref:
    """A server reference, shared by the gets of one object: the first, and
    those answered from it while the ID's delete epoch is unchanged."""

    __slots__ = ("oid", "ref", "off", "size", "info", "slot", "epoch", "users", "since", "detached")

    def __init__(self, oid, ref, off, info, slot, epoch):
        self.oid, self.ref, self.off, self.size, self.info = oid, ref, off, info["size"], info
        self.slot, self.epoch, self.users, self.since, self.detached = slot, epoch, 1, 0.0, False


class LocalConn:
    """One connection to the local socket, with the arena mapped read-only.
    Not thread-safe: the Client serializes calls with `lock`, which the idle
    reference timer takes too."""

    def __init__(self, path, timeout=60.0, lock=None):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
            # Blocking mode, with the kernel's own timeouts: Python's socket
            # timeout polls before every receive, a system call and a wake-up
            # more per request (a round trip took a third longer).
            self.timeout = timeout
            if timeout is not None:
                tv = struct.pack("ll", int(timeout), int(timeout % 1 * 1e6))
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
            self.sock.settimeout(None)
        except OSError as e:
            self.sock.close()
            raise errors.Unavailable("distore local socket %s: %s" % (path, e)) from e
        self.buf = bytearray(HEADER.size + MAX_PAYLOAD)
        self.pending = []  # release frames not sent yet
        self.wview = None
        self.wmm = None
        try:
            p, fd = self._call("hello", OP_HELLO, _U32.pack(VERSION), want_fd=True)
            try:
                _, size = struct.unpack_from("<IQ", p, 0)
                self.mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
            finally:
                os.close(fd)
        except BaseException:
            self.sock.close()
            raise
        self.view = memoryview(self.mm)
        self.size = size
        self.lock = lock or threading.Lock()
        self.cache = {}  # object ID -> _Ref
        self.idle = collections.OrderedDict()  # _Ref -> None, oldest first
        self.idle_bytes = 0
        self.timer = None
        self.epochs = self.emm = None
        self._map_epochs()

    def _map_epochs(self):
        try:
            p, fd = self._call("epochs", OP_EPOCHS, b"", want_fd=True)
        except errors.DistoreError:
            return  # not offered: every get asks the server
        try:
            (slots,) = _U32.unpack_from(p, 0)
            if slots <= 0 or slots > 1 << 20 or slots & (slots - 1):
                return
            self.emm = mmap.mmap(fd, slots * 8, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        self.epochs = memoryview(self.emm).cast("Q")
        self.slot_mask = slots - 1

    def close(self):
        if self.timer is not None:
            self.timer.cancel()
        self.cache.clear()
        self.idle.clear()
        self.sock.close()
        # The mappings stay while memoryviews from them live; mmap.close would
        # raise BufferError then, and the memory goes with the last view.
        if self.epochs is not None:
            self.epochs.release()
            self.epochs = None
        for m in (self.mm, self.wmm, self.emm):
            if m is not None:
                try:
                    m.close()
                except BufferError:
                    pass

    # -- framing

    def _send(self, op, payload):
        self._sendall(HEADER.pack(len(payload), op), payload)

    def _sendall(self, *parts):
        """Send the pending releases and parts in one system call."""
        if self.pending:
            parts = self.pending + list(parts)
            self.pending = []
        try:
            sent = self.sock.sendmsg(parts)
            total = sum(len(p) for p in parts)
            if sent < total:  # interrupted part-way: the rest, the slow way
                self.sock.sendall(b"".join(bytes(p) for p in parts)[sent:])
        except (BlockingIOError, TimeoutError) as e:
            raise self._timed_out("sending a request") from e

    def _timed_out(self, what):
        return errors.Unavailable("distore local socket %s: %s took more than %ss (the server is not answering)"
                                  % (self.path, what, self.timeout))

    def _recv(self, want_fd=False):
        """Read one reply frame: (kind, payload memoryview, fd or -1)."""
        buf, n, fd = self.buf, 0, -1
        mv = memoryview(buf)
        while True:
            f = _frame(buf, n)
            if f is not None:
                kind, end = f
                return kind, mv[HEADER.size:end], fd
            try:
                if want_fd and fd < 0:
                    msg, fds, _, _ = socket.recv_fds(self.sock, len(buf) - n, 4)
                    for extra in fds[1:]:
                        os.close(extra)
                    if fds:
                        fd = fds[0]
                    k = len(msg)
                    buf[n:n + k] = msg
                else:
                    k = -1
                    if SPIN:
                        until = time.perf_counter() + SPIN
                        while True:
                            try:
                                k = self.sock.recv_into(mv[n:], 0, socket.MSG_DONTWAIT)
                                break
                            except BlockingIOError:
                                if time.perf_counter() > until:
                                    break
                    if k < 0:
                        k = self.sock.recv_into(mv[n:])
            except (BlockingIOError, TimeoutError) as e:
                if fd >= 0:
                    os.close(fd)
                raise self._timed_out("waiting for a reply") from e
            if k == 0:
                raise errors.Unavailable("distore local socket %s: the server closed the connection" % self.path)
            n += k

    def _call(self, op_name, op, payload, want_fd=False, object_id=None):
        self._send(op, payload)
        kind, p, fd = self._recv(want_fd)
        if kind == REPLY_ERROR:
            if fd >= 0:
                os.close(fd)
            raise _error(p, op_name, object_id)
        if want_fd:
            if fd < 0:
                raise errors.ProtocolError("%s: the server sent no descriptor" % op_name)
            return p, fd
        return p

    # -- operations

    def get(self, oid):
        """Return (ref, memoryview of the object's bytes in the mapping, info);
        release(ref) ends the use. A reference kept from an earlier get
        answers without a request while the ID's delete epoch is unchanged."""
        r = self.cache.get(oid)
        if r is not None:
            if self.epochs[r.slot] == r.epoch:
                if r.users == 0:
                    del self.idle[r]
                    self.idle_bytes -= r.size
                r.users += 1
                return r, self.view[r.off:r.off + r.size], r.info
            self._detach(r)
        b = oid.encode()
        slot = epoch = 0
        if self.epochs is not None:
            slot = zlib.crc32(b) & self.slot_mask
            epoch = self.epochs[slot]  # before the request: a delete after it shows
        self._sendall(_GET_HDR.pack(4 + len(b), OP_GET, len(b)), b)
        kind, p, _ = self._recv()
        if kind == REPLY_ERROR:
            raise _error(p, "get", oid)
        ref, off = _REF_OFF.unpack_from(p, 0)
        info = _info(p, 16)
        size = info["size"]
        if off + size > self.size:
            raise errors.ProtocolError("get %r: object at %d+%d outside the arena" % (oid, off, size))
        r = _Ref(oid, ref, off, info, slot, epoch)
        self._keep(r)
        return r, self.view[off:off + size], info

    def _keep(self, r):
        """Record a new reference for gets of its ID again (without the epoch
        table: released at its last use)."""
        if self.epochs is None:
            r.detached = True
            return
        old = self.cache.get(r.oid)
        if old is not None:
            self._detach(old)
        self.cache[r.oid] = r

    def release(self, r):
        """End one use of a get's reference: released, or kept a while."""
        r.users -= 1
        if r.users > 0:
            return
        if r.detached:
            self._send_release(r.ref)
            return
        r.since = time.monotonic()
        self.idle[r] = None
        self.idle_bytes += r.size
        while len(self.idle) > CACHE_MAX_IDLE or self.idle_bytes > CACHE_MAX_IDLE_BYTES:
            self._detach(next(iter(self.idle)))
        if self.timer is None:
            self._arm(CACHE_IDLE_TTL)

    def release_cached(self, oid=None):
        """Release the kept references no get uses (of oid, or all)."""
        if oid is not None:
            r = self.cache.get(oid)
            if r is not None:
                self._detach(r)
            return
        while self.idle:
            self._detach(next(iter(self.idle)))

    def _detach(self, r):
        if self.cache.get(r.oid) is r:
            del self.cache[r.oid]
        r.detached = True
        if r.users == 0 and r in self.idle:
            del self.idle[r]
            self.idle_bytes -= r.size
            self._send_release(r.ref)

    def _send_release(self, ref):
        self.pending.append(_RELEASE.pack(8, OP_RELEASE, ref))
        if len(self.pending) >= PENDING_RELEASES:
            self._sendall()
        elif self.timer is None:
            self._arm(CACHE_IDLE_TTL)

    def _arm(self, delay):
        self.timer = threading.Timer(delay, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self):
        with self.lock:
            if self.sock.fileno() < 0:
                self.timer = None
                return
            now, wait = time.monotonic(), None
            try:
                while self.idle:
                    r = next(iter(self.idle))
                    wait = CACHE_IDLE_TTL - (now - r.since)
                    if wait > 0:
                        break
                    wait = None
                    self._detach(r)  # self.timer is still set: no new timer
                if self.pending:
                    self._sendall()
            except (OSError, errors.DistoreError):
                return  # the connection is gone: the server released all
            finally:
                self.timer = None
            if wait is not None:
                self._arm(wait)

    def put(self, data, oid, importance):
        mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
        n = len(mv)
        if n <= MAX_INLINE:
            if self.epochs is None:
                p = self._call("put", OP_PUT_INLINE, _str(oid) + _PUT_INLINE.pack(importance, 0, n) + bytes(mv),
                               object_id=oid or None)
                return _info(p, 0)
            # Keep the reference the server takes, for a get of this put.
            head = _str(oid) + _PUT_INLINE.pack(importance, 0, n)
            self._sendall(HEADER.pack(len(head) + n, OP_PUT_REF) + head, mv)
            kind, p, _ = self._recv()
            if kind == REPLY_ERROR:
                raise _error(p, "put", oid or None)
            if kind == REPLY_INFO:
                return _info(p, 0)
            if kind != REPLY_OBJECT:
                raise errors.ProtocolError("put: reply kind %d" % kind)
            ref, off = _REF_OFF.unpack_from(p, 0)
            info = _info(p, 16)
            (epoch,) = _U64.unpack_from(p, len(p) - 8)
            if off + info["size"] > self.size:
                raise errors.ProtocolError("put: object at %d+%d outside the arena" % (off, info["size"]))
            r = _Ref(info["id"], ref, off, info, zlib.crc32(info["id"].encode()) & self.slot_mask, epoch)
            self._keep(r)
            self.release(r)  # kept, idle
            return info
        p = self._call("put", OP_CREATE, _str(oid) + struct.pack("<Qq", n, importance), object_id=oid or None)
        handle, off = _REF_OFF.unpack_from(p, 0)
        (k,) = _U32.unpack_from(p, 16)
        oid = bytes(p[20:20 + k]).decode()
        try:
            if off == NO_OFFSET:  # it landed below memory: send the bytes
                for i in range(0, n, MAX_INLINE):
                    chunk = bytes(mv[i:i + MAX_INLINE])
                    self._call("put", OP_WRITE, _U64.pack(handle) + _U32.pack(len(chunk)) + chunk, object_id=oid)
            else:
                if self.wview is None:
                    _, fd = self._call("map_write", OP_MAP_WRITE, b"", want_fd=True)
                    try:
                        self.wmm = mmap.mmap(fd, self.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                    finally:
                        os.close(fd)
                    self.wview = memoryview(self.wmm)
                if off + n > self.size:
                    raise errors.ProtocolError("put: room at %d+%d outside the arena" % (off, n))
                self.wview[off:off + n] = mv  # the one copy, straight into the store
        except BaseException:
            try:
                self._call("abort", OP_ABORT, _U64.pack(handle), object_id=oid)
            except errors.DistoreError:
                pass
            raise
        p = self._call("seal", OP_SEAL, _U64.pack(handle) + _U32.pack(0), object_id=oid)
        return _info(p, 0)

    def select(self, oid, columns, rows):
        """The columns ("a,c"; "" for all) and rows ("start:end"; "" for all)
        of an Arrow object, as the bytes of an Arrow IPC stream."""
        return self._stream("get_columns", OP_SELECT, _str(oid) + _str(columns) + _str(rows), oid)

    def schema(self, oid):
        """The schema of an Arrow object, as an Arrow IPC stream."""
        return self._stream("schema", OP_SCHEMA, _str(oid), oid)

    def _stream(self, op_name, op, payload, oid):
        """Send a request whose reply is streamed: chunk frames, then ok (or
        an error, the chunks then void). Several frames may arrive in one
        receive, so this reads them from its own buffer."""
        self._send(op, payload)
        buf, n, out = self.buf, 0, []
        mv = memoryview(buf)
        try:
            while True:
                while True:
                    f = _frame(buf, n)
                    if f is None:
                        break
                    kind, end = f
                    p = mv[HEADER.size:end]
                    if kind == REPLY_ERROR:
                        raise _error(p, op_name, oid)
                    if kind == REPLY_OK:
                        if n > end:
                            raise errors.ProtocolError("%s: %d bytes after the reply" % (op_name, n - end))
                        return b"".join(out)
                    if kind != REPLY_CHUNK:
                        raise errors.ProtocolError("%s: reply kind %d in a stream" % (op_name, kind))
                    (k,) = _U32.unpack_from(p, 0)
                    if HEADER.size + 4 + k != end:
                        raise errors.ProtocolError("%s: chunk of %d bytes in a frame of %d" % (op_name, k, end - HEADER.size))
                    out.append(bytes(p[4:]))
                    buf[:n - end] = buf[end:n]
                    n -= end
                k = self.sock.recv_into(mv[n:])
                if k == 0:
                    raise errors.Unavailable("distore local socket %s: the server closed the connection" % self.path)
                n += k
        except (BlockingIOError, TimeoutError) as e:
            raise self._timed_out("waiting for a reply") from e

    def simple(self, op_name, op, oid, *extra):
        return self._call(op_name, op, _str(oid) + bytes(extra), object_id=oid)

    def info(self, oid):
        return _info(self._call("info", OP_INFO, _str(oid), object_id=oid), 0)


def _frame(buf, n):
    """(kind, end) of the frame at the start of buf[:n], or None while it
    is incomplete."""
    if n < HEADER.size:
        return None
    length, kind = HEADER.unpack_from(buf, 0)
    if length > MAX_PAYLOAD:
        raise errors.ProtocolError("reply frame of %d bytes exceeds the limit" % length)
    end = HEADER.size + length
    return (kind, end) if n >= end else None


def _error(p, op, oid):
    (n,) = _U32.unpack_from(p, 0)
    code = bytes(p[4:4 + n]).decode()
    o = 4 + n
    (n,) = _U32.unpack_from(p, o)
    msg = bytes(p[o + 4:o + 4 + n]).decode(errors="replace")
    o += 4 + n
    requested, free, capacity, pinned = struct.unpack_from("<QQQQ", p, o)
    return errors.from_code(code, msg, op, oid, requested, free, capacity, pinned)
