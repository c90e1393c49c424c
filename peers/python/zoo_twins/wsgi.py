"""gunicorn, the deployment of the seed, with three of its workers:

- `gevent` (`py-gevent`, mirrored by `coroutine`): one worker process whose greenlets run on
  one hub. gunicorn calls `gevent.monkey.patch_all()` in the worker before loading the app, so
  the plain `time.sleep` of `/sleep` yields to the hub; `/block` calls the original, unpatched
  `time.sleep` (`gevent.monkey.get_original`), the call the patch does not cover, and stalls
  every greenlet of the worker, as a blocking call stalls `coroutine`'s scheduler thread.
- `sync` (`py-gunicorn-sync`, mirrored by `prefork`): `--workers` processes, one request at a
  time each, closing the connection after every answer (a keep-alive client would pin a worker).
- `gthread` (`py-gunicorn-gthread`, mirrored by `pool`): one worker whose `--threads` threads
  take connections with a complete request; idle keep-alive connections wait in the worker's
  poller, as they wait in `pool`'s.

The request counter is a `multiprocessing.Value` made in the master before the workers fork,
so `/metrics` reports the server's total whichever worker answers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from http import HTTPStatus

from gunicorn.app.base import BaseApplication

from . import listen
from .service import BLOCK, COMPUTE, MAX_BODY_BYTES, SLEEP, Counter, Service, body_too_large


def make_app(service: Service, unseen_sleep):
    """The WSGI application: the shared routes, waiting with `time.sleep` (the patched one under
    gevent) and blocking with `unseen_sleep`."""

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        # RAW_URI is the target as sent; PATH_INFO would be percent-decoded, which zoo does not do.
        target = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
        body = environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            service.counter.add()
            resp = body_too_large()
        else:
            reply = service.handle(method, target, body, environ.get("CONTENT_TYPE", ""))
            if reply.kind == SLEEP:
                time.sleep(reply.seconds)
            elif reply.kind == BLOCK:
                unseen_sleep(reply.seconds)
            resp = reply.work() if reply.kind == COMPUTE else reply.response
        status = f"{resp.status} {HTTPStatus(resp.status).phrase}"
        headers = list(resp.headers) + [("Content-Length", str(len(resp.body)))]
        start_response(status, headers)
        return [] if method == "HEAD" else [resp.body]

    return app


class Twin(BaseApplication):
    """gunicorn run in-process (its documented custom-application pattern), so the launcher's
    pid is the master's and its bound socket is handed over as `fd://N`."""

    def __init__(self, name: str, worker: str, sock, workers: int, threads: int):
        self.name = name
        self.worker = worker
        self.sock = sock
        # gunicorn closes the descriptor it is handed once it has its own copy.
        self.addr = listen.address(sock)
        self.workers = workers
        self.threads = threads
        self.counter = Counter(shared=True)
        self.announced = multiprocessing.Value("b", 0)
        self.master_pid = os.getpid()
        super().__init__()

    def load_config(self):
        settings = {
            "bind": [f"fd://{self.sock.fileno()}"],
            "worker_class": self.worker,
            "workers": self.workers,
            # gunicorn turns a sync worker with threads into gthread: only gthread gets them.
            "threads": self.threads if self.worker == "gthread" else 1,
            # zoo's keep-alive timeout and connection limit.
            "keepalive": 5,
            "worker_connections": 10_000,
            "graceful_timeout": 5,
            "accesslog": None,
            "loglevel": "warning",
            "post_worker_init": self._worker_ready,
            "proc_name": self.name,
            # gunicorn's control socket (for gunicornc) lives in $HOME, which a container's user
            # may not have; the twins are driven by signals alone.
            "control_socket_disable": True,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def _worker_ready(self, _worker):
        # The first worker to be ready prints the one ready line, with the master's pid.
        with self.announced.get_lock():
            if not self.announced.value:
                self.announced.value = 1
                listen.announce(self.name, self.addr, self.master_pid)

    def load(self):
        # Called in each worker after it forked, and under gevent after the monkey patch.
        unseen_sleep = time.sleep
        if self.worker == "gevent":
            from gevent import monkey

            unseen_sleep = monkey.get_original("time", "sleep")
        return make_app(Service(self.name, self.counter, per_process=self.worker == "sync"), unseen_sleep)


def serve(name: str, sock, workers: int, threads: int) -> None:
    """Runs the gunicorn twin `name` on `sock` until SIGTERM (gunicorn's graceful stop)."""
    worker = {"py-gevent": "gevent", "py-gunicorn-sync": "sync", "py-gunicorn-gthread": "gthread"}[name]
    Twin(name, worker, sock, workers, threads).run()
