"""The local socket protocol (docs/local.md): frames, the arena mapping,
references. Mirrors distore/wire/localproto."""

import mmap
import os
import socket
import struct

from . import errors

VERSION = 1
HEADER = struct.Struct("<IB3x")
MAX_PAYLOAD = 128 << 10
MAX_INLINE = 64 << 10
NO_OFFSET = (1 << 64) - 1

OP_HELLO, OP_MAP_WRITE, OP_GET, OP_RELEASE, OP_CREATE, OP_WRITE, OP_SEAL, OP_ABORT = 1, 2, 3, 4, 5, 6, 7, 8
OP_PUT_INLINE, OP_DELETE, OP_PIN, OP_UNPIN, OP_PREFETCH, OP_INFO = 9, 10, 11, 12, 13, 14
OP_REGISTER_GROUP, OP_SPREAD = 15, 16
REPLY_OK, REPLY_ERROR, REPLY_HELLO, REPLY_OBJECT, REPLY_CREATED, REPLY_INFO = 64, 65, 66, 67, 68, 69

_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_REF_OFF = struct.Struct("<QQ")
_GET_HDR = struct.Struct("<IB3xI")  # header + the ID string's length
_INFO_TAIL = struct.Struct("<qIqqI")  # importance, pins, created, accessed, checksum


def _str(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return _U32.pack(len(b)) + b


class Info(dict):
    """An object's metadata: id, size, level, tier, importance, pins, created
    and accessed (unix nanoseconds), checksum (CRC-32C)."""

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


class LocalConn:
    """One connection to the local socket, with the arena mapped read-only.
    Not thread-safe: the Client serializes calls."""

    def __init__(self, path, timeout=60.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise errors.Unavailable("distore local socket %s: %s" % (path, e)) from e
        self.buf = bytearray(HEADER.size + MAX_PAYLOAD)
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

    def close(self):
        self.sock.close()
        # The mappings stay while memoryviews from them live; mmap.close would
        # raise BufferError then, and the memory goes with the last view.
        for m in (self.mm, self.wmm):
            if m is not None:
                try:
                    m.close()
                except BufferError:
                    pass

    # -- framing

    def _send(self, op, payload):
        self.sock.sendall(HEADER.pack(len(payload), op) + payload)

    def _recv(self, want_fd=False):
        """Read one reply frame: (kind, payload memoryview, fd or -1)."""
        buf, n, fd = self.buf, 0, -1
        mv = memoryview(buf)
        while True:
            if n >= HEADER.size:
                length, kind = HEADER.unpack_from(buf, 0)
                if length > MAX_PAYLOAD:
                    raise errors.ProtocolError("reply frame of %d bytes exceeds the limit" % length)
                end = HEADER.size + length
                if n >= end:
                    return kind, mv[HEADER.size:end], fd
            if want_fd and fd < 0:
                msg, fds, _, _ = socket.recv_fds(self.sock, len(buf) - n, 4)
                for extra in fds[1:]:
                    os.close(extra)
                if fds:
                    fd = fds[0]
                k = len(msg)
                buf[n:n + k] = msg
            else:
                k = self.sock.recv_into(mv[n:])
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
        """Return (ref, memoryview of the object's bytes in the mapping, info)."""
        b = oid.encode()
        self.sock.sendall(_GET_HDR.pack(4 + len(b), OP_GET, len(b)) + b)
        kind, p, _ = self._recv()
        if kind == REPLY_ERROR:
            raise _error(p, "get", oid)
        ref, off = _REF_OFF.unpack_from(p, 0)
        info = _info(p, 16)
        size = info["size"]
        if off + size > self.size:
            raise errors.ProtocolError("get %r: object at %d+%d outside the arena" % (oid, off, size))
        return ref, self.view[off:off + size], info

    def release(self, ref):
        self.sock.sendall(HEADER.pack(8, OP_RELEASE) + _U64.pack(ref))

    def put(self, data, oid, importance):
        mv = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
        n = len(mv)
        if n <= MAX_INLINE:
            p = self._call("put", OP_PUT_INLINE, _str(oid) + struct.pack("<qI", importance, 0) + _U32.pack(n) + bytes(mv),
                           object_id=oid or None)
            return _info(p, 0)
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

    def simple(self, op_name, op, oid, *extra):
        return self._call(op_name, op, _str(oid) + bytes(extra), object_id=oid)

    def info(self, oid):
        return _info(self._call("info", OP_INFO, _str(oid), object_id=oid), 0)


def _error(p, op, oid):
    (n,) = _U32.unpack_from(p, 0)
    code = bytes(p[4:4 + n]).decode()
    o = 4 + n
    (n,) = _U32.unpack_from(p, o)
    msg = bytes(p[o + 4:o + 4 + n]).decode(errors="replace")
    o += 4 + n
    requested, free, capacity, pinned = struct.unpack_from("<QQQQ", p, o)
    return errors.from_code(code, msg, op, oid, requested, free, capacity, pinned)
