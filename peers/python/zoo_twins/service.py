"""The scenario routes of zoo's demo service (common/src/service), as plain functions.

Every twin routes through `handle`, so the statuses, bodies and limits are the same under
every framework; what differs is only how a twin *waits* and *computes*, which `handle`
leaves to it by returning a `Reply` of one of four kinds:

- READY: answer now.
- SLEEP: a downstream wait; the twin waits its own way (asyncio.sleep, Tornado's gen.sleep,
  a gevent-patched time.sleep, time.sleep in a thread or process), then answers.
- BLOCK: a call the server cannot see; the twin calls `time.sleep` where it stands (under
  gevent the original, unpatched one), stalling whatever else shares its thread.
- COMPUTE: CPU work; an event loop may hand it to an executor (`offload=1`), the others run
  it inline.

The target is read raw, as zoo reads it: the path before `?`, each query parameter the first
`name=value` pair, nothing percent-decoded.
"""

from __future__ import annotations

import threading
from typing import Callable, NamedTuple, Optional

#: The longest wait `/sleep` and `/block` accept, in milliseconds (zoo's `MAX_SLEEP_MS`).
MAX_SLEEP_MS = 60_000
#: The most rounds `/cpu` runs (zoo's `MAX_CPU_ROUNDS`).
MAX_CPU_ROUNDS = 50_000_000
#: The largest request body a twin reads, as zoo's default `--max-body-bytes`.
MAX_BODY_BYTES = 1024 * 1024

_MASK64 = (1 << 64) - 1

READY, SLEEP, BLOCK, COMPUTE = "ready", "sleep", "block", "compute"

_GET_ALLOW = "GET, HEAD, OPTIONS"
_POST_ALLOW = "POST, OPTIONS"


class Response(NamedTuple):
    """A status, a body and the headers that go with it (Content-Length is the server's)."""

    status: int
    body: bytes
    headers: tuple = ()

    @staticmethod
    def text(status: int, body: str) -> "Response":
        """A `text/plain` answer."""
        return Response(status, body.encode(), (("Content-Type", "text/plain"),))


class Reply(NamedTuple):
    """What `handle` asks of the twin: see the module's doc for the kinds."""

    kind: str
    response: Optional[Response] = None
    seconds: float = 0.0
    work: Optional[Callable[[], Response]] = None
    offload: bool = False


