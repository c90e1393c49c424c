#!/usr/bin/env python3
"""Starts one of the Python originals that zoo's models mirror.

    .venv/bin/python run.py NAME --listen HOST:PORT [--workers N] [--threads N]
    .venv/bin/python run.py --list [--json]

It binds HOST:PORT (port 0 lets the kernel choose), starts the named twin on that socket, prints
zoo's ready line, `NAME listening on http://ADDR (pid N)`, once the twin serves, and stops it
gracefully on SIGTERM or SIGINT. The twins and what they mirror are listed in twins.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TWINS = json.loads((HERE / "twins.json").read_text())["twins"]

# The module that serves each twin.
MODULES = {
    "py-gevent": "zoo_twins.wsgi",
    "py-gunicorn-sync": "zoo_twins.wsgi",
    "py-gunicorn-gthread": "zoo_twins.wsgi",
    "py-tornado": "zoo_twins.tornado_server",
    "py-aiohttp": "zoo_twins.aiohttp_server",
    "py-uvicorn": "zoo_twins.uvicorn_server",
    "py-threading": "zoo_twins.threading_server",
}


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number of at least 1, got {text!r}")
    return int(text)


def cpus() -> int:
    """The CPUs this process may run on (taskset counts), as zoo's defaults count them."""
    return len(os.sched_getaffinity(0))


def main() -> int:
    names = [t["name"] for t in TWINS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", choices=names, help="the twin to start")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT to bind")
    parser.add_argument("--workers", type=positive, help="worker processes (gunicorn sync, gthread)")
    parser.add_argument("--threads", type=positive, help="threads of the gthread worker")
    parser.add_argument("--list", action="store_true", help="list the twins and exit")
    parser.add_argument("--json", action="store_true", help="with --list: twins.json's table")
    args = parser.parse_args()

    if args.list:
        if args.json:
            print(json.dumps(TWINS, indent=2))
        else:
            for twin in TWINS:
                print(f"{twin['name']:<20} {twin['server']:<58} mirrored by {', '.join(twin['mirrors'])}")
        return 0
    if args.name is None:
        parser.error("name the twin to start (one of: " + ", ".join(names) + ")")
    twin = next(t for t in TWINS if t["name"] == args.name)
    for flag in ("workers", "threads"):
        if getattr(args, flag) is not None and flag not in twin["options"]:
            parser.error(f"--{flag} does not apply to {args.name} ({twin['server']})")

    from zoo_twins import listen

    try:
        host, port = listen.parse_listen(args.listen)
        sock = listen.bind(host, port)
    except (ValueError, OSError) as err:
        parser.error(f"--listen {args.listen}: {err}")
    workers = args.workers or (cpus() if args.name == "py-gunicorn-sync" else 1)
    threads = args.threads or 4 * cpus()
    importlib.import_module(MODULES[args.name]).serve(args.name, sock, workers, threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
