"""aiohttp.web (`py-aiohttp`, mirrored by `tokio --threads 1` and `epoll`): one asyncio loop,
a task per request. `/sleep` awaits `asyncio.sleep`; `/block` calls `time.sleep` on the loop,
stalling every connection; `/cpu?offload=1` runs in the loop's default thread pool.
"""

from __future__ import annotations

import asyncio
import signal
import time

from aiohttp import web

from . import listen
from .service import BLOCK, COMPUTE, MAX_BODY_BYTES, SLEEP, Counter, Service


def make_app(service: Service) -> web.Application:
    """One catch-all route: the shared service does the routing, as zoo's does."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        reply = service.handle(request.method, request.raw_path, body, content_type)
        if reply.kind == SLEEP:
            await asyncio.sleep(reply.seconds)
        elif reply.kind == BLOCK:
            time.sleep(reply.seconds)
        if reply.kind == COMPUTE:
            if reply.offload:
                resp = await asyncio.get_running_loop().run_in_executor(None, reply.work)
            else:
                resp = reply.work()
        else:
            resp = reply.response
        return web.Response(status=resp.status, body=resp.body, headers=dict(resp.headers))

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def run(name: str, sock) -> None:
    runner = web.AppRunner(
        make_app(Service(name, Counter())),
        handle_signals=False,
        access_log=None,
        keepalive_timeout=5,
    )
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listen.announce(name, listen.address(sock))
    await stop.wait()
    await runner.cleanup()


def serve(name: str, sock, workers: int, threads: int) -> None:
    """Runs `py-aiohttp` on `sock` until SIGTERM."""
    asyncio.run(run(name, sock))
