import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverproc  # noqa: E402

distore = serverproc.import_distore()

try:
    import numpy
except ImportError:  # numpy is optional
    numpy = None

PYTHONPATH = os.path.join(serverproc.REPO, "python")


def payload(n, seed=1):
    return random.Random(seed).randbytes(n)


def memory_used(url):
    with urllib.request.urlopen(url + "/v1/stats") as r:
        stats = json.load(r)
    return [t for t in stats["tiers"] if t["tier"] == "memory"][0]["used"]


def wait_for(what, cond, timeout=1.0):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("not within %.1fs: %s" % (timeout, what))
        time.sleep(0.01)


def child(code, *args):
    """Run Python code in another process with the package importable."""
    env = dict(os.environ, PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", code] + list(args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class LocalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = serverproc.Server()
        cls.sock = "unix://" + cls.srv.socket

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_put_get_zero_copy(self):
        with distore.Client(self.sock) as c:
            self.assertTrue(c.is_local)
            for n in (0, 1, 4096, 64 << 10, (64 << 10) + 1, 3 << 20):
                data = payload(n, n)
                ref = c.put(data, importance=3)
                self.assertIsInstance(ref, str)
                self.assertEqual(ref.info["size"], n)
                v = c.get(ref)
                self.assertIsInstance(v, memoryview)
                self.assertTrue(v.readonly)
                self.assertEqual(bytes(v), data)
                if n:
                    # The view is a slice of the mapping: two gets share memory.
                    self.assertIsInstance(v.obj, __import__("mmap").mmap)
                info = c.info(ref)
                self.assertEqual((info["size"], info["importance"], info["tier"]), (n, 3, "memory"))
                c.release(ref)

    @unittest.skipIf(numpy is None, "numpy is not installed")
    def test_numpy_frombuffer(self):
        with distore.Client(self.sock) as c:
            a = numpy.arange(100000, dtype=numpy.float64)
            ref = c.put(a)  # a numpy array is a buffer
            b = numpy.frombuffer(c.get(ref), dtype=numpy.float64)
            self.assertTrue((a == b).all())
            self.assertFalse(b.flags.writeable)
            b2 = numpy.frombuffer(c.get(ref), dtype=numpy.float64)
            self.assertEqual(b.__array_interface__["data"][0], b2.__array_interface__["data"][0],
                             "two gets are at different addresses: not zero-copy")

    def test_errors_mirror_sentinels(self):
        with distore.Client(self.sock) as c:
            with self.assertRaises(distore.NotFound):
                c.get("no-such-object")
            c.put(b"x", object_id="dup")
            with self.assertRaises(distore.Exists):
                c.put(b"y", object_id="dup")
            with self.assertRaises(distore.InvalidID):
                c.get("../etc/passwd")
            c.pin("dup")
            with self.assertRaises(distore.Pinned):
                c.delete("dup")
            c.unpin("dup")
            with self.assertRaises(distore.NotPinned):
                c.unpin("dup")
            c.delete(["dup"])
            with self.assertRaises(distore.NotFound):
                c.info("dup")

    def test_groups_unsupported(self):
        with distore.Client(self.sock) as c:
            with self.assertRaises(distore.Unsupported):
                c.register_group("actor")
            with self.assertRaises(distore.Unsupported):
                c.put(b"traj", prefetch_group="actor")

    def test_context_manager_releases(self):
        base = memory_used(self.srv.url)
        with distore.Client(self.sock) as c:
            refs = [c.put(payload(100 << 10, i)) for i in range(5)]
            views = [c.get(r) for r in refs]
            c.delete(refs)
            # Deleted while read in place: the bytes stay.
            self.assertEqual(bytes(views[2]), payload(100 << 10, 2))
            self.assertGreater(memory_used(self.srv.url), base + 5 * (100 << 10))
        wait_for("references released by the with block", lambda: memory_used(self.srv.url) <= base)

    def test_cached_get(self):
        def gets():
            with urllib.request.urlopen(self.srv.url + "/metrics") as r:
                for line in r.read().decode().splitlines():
                    if line.startswith('distore_local_requests_total{op="get"}'):
                        return float(line.split()[-1])
            return 0.0
        with distore.Client(self.sock) as c, distore.Client(self.srv.url) as h:
            v1 = payload(100 << 10, 21)
            h.put(v1, object_id="cached")
            before = gets()
            for _ in range(3):
                self.assertEqual(bytes(c.get("cached")), v1)
                c.release("cached")
            self.assertEqual(gets() - before, 1, "three gets of one object: one request, two from the kept reference")
            # Deleted by another client: the kept reference is not used.
            h.delete("cached")
            with self.assertRaises(distore.NotFound):
                c.get("cached")
            v2 = payload(100 << 10, 22)
            h.put(v2, object_id="cached")
            self.assertEqual(bytes(c.get("cached")), v2)
            c.release("cached")
            # A small put keeps a reference: the putter's get asks nothing.
            before = gets()
            c.put(b"mine", object_id="own")
            self.assertEqual(bytes(c.get("own")), b"mine")
            c.release("own")
            self.assertEqual(gets() - before, 0, "a get of the client's own small put asked the server")
            h.delete("own")
            with self.assertRaises(distore.NotFound):
                c.get("own")
            # The client's own delete frees the bytes at once.
            base = memory_used(self.srv.url)
            c.delete("cached")
            wait_for("bytes freed after the client's own delete", lambda: memory_used(self.srv.url) <= base - (100 << 10),
                     timeout=0.3)

    def test_releases_reach_the_server(self):
        # A release goes out with the client's next request (one send), or by
        # the idle timer when no request follows: a deleted object's bytes
        # are freed either way.
        with distore.Client(self.sock) as c, distore.Client(self.srv.url) as h:
            for i, follow in enumerate((True, False)):
                oid = "released%d" % i
                h.put(payload(100 << 10, 30 + i), object_id=oid)
                base = memory_used(self.srv.url)
                self.assertEqual(bytes(c.get(oid)[:10]), payload(100 << 10, 30 + i)[:10])
                c.release()  # the kept reference too
                h.delete(oid)
                if follow:
                    with self.assertRaises(distore.NotFound):
                        c.info("no-such-object")
                    wait_for("bytes freed after the next request", lambda: memory_used(self.srv.url) <= base - (100 << 10),
                             timeout=0.2)
                else:
                    wait_for("bytes freed by the idle timer", lambda: memory_used(self.srv.url) <= base - (100 << 10),
                             timeout=2.0)

    def test_go_and_python_across_processes(self):
        gobin = serverproc.go_build("./python/tests/goclient", "goclient")
        # Go puts, Python reads in place.
        out = subprocess.run([gobin, self.sock, "put", "from-go", str(5 << 20)], check=True,
                             capture_output=True, text=True).stdout.strip()
        with distore.Client(self.sock) as c:
            self.assertEqual(hashlib.sha256(c.get("from-go")).hexdigest(), out)
            # Python puts, Go reads in place.
            data = payload(3 << 20, 9)
            c.put(data, object_id="from-python")
            out = subprocess.run([gobin, self.sock, "get", "from-python"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            self.assertEqual(out, hashlib.sha256(data).hexdigest())
        # Python puts in one process, another Python process reads in place.
        p = child("import distore,sys\nc=distore.Client(sys.argv[1])\nc.put(b'z'*300000, object_id='from-child')\nprint('ok')",
                  self.sock)
        so, se = p.communicate(timeout=60)
        self.assertEqual(so.strip(), "ok", se)
        with distore.Client(self.sock) as c:
            self.assertEqual(bytes(c.get("from-child")), b"z" * 300000)

    def test_killed_client_releases_within_1s(self):
        with distore.Client(self.srv.url) as h:
            ids = ["kill%d" % i for i in range(100)]
            for i in ids:
                h.put(payload(32 << 10, 1), object_id=i)
            base = memory_used(self.srv.url)
            code = ("import distore,sys,time\nc=distore.Client(sys.argv[1])\n"
                    "vs=[c.get('kill%d'%i) for i in range(100)]\nc.pin('kill0')\nprint('ready',flush=True)\ntime.sleep(60)")
            p = child(code, self.sock)
            self.assertEqual(p.stdout.readline().strip(), "ready", p.stderr.read() if p.poll() is not None else "")
            self.assertEqual(h.info("kill0")["pins"], 1)
            h.delete(ids[1:])
            self.assertGreater(memory_used(self.srv.url), base - 50 * (32 << 10), "held objects were freed")
            p.send_signal(signal.SIGKILL)
            p.wait()
            p.stdout.close()
            p.stderr.close()
            wait_for("a killed client's 100 references and its pin released",
                     lambda: h.info("kill0")["pins"] == 0 and memory_used(self.srv.url) < base - 90 * (32 << 10))


class HTTPTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = serverproc.Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_http_api(self):
        with distore.Client(self.srv.url) as c:
            self.assertFalse(c.is_local)
            data = payload(200000)
            ref = c.put(data, importance=2)
            v = c.get(ref)
            self.assertIsInstance(v, memoryview)
            self.assertEqual(bytes(v), data)
            self.assertEqual(c.info(ref)["importance"], 2)
            c.pin(ref, ttl="30s")
            self.assertEqual(c.info(ref)["pins"], 1)
            c.unpin(ref)
            c.prefetch(ref)
            c.delete(ref)
            with self.assertRaises(distore.NotFound):
                c.get(ref)
            with self.assertRaises(distore.Unsupported):
                c.register_group("actor")
            with self.assertRaises(distore.Unsupported):
                c.put(b"x", prefetch_group="actor")
            c.put(b"x", object_id="taken")
            with self.assertRaises(distore.Exists):
                c.put(b"y", object_id="taken")
            with self.assertRaises(distore.InvalidID):
                c.info("bad id")


if __name__ == "__main__":
    unittest.main()
