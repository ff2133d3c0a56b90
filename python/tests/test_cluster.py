"""The Python client against a real three-server cluster: real
distore-server processes on loopback, the first running an embedded etcd
(--etcd embed=127.0.0.1:PORT) that the other two join."""

import os
import re
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverproc  # noqa: E402

distore = serverproc.import_distore()


def payload(n, seed):
    return bytes((i * 31 + seed) & 0xFF for i in range(256)) * (n // 256) + bytes(n % 256)


def wait_for(what, cond, timeout=20.0):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("not within %.0fs: %s" % (timeout, what))
        time.sleep(0.05)


def metric(url, name):
    """The sum of a metric's samples in the server's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(m) for m in re.findall(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M))


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        serverproc.server_bin_or_skip()
        etcd = "127.0.0.1:%d" % serverproc.free_port()
        common = ["--lease-ttl", "2s"]
        cls.srv, cls.http, cls.local = [], [], []
        # unittest does not call tearDownClass when setUpClass fails: stop
        # what was started here, or the servers outlive the test.
        try:
            cls.srv.append(serverproc.Server(extra=["--etcd", "embed=" + etcd, "--node-id", "p1"] + common))
            for name in ("p2", "p3"):
                cls.srv.append(serverproc.Server(extra=["--etcd", "http://" + etcd, "--node-id", name] + common))
            cls.http = [distore.Client(s.url) for s in cls.srv]
            cls.local = [distore.Client("unix://" + s.socket) for s in cls.srv]
            wait_for("every server lists the three", lambda: all(
                len(c.nodes()["members"]) == 3 for c in cls.http))
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for c in cls.http + cls.local:
            c.close()
        # The etcd host (p1) last, so the others leave the cluster cleanly.
        for s in reversed(cls.srv):
            s.stop()

    def transfers(self, i):
        return metric(self.srv[i].url, "distore_cluster_transfers_started_total")

    def test_nodes(self):
        n = self.http[1].nodes()
        self.assertEqual(n["self"], "p2")
        self.assertTrue(n["healthy"], n)
        self.assertEqual(sorted(m["id"] for m in n["members"]), ["p1", "p2", "p3"])
        with self.assertRaises(distore.Unsupported):
            self.local[0].nodes()  # the local socket has no cluster calls but these

    def test_register_group_local_and_http(self):
        self.local[1].register_group("lg")  # the local socket
        self.http[2].register_group("lg")  # HTTP
        wait_for("p1 sees p2 and p3 in lg", lambda: self.http[0].groups().get("lg") == ["p2", "p3"])
        self.http[2].unregister_group("lg")
        wait_for("p1 sees only p2 in lg", lambda: self.http[0].groups().get("lg") == ["p2"])
        with self.assertRaises(distore.InvalidArgument):
            self.http[0].register_group("no spaces")

    def spread_reaches(self, origin, ref, want):
        s = wait_for("the spread of %s ends" % ref, lambda: (lambda s: s if s["done"] else None)(
            self.http[origin].spread_status(ref)))
        self.assertEqual(sorted(s["reached"]), sorted(want), s)
        self.assertFalse(s.get("failed"), s)

    def assert_local_copy(self, i, ref, data):
        """Server i has ref as its own copy: a get there fetches nothing."""
        before = self.transfers(i)
        self.assertEqual(self.local[i].get_bytes(ref), data)
        self.assertEqual(self.transfers(i), before, "p%d fetched %s instead of having received it" % (i + 1, ref))

    def test_put_with_prefetch_group(self):
        for c in (self.http[1], self.local[2]):
            c.register_group("actor")
        wait_for("actor has p2 and p3", lambda: self.http[0].groups().get("actor") == ["p2", "p3"])
        data = payload(3 << 20, 1)
        for name, c in (("http", self.http[0]), ("local", self.local[0])):
            ref = c.put(data, object_id="traj-" + name, prefetch_group="actor")
            self.spread_reaches(0, ref, ["p2", "p3"])
            for i in (1, 2):
                self.assert_local_copy(i, ref, data)

    def test_prefetch_to_nodes(self):
        data = payload(1 << 20, 2)
        ref = self.http[0].put(data, object_id="to-p3")
        self.http[0].prefetch(ref, nodes=["p3"])
        self.spread_reaches(0, ref, ["p3"])
        self.assert_local_copy(2, ref, data)
        with self.assertRaises(distore.InvalidArgument):
            self.http[0].prefetch(ref, nodes=["nobody"])
        with self.assertRaises(distore.Unsupported):
            self.local[0].prefetch(ref, nodes=["p3"])

    def test_get_and_prefetch_from_a_peer(self):
        data = payload(2 << 20, 3)
        ref = self.local[0].put(data, object_id="peer-obj")
        before = self.transfers(1)
        self.local[1].prefetch(ref)  # fetched from p1 into p2's memory
        self.assertEqual(self.transfers(1), before + 1)
        self.assert_local_copy(1, ref, data)
        self.assertEqual(bytes(self.http[2].get(ref)), data)  # p3 over HTTP
        self.local[1].release()

    def test_errors(self):
        with self.assertRaises(distore.NotFound):
            self.http[0].spread_status("never-spread")
        # A group nobody is in: the spread has nothing to do.
        ref = self.http[0].put(b"x", object_id="lonely", prefetch_group="nobody-here")
        self.spread_reaches(0, ref, [])
        ref = self.http[0].put(b"x", object_id="dup")
        with self.assertRaises(distore.Exists):
            self.http[1].put(b"y", object_id="dup")  # unique in the cluster
        self.assertEqual(self.http[2].get_bytes(ref), b"x")


if __name__ == "__main__":
    unittest.main()
