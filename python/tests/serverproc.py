"""Starts a real distore-server for the tests: the binary named by
DISTORE_SERVER_BIN, or one built with `go build` into a temporary dir."""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_built = {}


def import_distore():
    """The distore package: the installed one (pip install ./python), else
    the source tree's."""
    try:
        import distore
    except ImportError:  # run from the source tree
        sys.path.insert(0, os.path.join(REPO, "python"))
        import distore
    return distore


def go_build(pkg, name):
    """Build a Go main package of the repository once per test run."""
    if name in _built:
        return _built[name]
    d = tempfile.mkdtemp(prefix="distore-pytest-bin-")
    atexit.register(shutil.rmtree, d, True)  # the test run's own: nothing left in /tmp
    out = os.path.join(d, name)
    go = shutil.which("go") or "/usr/local/go/bin/go"
    # The settings of every program the Go tests build and run
    # (internal/testutil.BuildProgram), which scripts/test.sh compiles ahead.
    env = dict(os.environ, CGO_ENABLED="0")
    subprocess.run([go, "build", "-trimpath", "-o", out, pkg], cwd=REPO, env=env, check=True)
    _built[name] = out
    return out


def server_bin():
    return os.environ.get("DISTORE_SERVER_BIN") or go_build("./cmd/distore-server", "distore-server")


def server_bin_or_skip():
    """server_bin(), or unittest.SkipTest when there is neither a built binary
    (DISTORE_SERVER_BIN) nor Go to build one; in CI (CI=true) that fails."""
    b = os.environ.get("DISTORE_SERVER_BIN")
    if b and not os.access(b, os.X_OK):
        raise RuntimeError("DISTORE_SERVER_BIN=%s: not an executable file" % b)
    if not b and not (shutil.which("go") or os.path.exists("/usr/local/go/bin/go")):
        msg = "no distore-server: set DISTORE_SERVER_BIN, or install Go to build one"
        if os.environ.get("CI") == "true":
            raise RuntimeError(msg + " (CI=true: a missing server fails)")
        raise unittest.SkipTest(msg)
    return server_bin()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A distore-server on 127.0.0.1 (a free port) and a local socket in a
    temporary dir, with a memory tier (its arena removed at stop) over disk."""

    def __init__(self, memory="64MiB", extra=()):
        self.dir = tempfile.mkdtemp(prefix="distore-pytest-")
        self.socket = os.path.join(self.dir, "distore.sock")
        self.arena = "/dev/shm/distore-pytest-%s.arena" % uuid.uuid4().hex[:12]
        conf = os.path.join(self.dir, "conf.yaml")
        with open(conf, "w") as f:
            f.write("tiers:\n  memory:\n    path: %s\n    keep: \"false\"\n    prefault: \"false\"\n" % self.arena)
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.proc = subprocess.Popen(
            [server_bin(), "--config", conf, "--listen", "127.0.0.1:0", "--levels", "memory,disk",
             "--data-dir", os.path.join(self.dir, "data"), "--memory-capacity", memory,
             "--socket", self.socket] + list(extra),
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline and self.url is None:
            if self.proc.poll() is not None:
                raise RuntimeError("distore-server exited: " + self._logtext())
            # The server's own line (an embedded etcd logs a url= first).
            m = re.search(r'msg="distore-server listening".*? url=(http://[0-9.:]+)', self._logtext())
            if m and os.path.exists(self.socket):
                self.url = m.group(1)
            else:
                time.sleep(0.05)
        if self.url is None:
            self.stop()
            raise RuntimeError("distore-server did not start: " + self._logtext())

    def _logtext(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if os.path.exists(self.arena):
            os.remove(self.arena)
        shutil.rmtree(self.dir, ignore_errors=True)