class Reject(Exception):
    """Bad input: a 4xx with a one-line reason, as zoo's `Reject`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        """The answer: the reason as one line of `text/plain`."""
        return Response.text(self.status, self.reason + "\n")


class Counter:
    """`zoo_requests_total`. Under gunicorn the value sits in shared memory created before the
    workers fork (a `multiprocessing.Value`), so every worker counts into one figure; the other
    twins are one process and count under a thread lock."""

    def __init__(self, shared: bool = False):
        if shared:
            import multiprocessing

            self._value = multiprocessing.Value("Q", 0)
            self._lock = self._value.get_lock()
        else:
            self._value = None
            self._count = 0
            self._lock = threading.Lock()

    def add(self) -> int:
        """Counts one request and returns the new total."""
        with self._lock:
            if self._value is not None:
                self._value.value += 1
                return self._value.value
            self._count += 1
            return self._count


class Service:
    """The routes of one twin, with its name (the `model` of `zoo_info`) and its counter."""

    def __init__(self, name: str, counter: Counter, per_process: bool = False):
        self.name = name
        self.counter = counter
        self.per_process = per_process

    def handle(self, method: str, target: str, body: bytes = b"", content_type: str = "") -> Reply:
        """Routes one request, counting it first as zoo does (so `/metrics` counts itself)."""
        requests = self.counter.add()
        path, _, query = target.partition("?")
        query = query if "?" in target else None
        allow = _allow(path)
        if allow is None:
            return Reply(READY, Response.text(404, "not found: no route for this path\n"))
        if method not in allow.split(", "):
            reason = f"method not allowed: this path answers {allow}\n"
            resp = Response.text(405, reason)
            return Reply(READY, resp._replace(headers=resp.headers + (("Allow", allow),)))
        if method == "OPTIONS":
            return Reply(READY, Response(204, b"", (("Allow", allow),)))
        try:
            return self._dispatch(path, query, body, content_type, requests)
        except Reject as reject:
            return Reply(READY, reject.response())

    def _dispatch(self, path, query, body, content_type, requests) -> Reply:
        if path in ("/", "/plaintext"):
            return Reply(READY, Response.text(200, "Hello, World!"))
        if path == "/json":
            body = b'{"message":"Hello, World!"}'
            return Reply(READY, Response(200, body, (("Content-Type", "application/json"),)))
        if path in ("/sleep", "/block"):
            ms = int_param(query, "ms", 0, MAX_SLEEP_MS)
            kind = SLEEP if path == "/sleep" else BLOCK
            return Reply(kind, Response.text(200, f"slept {ms} ms\n"), seconds=ms / 1000)
        if path == "/cpu":
            rounds = int_param(query, "n", 0, MAX_CPU_ROUNDS)
            offload = query_param(query, "offload")
            if offload not in (None, "0", "1"):
                raise Reject(400, "query parameter `offload` must be 0 or 1")
            return Reply(COMPUTE, work=lambda: cpu_response(rounds), offload=offload == "1")
        if path == "/echo":
            return Reply(READY, echo(body, content_type))
        if path == "/healthz":
            return Reply(READY, Response.text(200, "ok"))
        # Only /metrics is left: `_allow` knows no other path.
        return Reply(READY, self.metrics(requests))

    def metrics(self, requests: int) -> Response:
        """`GET /metrics`: zoo's `zoo_info` and `zoo_requests_total`, same names, types and
        HELP lines, in the Prometheus text format 0.0.4."""
        per_process = "true" if self.per_process else "false"
        text = (
            "# HELP zoo_info The model serving; per_process_state is true when kv, counter "
            "and sessions are per process.\n"
            "# TYPE zoo_info gauge\n"
            f'zoo_info{{model="{self.name}",per_process_state="{per_process}"}} 1\n'
            "# HELP zoo_requests_total Requests answered by the service.\n"
            "# TYPE zoo_requests_total counter\n"
            f"zoo_requests_total {requests}\n"
        )
        return Response(200, text.encode(), (("Content-Type", "text/plain; version=0.0.4"),))


def _allow(path: str) -> Optional[str]:
    """The methods a path answers, as zoo's `Route::allow` spells them; None for no route."""
    if path == "/echo":
        return _POST_ALLOW
    if path in ("/", "/plaintext", "/json", "/sleep", "/block", "/cpu", "/healthz", "/metrics"):
        return _GET_ALLOW
    return None


def query_param(query: Optional[str], name: str) -> Optional[str]:
    """The raw value of the first `name=value` pair; a bare `name` is the empty value."""
    if query is None:
        return None
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return value
    return None


def int_param(query: Optional[str], name: str, low: int, high: int) -> int:
    """The query parameter `name`, a whole number from `low` to `high`; digits only, as zoo
    takes no sign and no blanks."""
    raw = query_param(query, name)
    if raw is None:
        raise Reject(400, f"missing query parameter `{name}`")
    if not raw or not all("0" <= c <= "9" for c in raw):
        raise Reject(400, f"query parameter `{name}` must be a whole number")
    value = int(raw)
    if not low <= value <= high:
        raise Reject(400, f"query parameter `{name}` must be from {low} to {high}")
    return value


def mix_rounds(rounds: int) -> int:
    """zoo's `/cpu` work: `rounds` steps of a 64-bit mixer (an LCG step, then an xorshift),
    each step needing the one before. Python's integers are unbounded, so every step masks
    to 64 bits: that masking is part of what one unit of work costs here."""
    x = 0x9E3779B97F4A7C15
    for _ in range(rounds):
        x = (x * 6364136223846793005 + 1442695040888963407) & _MASK64
        x ^= x >> 29
    return x


def cpu_response(rounds: int) -> Response:
    """The `/cpu` answer, byte for byte zoo's."""
    return Response.text(200, f"cpu n={rounds} result={mix_rounds(rounds):016x}\n")


def echo(body: bytes, content_type: str) -> Response:
    """`POST /echo`: the body back, under the request's Content-Type if it is printable."""
    usable = content_type and all(c == " " or "!" <= c <= "~" for c in content_type)
    return Response(200, body, (("Content-Type", content_type if usable else "application/octet-stream"),))


def body_too_large() -> Response:
    """The answer to a body over `MAX_BODY_BYTES`."""
    return Response.text(413, f"request body over {MAX_BODY_BYTES} bytes\n")
