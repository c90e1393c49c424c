"""Every twin, and zoo itself, against one table of requests and answers.

Each target is a real server process on an ephemeral loopback port: the twins started through
run.py, zoo as `target/debug/zoo --model=epoll` (or `$ZOO_BIN`). The table is checked against
zoo too, so it is zoo's behaviour that the twins are held to. Run from the virtualenv:

    .venv/bin/python -m unittest discover -s tests -v
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
REPO = HERE.parent.parent
TWINS = json.loads((HERE / "twins.json").read_text())["twins"]
ZOO_BIN = Path(os.environ.get("ZOO_BIN", REPO / "target" / "debug" / "zoo"))
READY = re.compile(r" listening on http://(\S+) \(pid (\d+)\)")

TEXT, JSON = "text/plain", "application/json"
# (method, target, status, body, Content-Type): the scenario routes, good and bad input.
TABLE = [
    ("GET", "/", 200, b"Hello, World!", TEXT),
    ("GET", "/plaintext", 200, b"Hello, World!", TEXT),
    ("GET", "/json", 200, b'{"message":"Hello, World!"}', JSON),
    ("GET", "/healthz", 200, b"ok", TEXT),
    ("GET", "/sleep?ms=5", 200, b"slept 5 ms\n", TEXT),
    ("GET", "/sleep?ms=0&ms=9", 200, b"slept 0 ms\n", TEXT),
    ("GET", "/sleep", 400, b"missing query parameter `ms`\n", TEXT),
    ("GET", "/sleep?ms=", 400, b"query parameter `ms` must be a whole number\n", TEXT),
    ("GET", "/sleep?ms=x", 400, b"query parameter `ms` must be a whole number\n", TEXT),
    ("GET", "/sleep?ms=+1", 400, b"query parameter `ms` must be a whole number\n", TEXT),
    ("GET", "/sleep?ms=60001", 400, b"query parameter `ms` must be from 0 to 60000\n", TEXT),
    ("GET", "/block?ms=1", 200, b"slept 1 ms\n", TEXT),
    ("GET", "/block?ms=-1", 400, b"query parameter `ms` must be a whole number\n", TEXT),
    ("GET", "/block?ms=99999999999999999999999", 400,
     b"query parameter `ms` must be from 0 to 60000\n", TEXT),
    ("GET", "/cpu?n=0", 200, b"cpu n=0 result=9e3779b97f4a7c15\n", TEXT),
    ("GET", "/cpu?n=1000", 200, b"cpu n=1000 result=289d8616237e73d0\n", TEXT),
    ("GET", "/cpu?n=1000&offload=1", 200, b"cpu n=1000 result=289d8616237e73d0\n", TEXT),
    ("GET", "/cpu?n=1000&offload=0", 200, b"cpu n=1000 result=289d8616237e73d0\n", TEXT),
    ("GET", "/cpu", 400, b"missing query parameter `n`\n", TEXT),
    ("GET", "/cpu?n=50000001", 400, b"query parameter `n` must be from 0 to 50000000\n", TEXT),
    ("GET", "/cpu?n=5&offload=2", 400, b"query parameter `offload` must be 0 or 1\n", TEXT),
    ("GET", "/nope", 404, b"not found: no route for this path\n", TEXT),
    ("GET", "/echo", 405, b"method not allowed: this path answers POST, OPTIONS\n", TEXT),
    ("POST", "/json", 405, b"method not allowed: this path answers GET, HEAD, OPTIONS\n", TEXT),
    ("DELETE", "/sleep?ms=1", 405,
     b"method not allowed: this path answers GET, HEAD, OPTIONS\n", TEXT),
]


def start(argv, cwd) -> tuple[subprocess.Popen, str]:
    """Starts a server and waits for its ready line; fails if it exits or stays silent."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            match = READY.search(line)
            if match:
                return proc, match.group(1)
            if not line:
                break
    proc.kill()
    proc.wait()
    raise AssertionError(f"{argv} printed no ready line (exit {proc.returncode})")


