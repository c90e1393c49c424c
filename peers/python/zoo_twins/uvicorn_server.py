"""uvicorn (`py-uvicorn`, mirrored by `tokio --threads 1`): an ASGI application on one asyncio
loop, HTTP parsed by h11. `/sleep` awaits `asyncio.sleep`; `/block` calls `time.sleep` on the
loop, stalling every connection; `/cpu?offload=1` runs in the loop's default thread pool.
"""

from __future__ import annotations

import asyncio
import signal
import time

import uvicorn

from . import listen
from .service import BLOCK, COMPUTE, MAX_BODY_BYTES, SLEEP, Counter, Service, body_too_large


def make_app(service: Service):
    """The ASGI application: reads the body, routes it, waits the loop's way."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        if size > MAX_BODY_BYTES:
            service.counter.add()
            resp = body_too_large()
        else:
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            reply = service.handle(scope["method"], target, b"".join(chunks), content_type)
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
        headers = [(k.encode(), v.encode()) for k, v in resp.headers]
        headers.append((b"content-length", str(len(resp.body)).encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        await send({"type": "http.response.body", "body": resp.body})

    return app


class Server(uvicorn.Server):
    """uvicorn's server, printing the ready line once it serves."""

    def __init__(self, config, name, sock):
        super().__init__(config)
        self.twin_name = name
        self.sock = sock

    async def startup(self, sockets=None):
        await super().startup(sockets=sockets)
        listen.announce(self.twin_name, listen.address(self.sock))


def serve(name: str, sock, workers: int, threads: int) -> None:
    """Runs `py-uvicorn` on `sock` until SIGTERM (uvicorn's own graceful shutdown)."""
    config = uvicorn.Config(
        make_app(Service(name, Counter())),
        http="h11",
        loop="asyncio",
        lifespan="off",
        timeout_keep_alive=5,
        access_log=False,
        log_level="warning",
    )
    # uvicorn re-raises the signal it stopped on once it has shut down; a handler that does
    # nothing lets the process then exit 0 instead of dying of the signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    asyncio.run(Server(config, name, sock).serve(sockets=[sock]))
