"""distore's Python client, with DI-store's API.

    import distore
    with distore.Client("unix:///var/lib/distore/distore.sock") as c:
        ref = c.put(b"...", importance=5)
        view = c.get(ref)   # a memoryview over the server's shared memory: no copy

On the local socket a get is zero-copy: the memoryview aliases the server's
memory arena, mapped read-only, and the object is neither freed nor moved
until the reference is released (release(), the context manager's exit,
close(), or the process's end). Over HTTP (a remote server) get returns a
memoryview over a copy. Standard library only; Python 3.9+.
"""

import os
import threading

from . import _http, _local
from .errors import (BadRange, Closed, Corrupt, DistoreError, Exists, Full, InvalidArgument, InvalidID, NotArrow,
                     NotFound, NotPinned, Pinned, ProtocolError, Timeout, TooLarge, Unavailable, UnknownColumn,
                     Unsupported)

__all__ = ["Client", "ObjectRef", "Info", "DistoreError", "NotFound", "Exists", "Full", "TooLarge", "Pinned",
           "NotPinned", "InvalidID", "InvalidArgument", "UnknownColumn", "BadRange", "NotArrow", "Corrupt",
           "Unavailable", "Unsupported", "Closed", "Timeout", "ProtocolError"]

Info = _local.Info


class ObjectRef(str):
    """A reference to an object: its ID (a str), with the info the put returned."""

    info = None

    @property
    def object_id(self):
        return str(self)


def _ref(info):
    r = ObjectRef(info["id"])
    r.info = info
    return r


def _ids(refs):
    if isinstance(refs, (str, bytes)):
        return [refs.decode() if isinstance(refs, bytes) else str(refs)]
    return [str(r) for r in refs]


