"""The HTTP API (docs/http-api.md) through http.client, for remote servers."""

import http.client
import json
import urllib.parse

from . import errors
from ._local import Info


# ARROW_STREAM is the media type of an Arrow IPC stream.
ARROW_STREAM = "application/vnd.apache.arrow.stream"


class HTTPConn:
    def __init__(self, url, timeout=60.0, token=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise errors.InvalidArgument("address %r: want unix:///path, a socket path or http://host:port" % url)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(u.hostname, u.port, timeout=timeout)
        self.base = u.path.rstrip("/")
        self.headers = {"Authorization": "Bearer " + token} if token else {}

    def close(self):
        self.conn.close()

    def request(self, op, method, path, body=None, query=None, object_id=None, ok=(200, 201, 204), prefer=None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = dict(self.headers)
        if prefer:
            headers["Prefer"] = prefer
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            self.conn.request(method, url, body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise errors.Unavailable("distore %s %s: %s" % (method, url, e), op=op, object_id=object_id) from e
        if resp.status not in ok:
            raise _http_error(op, object_id, resp, data)
        return resp, data

    def put(self, data, oid, importance):
        q = {"importance": str(importance)} if importance else {}
        body = bytes(data)
        # return=minimal: the info comes in X-Distore-Info alone, no JSON body.
        if oid:
            resp, _ = self.request("put", "PUT", "/v1/objects/" + quote(oid), body, q, oid, prefer="return=minimal")
        else:
            resp, _ = self.request("put", "POST", "/v1/objects", body, q, prefer="return=minimal")
        return parse_info(resp, oid)

    def get(self, oid):
        resp, data = self.request("get", "GET", "/v1/objects/" + quote(oid), object_id=oid, ok=(200,))
        return data

    def get_arrow(self, op, oid, path, query=None):
        """GET an Arrow IPC stream (a columnar read or a schema)."""
        resp, data = self.request(op, "GET", "/v1/objects/" + quote(oid) + path, query=query, object_id=oid, ok=(200,))
        ctype = resp.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip() != ARROW_STREAM:
            raise errors.ProtocolError("distore %s %s: answered %r, want %s" % (op, oid, ctype, ARROW_STREAM),
                                       op=op, object_id=oid)
        return data

    def action(self, op, oid, query=None):
        self.request(op, "POST", "/v1/objects/%s/%s" % (quote(oid), op), b"", query, oid)

    def delete(self, oid):
        self.request("delete", "DELETE", "/v1/objects/" + quote(oid), object_id=oid)

    def info(self, oid):
        resp, _ = self.request("info", "HEAD", "/v1/objects/" + quote(oid), object_id=oid, ok=(200,))
        return parse_info(resp, oid)

    def cluster(self, op, method, path, query=None, object_id=None, ok=(200, 204)):
        """A call to the server's cluster routes (/v1/cluster/, docs/cluster.md):
        the decoded JSON answer, or None for an empty one."""
        _, data = self.request(op, method, "/v1/cluster/" + path, b"" if method == "POST" else None, query, object_id, ok)
        return json.loads(data) if data.strip() else None


# LEVEL_BITS are the levels' bits (docs/http-api.md): Info.level is their
# set, as the local socket and the JSON replies give it.
LEVEL_BITS = {"gpu": 1, "memory": 2, "disk": 4, "remote": 8}


def parse_info(resp, oid):
    """The object's info from a reply's X-Distore-Info header, a form-encoded
    list (docs/http-api.md): created and accessed stay RFC 3339 strings."""
    value = resp.headers.get("X-Distore-Info")
    if value is None:
        raise errors.ProtocolError("distore info %s: the reply has no X-Distore-Info header" % oid, object_id=oid)
    try:
        f = dict(urllib.parse.parse_qsl(value, keep_blank_values=True, strict_parsing=True))
        level = 0
        for name in filter(None, f.get("level", "").split(",")):
            if name != "none":
                level |= LEVEL_BITS[name]
        return Info(id=f.get("id") or oid, size=int(f.get("size", "0")), level=level, tier=f.get("tier", ""),
                    importance=int(f.get("importance", "0")), pins=int(f.get("pins", "0")),
                    created=f.get("created", ""), accessed=f.get("accessed", ""),
                    checksum=int(f.get("checksum", "0") or "0", 16))
    except (ValueError, KeyError) as e:
        raise errors.ProtocolError("distore info %s: bad X-Distore-Info %r: %s" % (oid, value, e), object_id=oid) from e


def quote(s):
    return urllib.parse.quote(s, safe="")


def _http_error(op, oid, resp, data):
    code = resp.headers.get("X-Distore-Error-Code", "")
    msg = resp.headers.get("X-Distore-Error-Message", "") or "HTTP %d" % resp.status
    sizes = {}
    try:
        body = json.loads(data)
        code, msg = body.get("code", code), body.get("message", msg)
        sizes = {k: body.get(k, 0) for k in ("requested", "free", "capacity", "pinned")}
    except ValueError:
        pass
    if not code:
        code = "not_found" if resp.status == 404 else "internal"
    return errors.from_code(code, msg, op, oid, **sizes)
