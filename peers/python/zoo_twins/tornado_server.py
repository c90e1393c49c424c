"""Tornado (`py-tornado`, mirrored by `epoll` and `tokio --threads 1`): one process, one IOLoop
(on asyncio since Tornado 5), every connection a coroutine of it. `/sleep` waits with
`tornado.gen.sleep`, a timer on the loop; `/block` calls `time.sleep` on the loop and stalls
every connection, as a blocking call stalls `epoll`'s one thread; `/cpu?offload=1` goes to the
loop's default executor, a thread pool that the GIL lets compute one thread at a time.
"""

from __future__ import annotations

import asyncio
import signal
import time

import tornado.gen
import tornado.httpserver
import tornado.ioloop
import tornado.web

from . import listen
from .service import BLOCK, COMPUTE, MAX_BODY_BYTES, SLEEP, Counter, Service


class TwinHandler(tornado.web.RequestHandler):
    """Every path and method, routed through the shared service."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def initialize(self, service: Service):
        self.service = service

    def compute_etag(self):
        # zoo sends no ETag; neither does the twin.
        return None

    async def _serve(self, *_args):
        req = self.request
        content_type = req.headers.get("Content-Type", "")
        reply = self.service.handle(req.method, req.uri, req.body, content_type)
        if reply.kind == SLEEP:
            await tornado.gen.sleep(reply.seconds)
        elif reply.kind == BLOCK:
            time.sleep(reply.seconds)
        if reply.kind == COMPUTE:
            loop = tornado.ioloop.IOLoop.current()
            resp = await loop.run_in_executor(None, reply.work) if reply.offload else reply.work()
        else:
            resp = reply.response
        self.set_status(resp.status)
        self.clear_header("Content-Type")
        for name, value in resp.headers:
            self.set_header(name, value)
        if resp.body:
            self.write(resp.body)

    get = head = post = put = delete = patch = options = _serve


async def run(name: str, sock) -> None:
    service = Service(name, Counter())
    # No access log (log_function), as zoo keeps none: writing one costs every request.
    app = tornado.web.Application(
        [(r".*", TwinHandler, {"service": service})], log_function=lambda _handler: None
    )
    server = tornado.httpserver.HTTPServer(
        app, idle_connection_timeout=5, body_timeout=5, max_body_size=MAX_BODY_BYTES
    )
    # Tornado accepts until EWOULDBLOCK, so the socket must not block (as `bind_sockets` makes it).
    sock.setblocking(False)
    server.add_sockets([sock])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listen.announce(name, listen.address(sock))
    await stop.wait()
    server.stop()
    await server.close_all_connections()


def serve(name: str, sock, workers: int, threads: int) -> None:
    """Runs `py-tornado` on `sock` until SIGTERM."""
    asyncio.run(run(name, sock))