class Target:
    """Mixed into one TestCase per server: `argv`, `keep_alive` and `block_stalls` set."""

    argv: list
    cwd: Path = HERE
    keep_alive = True
    block_stalls = True

    @classmethod
    def setUpClass(cls):
        cls.proc, cls.addr = start(cls.argv, cls.cwd)
        cls.host, _, port = cls.addr.rpartition(":")
        cls.port = int(port)

    @classmethod
    def tearDownClass(cls):
        cls.proc.send_signal(signal.SIGTERM)
        try:
            code = cls.proc.wait(timeout=15)
        finally:
            if cls.proc.poll() is None:
                cls.proc.kill()
            cls.proc.stdout.close()
        if code != 0:
            raise AssertionError(f"{cls.argv} exited {code} on SIGTERM, not 0")

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=20)

    def fetch(self, method, target, body=None, headers=None):
        conn = self.connect()
        try:
            conn.request(method, target, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()

    def requests_total(self) -> int:
        resp, body = self.fetch("GET", "/metrics")
        self.assertEqual(resp.status, 200)
        found = re.search(rb"^zoo_requests_total (\d+)$", body, re.M)
        self.assertIsNotNone(found, body)
        return int(found.group(1))

    def test_table(self):
        for method, target, status, body, content_type in TABLE:
            with self.subTest(method=method, target=target):
                resp, got = self.fetch(method, target)
                self.assertEqual((resp.status, got), (status, body))
                self.assertEqual(resp.getheader("Content-Type"), content_type)
                if status == 405:
                    expected = "POST, OPTIONS" if target == "/echo" else "GET, HEAD, OPTIONS"
                    self.assertEqual(resp.getheader("Allow"), expected)

    def test_options_answers_allow(self):
        resp, body = self.fetch("OPTIONS", "/echo")
        self.assertEqual((resp.status, body), (204, b""))
        self.assertEqual(resp.getheader("Allow"), "POST, OPTIONS")

    def test_echo_with_content_length(self):
        payload = bytes(range(256)) * 40
        resp, body = self.fetch("POST", "/echo", payload, {"Content-Type": "application/x-test"})
        self.assertEqual((resp.status, body), (200, payload))
        self.assertEqual(resp.getheader("Content-Type"), "application/x-test")
        resp, body = self.fetch("POST", "/echo", b"")
        self.assertEqual((resp.status, body), (200, b""))

    def test_echo_chunked(self):
        conn = self.connect()
        try:
            conn.request("POST", "/echo", body=iter([b"abc", b"", b"defgh" * 1000]),
                         headers={"Content-Type": "text/x-chunks"}, encode_chunked=True)
            resp = conn.getresponse()
            self.assertEqual((resp.status, resp.read()), (200, b"abc" + b"defgh" * 1000))
            self.assertEqual(resp.getheader("Content-Type"), "text/x-chunks")
        finally:
            conn.close()

    def test_keep_alive(self):
        conn = self.connect()
        try:
            conn.request("GET", "/")
            first = conn.getresponse()
            self.assertEqual(first.read(), b"Hello, World!")
            if not self.keep_alive:
                # gunicorn sync, like prefork, closes after each answer and says so.
                self.assertEqual(first.getheader("Connection"), "close")
                return
            sock = conn.sock
            self.assertIsNotNone(sock, "the server closed a keep-alive connection")
            conn.request("GET", "/json")
            second = conn.getresponse()
            self.assertEqual(second.read(), b'{"message":"Hello, World!"}')
            self.assertIs(conn.sock, sock, "the second request needed a new connection")
        finally:
            conn.close()

    def test_metrics_count_every_request(self):
        before = self.requests_total()
        for target in ("/", "/json", "/nope"):
            self.fetch("GET", target)
        # The second scrape counts itself, as zoo's does.
        self.assertEqual(self.requests_total(), before + 4)
        resp, body = self.fetch("GET", "/metrics")
        self.assertEqual(resp.getheader("Content-Type"), "text/plain; version=0.0.4")
        self.assertIn(b"# TYPE zoo_requests_total counter\n", body)

    def stalls(self, slow_target) -> bool:
        """Whether a plain request waits behind `slow_target` (600 ms) already in progress."""
        done = threading.Event()
        worker = threading.Thread(target=lambda: (self.fetch("GET", slow_target), done.set()))
        worker.start()
        time.sleep(0.15)
        started = time.monotonic()
        resp, _ = self.fetch("GET", "/")
        waited = time.monotonic() - started
        worker.join()
        self.assertEqual(resp.status, 200)
        # Stalled means it waited for most of the 450 ms the slow request had left.
        return waited > 0.3

    def test_sleep_waits_the_servers_own_way(self):
        self.assertFalse(self.stalls("/sleep?ms=600"), "a /sleep held up another request")

    def test_block_stalls_only_a_single_thread(self):
        self.assertEqual(self.stalls("/block?ms=600"), self.block_stalls)


def twin_case(twin) -> type:
    argv = [sys.executable, "run.py", twin["name"], "--listen", "127.0.0.1:0"]
    # More than one worker or thread where the twin takes them, so that the shared counter and
    # the pool are what is tested.
    if "workers" in twin["options"] and twin["name"] == "py-gunicorn-sync":
        argv += ["--workers", "2"]
    if "threads" in twin["options"]:
        argv += ["--threads", "4"]
    attrs = {"argv": argv, "keep_alive": twin["keep_alive"], "block_stalls": twin["block_stalls"]}
    return type(twin["name"].replace("-", "_"), (Target, unittest.TestCase), attrs)


for _twin in TWINS:
    globals()[_twin["name"].replace("-", "_")] = twin_case(_twin)


class zoo_epoll(Target, unittest.TestCase):
    """zoo itself: the table is its behaviour."""

    argv = [str(ZOO_BIN), "--model=epoll", "--listen", "127.0.0.1:0"]
    cwd = REPO


if __name__ == "__main__":
    unittest.main()
