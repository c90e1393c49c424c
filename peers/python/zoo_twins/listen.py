"""The listening socket and the ready line, the same for every twin.

The launcher binds before the framework starts, so `--listen 127.0.0.1:0` works for every twin
(the kernel picks the port and the ready line tells it), and hands the bound socket over:
gunicorn as `fd://N`, Tornado with `add_sockets`, aiohttp with a `SockSite`, uvicorn with
`serve(sockets=...)`, http.server by taking it in place of its own.
"""

from __future__ import annotations

import os
import socket
import sys

#: zoo's listen backlog, deep enough for the c10k scenario's bursts.
BACKLOG = 4096


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` as (host, port); ValueError with the reason otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket with SO_REUSEADDR, as zoo binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def address(sock: socket.socket) -> str:
    """The bound address as a URL authority (`127.0.0.1:PORT`, `[::1]:PORT`)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def announce(name: str, addr: str, pid: int | None = None) -> None:
    """Prints zoo's ready line, `NAME listening on http://ADDR (pid N)`, the line that tests and
    `loadtest compare` wait for; `addr` is what `address` gave, `pid` the server's main process
    (gunicorn's master)."""
    pid = os.getpid() if pid is None else pid
    sys.stdout.write(f"{name} listening on http://{addr} (pid {pid})\n")
    sys.stdout.flush()
