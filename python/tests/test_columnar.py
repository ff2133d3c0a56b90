"""Columnar reads of Arrow objects from Python (get_columns, schema_bytes,
get_table, schema) against a real server. The table is made and put by the
Go helper (arrow-go); the streams the Python client receives are decoded by
the same helper (arrow-go's IPC reader), since without pyarrow Python has no
Arrow parser, and compared with values this test computes itself."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverproc  # noqa: E402

distore = serverproc.import_distore()

try:
    import pyarrow
except ImportError:  # pyarrow is optional
    pyarrow = None

ROWS = 100  # the helper's table: n = 3r, s = "v<r>", x = r/2, batches of 40 rows
FIELDS = ["n int64", "s utf8", "x float64"]


def row(r):
    return {"n": 3 * r, "s": "v%d" % r, "x": r / 2}


class ColumnarTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = serverproc.Server()
        cls.gobin = serverproc.go_build("./python/tests/goclient", "goclient")
        cls.table = "arrowtable0001"
        cls.goclient(cls.srv.socket, "put-arrow", cls.table, str(ROWS))
        cls.plain = "plainbytes0001"
        cls.goclient(cls.srv.socket, "put", cls.plain, "1000")
        cls.big = "arrowtable0002"  # its streams take several chunks on the socket
        cls.goclient(cls.srv.socket, "put-arrow", cls.big, "20000")
        # Both doors answer every columnar call alike.
        cls.addrs = [cls.srv.url, "unix://" + cls.srv.socket]

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    @classmethod
    def goclient(cls, *args):
        out = subprocess.run([cls.gobin] + list(args), capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError("goclient %s: %s" % (" ".join(args), out.stderr))
        return out.stdout

    def decode(self, stream):
        """Fields ("name type") and rows of an Arrow IPC stream, by arrow-go."""
        with tempfile.NamedTemporaryFile(suffix=".arrows") as f:
            f.write(stream)
            f.flush()
            out = self.goclient("-", "decode", f.name)
        fields, _, rows = out.partition("--\n")
        return fields.splitlines(), [json.loads(line) for line in rows.splitlines()]

    def test_get_columns_bytes(self):
        for addr in self.addrs:
            with distore.Client(addr) as c:
                self.get_columns_bytes(c)

    def get_columns_bytes(self, c):
        for columns, rows, want_fields, lo, hi in [
            (["s", "n"], (25, 75), ["s utf8", "n int64"], 25, 75),
            (["x"], (0, 1), ["x float64"], 0, 1),
            (None, (90, None), FIELDS, 90, ROWS),
            (["n"], (None, 3), ["n int64"], 0, 3),
            (None, None, FIELDS, 0, ROWS),
            (["s"], (40, 40), ["s utf8"], 40, 40),
        ]:
            stream = c.get_columns(self.table, columns=columns, rows=rows)
            self.assertIsInstance(stream, bytes)
            fields, got = self.decode(stream)
            self.assertEqual(fields, want_fields, (columns, rows))
            names = [f.split()[0] for f in want_fields]
            want = [{k: row(r)[k] for k in names} for r in range(lo, hi)]
            self.assertEqual(got, want, (columns, rows))

    def test_schema_bytes(self):
        for addr in self.addrs:
            with distore.Client(addr) as c:
                fields, rows = self.decode(c.schema_bytes(self.table))
                self.assertEqual(fields, FIELDS, addr)
                self.assertEqual(rows, [], addr)

    def test_errors_mirror_the_server(self):
        for addr in self.addrs:
            with distore.Client(addr) as c:
                self.errors_mirror_the_server(c)

    def errors_mirror_the_server(self, c):
        with self.assertRaises(distore.UnknownColumn) as cm:
            c.get_columns(self.table, columns=["n", "zz"])
        self.assertIn("zz", str(cm.exception))
        self.assertIn("n,s,x", str(cm.exception))  # names the known columns
        self.assertEqual(cm.exception.code, "unknown_column")
        self.assertIsInstance(cm.exception, distore.InvalidArgument)
        for rows in [(90, 101), (5, 2)]:
            with self.assertRaises(distore.BadRange) as cm:
                c.get_columns(self.table, rows=rows)
            self.assertEqual(cm.exception.code, "bad_range")
        with self.assertRaises(distore.NotArrow) as cm:
            c.get_columns(self.plain, columns=["n"])
        self.assertEqual(cm.exception.object_id, self.plain)
        with self.assertRaises(distore.NotArrow):
            c.schema_bytes(self.plain)
        with self.assertRaises(distore.NotFound):
            c.get_columns("nosuchobject001", columns=["n"])
        with self.assertRaises(distore.NotFound):
            c.schema_bytes("nosuchobject001")
        # Refused before any request.
        for columns, rows in [("n,s", None), (["a,b"], None), ([""], None), (None, (1,)), (None, (-1, 2)),
                              (None, ("1", 2)), (None, (True, 2))]:
            with self.assertRaises(distore.InvalidArgument, msg=(columns, rows)):
                c.get_columns(self.table, columns=columns, rows=rows)
        # The plain get still answers the object's bytes.
        self.assertEqual(bytes(c.get(self.table)[:6]), b"ARROW1")

    def test_socket_streams_as_http(self):
        """The socket carries the same stream as HTTP, in several chunk
        frames when it is long, and the connection serves calls after it."""
        with distore.Client(self.srv.url) as h, distore.Client("unix://" + self.srv.socket) as u:
            for columns, rows in [(["n", "s"], (1000, 19000)), (None, None), (["x"], (0, 0))]:
                want = h.get_columns(self.big, columns=columns, rows=rows)
                self.assertEqual(u.get_columns(self.big, columns=columns, rows=rows), want, (columns, rows))
            self.assertGreater(len(h.get_columns(self.big)), 3 * (64 << 10))
            _, got = self.decode(u.get_columns(self.big, columns=["s"], rows=(19998, None)))
            self.assertEqual(got, [{"s": "v19998"}, {"s": "v19999"}])
            self.assertEqual(u.schema_bytes(self.big), h.schema_bytes(self.big))
            with self.assertRaises(distore.UnknownColumn):
                u.get_columns(self.big, columns=["nope"])
            self.assertEqual(bytes(u.get(self.plain)), bytes(h.get(self.plain)))

    @unittest.skipIf(pyarrow is not None, "pyarrow is installed")
    def test_table_without_pyarrow(self):
        with distore.Client(self.srv.url) as c:
            with self.assertRaises(ImportError) as cm:
                c.get_table(self.table, columns=["n"])
            self.assertIn("pyarrow", str(cm.exception))

    @unittest.skipIf(pyarrow is None, "pyarrow is not installed (get_columns covers the bytes)")
    def test_table_with_pyarrow(self):
        with distore.Client(self.srv.url) as c:
            t = c.get_table(self.table, columns=["s", "n"], rows=(25, 75))
            self.assertIsInstance(t, pyarrow.Table)
            self.assertEqual(t.column_names, ["s", "n"])
            self.assertEqual(t.to_pylist(), [{"s": row(r)["s"], "n": row(r)["n"]} for r in range(25, 75)])
            s = c.schema(self.table)
            self.assertEqual(s.names, ["n", "s", "x"])
            self.assertEqual(str(s.field("x").type), "double")


if __name__ == "__main__":
    unittest.main()
