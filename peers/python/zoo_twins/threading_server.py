"""`http.server.ThreadingHTTPServer` (`py-threading`, mirrored by `thread`): a new thread per
connection, each reading its requests with blocking calls. The handler speaks HTTP/1.1, so the
connection stays open between requests (the module's default is HTTP/1.0, one request each),
and its socket timeout closes a connection idle for zoo's keep-alive timeout.

http.server hands the body to the handler to read; `read_body` frames it by Content-Length or
by chunked transfer coding, which the module does not decode itself.
"""

from __future__ import annotations

import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .service import BLOCK, COMPUTE, MAX_BODY_BYTES, SLEEP, Counter, Service


class BadBody(Exception):
    """A body that cannot be framed: the status to answer and why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def read_chunked(rfile, limit: int) -> bytes:
    """A chunked body (RFC 9112 section 7.1): sizes in hex, extensions ignored, trailers
    read and dropped."""
    parts, total = [], 0
    while True:
        line = rfile.readline(1024)
        if not line.endswith(b"\r\n"):
            raise BadBody(400, "bad chunk size line")
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise BadBody(400, "bad chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BadBody(413, f"request body over {limit} bytes")
        data = rfile.read(size + 2)
        if len(data) != size + 2 or not data.endswith(b"\r\n"):
            raise BadBody(400, "chunk shorter than its size")
        parts.append(data[:-2])
    while True:
        trailer = rfile.readline(8192)
        if trailer in (b"\r\n", b"\n", b""):
            return b"".join(parts)


class Handler(BaseHTTPRequestHandler):
    """One connection's requests, each routed through the shared service."""

    protocol_version = "HTTP/1.1"
    # Seconds a connection may sit idle (or a head or body dribble in) before it is closed.
    timeout = 5
    service: Service

    def read_body(self) -> bytes:
        coding = self.headers.get("Transfer-Encoding")
        length = self.headers.get("Content-Length")
        if coding is not None:
            if length is not None:
                raise BadBody(400, "both Content-Length and Transfer-Encoding")
            if coding.strip().lower() != "chunked":
                raise BadBody(501, "transfer coding not implemented")
            return read_chunked(self.rfile, MAX_BODY_BYTES)
        if length is None:
            return b""
        if not length.isdigit():
            raise BadBody(400, "bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            raise BadBody(413, f"request body over {MAX_BODY_BYTES} bytes")
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            raise BadBody(400, "body shorter than its Content-Length")
        return body

    def serve(self) -> None:
        try:
            body = self.read_body()
        except BadBody as bad:
            self.service.counter.add()
            self.close_connection = True
            self.send_error(bad.status, str(bad))
            return
        except TimeoutError:
            self.close_connection = True
            return
        content_type = self.headers.get("Content-Type", "")
        reply = self.service.handle(self.command, self.path, body, content_type)
        if reply.kind in (SLEEP, BLOCK):
            # A thread per connection: a blocking sleep is this model's own way to wait.
            time.sleep(reply.seconds)
        resp = reply.work() if reply.kind == COMPUTE else reply.response
        self.send_response(resp.status)
        for name, value in resp.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = serve

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        # No access log: zoo keeps none by default, and writing one costs every request.
        pass


def serve(name: str, sock, workers: int, threads: int) -> None:
    """Runs `py-threading` on `sock` until SIGTERM: stop accepting, let the threads finish."""
    from . import listen

    handler = type("TwinHandler", (Handler,), {"service": Service(name, Counter())})
    server = ThreadingHTTPServer(sock.getsockname()[:2], handler, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    server.daemon_threads = True
    # `shutdown` waits for `serve_forever` to return, so it cannot run in the signal handler,
    # which interrupts `serve_forever` itself.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    listen.announce(name, listen.address(sock))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()