class Client:
    """A client of one distore server.

    address: "unix:///path/distore.sock" or a socket path (the local socket:
    zero-copy), or "http://host:port" (a remote server). Default: the
    DISTORE_ADDRESS environment variable.
    """

    def __init__(self, address=None, timeout=60.0, token=None):
        address = address or os.environ.get("DISTORE_ADDRESS")
        if not address:
            raise InvalidArgument("no address: pass unix:///path/distore.sock or http://host:port, or set DISTORE_ADDRESS")
        self.address = address
        self._lock = threading.Lock()
        self._held = {}  # object ID -> [server references]
        self._pins = {}  # object ID -> pins this connection made (not durable)
        self._local = self._http = None
        if address.startswith("unix://") or address.startswith("/") or address.endswith(".sock"):
            self._local = _local.LocalConn(address[len("unix://"):] if address.startswith("unix://") else address, timeout,
                                           self._lock)
        else:
            self._http = _http.HTTPConn(address, timeout, token or os.environ.get("DISTORE_TOKEN"))

    @property
    def is_local(self):
        """True when gets are zero-copy (the local socket)."""
        return self._local is not None

    # -- context manager: releases every reference, closes the connection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Release every reference and close the connection (the server
        releases what it held, and the pins this client made, on its own)."""
        with self._lock:
            self._held.clear()
            if self._local is not None:
                self._local.close()
            if self._http is not None:
                self._http.close()

    # -- DI-store's calls

    def put(self, data, object_id=None, importance=0, prefetch_group=None):
        """Store data (bytes, bytearray, memoryview, a numpy array: anything
        with the buffer protocol) and return its ObjectRef. prefetch_group
        (cluster servers only) then spreads it, in the background, to every
        server of that group; spread_status(ref) says where it has reached.
        If the spread cannot start, the error says so: the object is stored."""
        with self._lock:
            if self._local is not None:
                info = self._local.put(data, object_id or "", int(importance))
            else:
                info = self._http.put(memoryview(data).cast("B"), object_id, int(importance))
            if prefetch_group:
                self._spread("put", info["id"], group=prefetch_group)
        return _ref(info)

    def get(self, ref):
        """Return the object's bytes as a read-only memoryview.

        Local socket: zero-copy, valid until the reference is released
        (release(ref), the with block's end, close()). HTTP: a copy."""
        oid = str(ref)
        with self._lock:
            if self._local is None:
                return memoryview(self._http.get(oid)).toreadonly()
            sref, view, _ = self._local.get(oid)
            self._held.setdefault(oid, []).append(sref)
        return view

    def get_bytes(self, ref):
        """Return a copy of the object's bytes, holding nothing."""
        oid = str(ref)
        with self._lock:
            if self._local is None:
                return self._http.get(oid)
            sref, view, _ = self._local.get(oid)
            try:
                return bytes(view)
            finally:
                view.release()
                self._local.release(sref)

    def release(self, ref=None):
        """Release the references get took on ref (all objects if None). The
        memoryviews of those gets must not be used afterwards: the server may
        then free or move the bytes."""
        with self._lock:
            if self._local is None:
                return
            ids = list(self._held) if ref is None else _ids(ref)
            for oid in ids:
                for sref in self._held.pop(oid, ()):
                    self._local.release(sref)
            if ref is None:
                self._local.release_cached()  # the references kept for a get again, too

    def delete(self, refs):
        """Delete one object or a list of them. Objects read in place keep
        their bytes until released."""
        with self._lock:
            for oid in _ids(refs):
                if self._local is not None:
                    self._local.release_cached(oid)  # a kept reference would hold the bytes
                    self._local.simple("delete", _local.OP_DELETE, oid)
                else:
                    self._http.delete(oid)

    def pin(self, refs, durable=False, ttl=None):
        """Pin objects: never spilled nor deleted. Over the local socket a pin
        belongs to this connection (taken away when it closes) unless
        durable. Over HTTP pins are durable; ttl ("30s") ends one by itself."""
        with self._lock:
            for oid in _ids(refs):
                if self._local is not None:
                    self._local.simple("pin", _local.OP_PIN, oid, 1 if durable else 0)
                    if not durable:
                        self._pins[oid] = self._pins.get(oid, 0) + 1
                else:
                    self._http.action("pin", oid, {"ttl": ttl} if ttl else None)

    def unpin(self, refs):
        """Take a pin away: one this connection made if any, else a durable one."""
        with self._lock:
            for oid in _ids(refs):
                if self._local is not None:
                    own = self._pins.get(oid, 0) > 0
                    self._local.simple("unpin", _local.OP_UNPIN, oid, 0 if own else 1)
                    if own:
                        self._pins[oid] -= 1
                else:
                    self._http.action("unpin", oid)

    def prefetch(self, refs, nodes=None):
        """Bring objects into the server's fastest tier (from a peer, in a
        cluster). nodes (a list of server IDs; cluster servers, over HTTP)
        instead spreads each object, which this server must hold, to those
        servers in the background (spread_status says where it has reached)."""
        with self._lock:
            for oid in _ids(refs):
                if nodes is not None:
                    self._spread("prefetch", oid, nodes=list(nodes))
                elif self._local is not None:
                    self._local.simple("prefetch", _local.OP_PREFETCH, oid)
                else:
                    self._http.action("prefetch", oid)

    def register_group(self, group):
        """Make this server a member of prefetch group `group` (cluster servers)."""
        with self._lock:
            try:
                if self._local is not None:
                    self._local.simple("register_group", _local.OP_REGISTER_GROUP, group)
                else:
                    self._http.cluster("register_group", "POST", "groups/%s/join" % _http.quote(group))
            except DistoreError as e:
                raise _no_cluster("register_group", e)

    def unregister_group(self, group):
        """Take this server out of prefetch group `group` (cluster servers, over HTTP)."""
        with self._lock:
            self._http_only("unregister_group")
            try:
                self._http.cluster("unregister_group", "POST", "groups/%s/leave" % _http.quote(group))
            except DistoreError as e:
                raise _no_cluster("unregister_group", e)

    def nodes(self):
        """The cluster as this server sees it (over HTTP): a dict with self,
        healthy (False while it cannot reach etcd; error says why), lease_ttl
        and members (each: id, addr, tiers, capacity, groups)."""
        with self._lock:
            self._http_only("nodes")
            try:
                return self._http.cluster("nodes", "GET", "nodes")
            except DistoreError as e:
                raise _no_cluster("nodes", e)

    def groups(self):
        """Each prefetch group's members, {group: [server ID, ...]} (over HTTP)."""
        with self._lock:
            self._http_only("groups")
            try:
                return self._http.cluster("groups", "GET", "groups").get("groups") or {}
            except DistoreError as e:
                raise _no_cluster("groups", e)

    def spread_status(self, ref):
        """Where the last spread of ref started on this server has reached
        (over HTTP): a dict with targets, reached, failed, done and error."""
        oid = str(ref)
        with self._lock:
            self._http_only("spread_status")
            try:
                return self._http.cluster("spread_status", "GET", "spreads/" + _http.quote(oid), object_id=oid)
            except DistoreError as e:
                raise _no_cluster("spread_status", e)

    def info(self, ref):
        """Return the object's metadata (an Info dict)."""
        with self._lock:
            if self._local is not None:
                return self._local.info(str(ref))
            return self._http.info(str(ref))

    # -- columnar reads of Arrow objects (docs/columnar.md)

    def get_columns(self, ref, columns=None, rows=None):
        """Return the selected columns and rows of an Arrow object as the bytes
        of an Arrow IPC stream (the server reads only those columns' buffers).

        columns: a list of top-level column names, in the order wanted (None:
        all). rows: (start, end), half-open, end None for the end (None: all).
        Errors: UnknownColumn (the message names the table's columns),
        BadRange (rows outside the table), NotArrow, NotFound, Corrupt.
        Over HTTP and the local socket alike (the socket carries the stream
        in frames: a copy, as over HTTP)."""
        oid = str(ref)
        query = _selection(columns, rows)
        with self._lock:
            if self._local is not None:
                return self._local.select(oid, query["columns"], query.get("rows", ""))
            return self._http.get_arrow("get_columns", oid, "", query)

    def get_table(self, ref, columns=None, rows=None):
        """get_columns read into a pyarrow.Table (pyarrow must be installed;
        it is imported on the first call)."""
        pa = _pyarrow("get_table")
        return pa.ipc.open_stream(self.get_columns(ref, columns, rows)).read_all()

    def schema_bytes(self, ref):
        """Return the schema of an Arrow object as an Arrow IPC stream holding
        only the schema (the server reads the footer, no column data)."""
        oid = str(ref)
        with self._lock:
            if self._local is not None:
                return self._local.schema(oid)
            return self._http.get_arrow("schema", oid, "/schema")

    def schema(self, ref):
        """schema_bytes read into a pyarrow.Schema (pyarrow must be installed)."""
        pa = _pyarrow("schema")
        return pa.ipc.open_stream(self.schema_bytes(ref)).schema

    def _http_only(self, op):
        if self._local is not None:
            raise Unsupported("%s: only over HTTP (this client is on the local socket: use the server's http:// address)"
                              % op, op=op)

    def _spread(self, op, oid, group=None, nodes=None):
        try:
            if self._local is not None:
                if nodes is not None:
                    self._http_only(op + " to nodes")
                self._local._call(op, _local.OP_SPREAD, _local._str(group) + _local._str(oid), object_id=oid)
            else:
                q = {"group": group} if group else {"nodes": ",".join(nodes)}
                self._http.cluster(op, "POST", "objects/%s/spread" % _http.quote(oid), query=q, object_id=oid, ok=(202,))
        except DistoreError as e:
            err = _no_cluster(op, e)
            if op == "put":  # the put itself succeeded
                err.args = ("%s; the object %s is stored" % (err, oid),)
            raise err


def _no_cluster(op, e):
    """A server that is not in a cluster answers cluster calls with no_route
    (HTTP) or unavailable, "not in a cluster" (local socket): Unsupported.
    Other errors (etcd down, an unknown object) stay as they are."""
    if isinstance(e, Unsupported):
        return e
    if e.code in ("no_route", "method_not_allowed") or (isinstance(e, Unavailable) and "not in a cluster" in str(e)):
        u = Unsupported("%s: this server is not in a cluster (%s)" % (op, e), op=op, object_id=e.object_id)
        u.__cause__ = e
        return u
    return e


def _selection(columns, rows):
    """The query of a columnar read: columns "a,c" (always sent: it makes the
    GET a columnar read) and rows "start:end"."""
    if isinstance(columns, str):
        raise InvalidArgument("columns: want a list of names, not the str %r" % columns)
    names = [] if columns is None else list(columns)
    for c in names:
        if not isinstance(c, str) or not c or "," in c:
            raise InvalidArgument("columns: %r is not a column name (a non-empty str without commas)" % (c,))
    query = {"columns": ",".join(names)}
    if rows is not None:
        try:
            start, end = rows
        except (TypeError, ValueError):
            raise InvalidArgument("rows: want (start, end), got %r" % (rows,)) from None
        for v in (start, end):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InvalidArgument("rows: %r is not a row number (an int >= 0 or None)" % (v,))
        query["rows"] = "%s:%s" % ("" if start is None else start, "" if end is None else end)
    return query


def _pyarrow(op):
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
    except ImportError as e:
        raise ImportError("distore %s needs pyarrow (pip install pyarrow); without it, get_columns and "
                          "schema_bytes return the Arrow IPC stream's bytes" % op) from e
    return pyarrow
