"""Faults the simulator can inject per route, to show the exporter survives them.

A fault applies to the routes matching its pattern (fnmatch on the path, e.g.
``/artifactory/api/storageinfo`` or ``/artifactory/api/replication/*``) for a
number of requests or until cleared.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)

KINDS = (
    "error_500",  # JFrog error JSON with status 500
    "html_502",  # a reverse proxy's HTML error page
    "unavailable_503",  # 503 with Retry-After
    "throttled_429",  # 429 with Retry-After
    "timeout",  # no answer for `seconds`
    "slow_body",  # headers at once, then the body a few bytes per `seconds`
    "reset",  # the connection is closed without an answer
    "truncated_json",  # the real body cut in half
    "wrong_type",  # well-formed JSON of the wrong type
    "plain_text",  # a plain-text refusal where JSON is expected
    "empty",  # 200 with an empty body
    "huge",  # a 50 MB body
    "answer",  # a given status, body and content type: a recorded answer of a real JPD
)


@dataclass
class Fault:
    route: str
    kind: str
    #: how many requests it affects; None: until cleared
    times: int | None = None
    #: for timeout and slow_body
    seconds: float = 30.0
    #: for huge
    size: int = 50 * 1024 * 1024
    #: for answer
    status: int = 200
    body: str = ""
    content_type: str = "application/json"

    def matches(self, path: str) -> bool:
        return fnmatch.fnmatchcase(path, self.route)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        kind = str(data.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        times = data.get("times")
        return cls(
            route=str(data.get("route", "*")),
            kind=kind,
            times=int(times) if times is not None else None,
            seconds=float(data.get("seconds", 30.0)),
            size=int(data.get("size", 50 * 1024 * 1024)),
            status=int(data.get("status", 200)),
            body=str(data.get("body", "")),
            content_type=str(data.get("content_type", "application/json")),
        )

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``ROUTE=KIND`` as given on the command line."""
        route, sep, kind = text.rpartition("=")
        if not sep:
            raise ValueError(f"{text!r}: expected ROUTE=KIND")
        return cls.from_dict({"route": route, "kind": kind})


def take(faults: list[Fault], path: str) -> Fault | None:
    """The first active fault for ``path``; counts one use of it."""
    for fault in faults:
        if fault.matches(path):
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    faults.remove(fault)
            return fault
    return None


#: faults that answer at once, without the real handler
_CANNED: dict[str, Callable[[], web.Response]] = {
    "error_500": lambda: web.json_response({"errors": [{"status": 500, "message": "Internal Server Error"}]},
                                           status=500),
    "html_502": lambda: web.Response(status=502, text=HTML_502, content_type="text/html"),
    "unavailable_503": lambda: web.Response(status=503, text="Service Unavailable", headers={"Retry-After": "1"}),
    "throttled_429": lambda: web.Response(status=429, text="Too Many Requests", headers={"Retry-After": "1"}),
    "wrong_type": lambda: web.json_response("unexpected"),
    "plain_text": lambda: web.Response(text="This feature is not available on this instance",
                                       content_type="text/plain"),
    "empty": lambda: web.Response(body=b"", content_type="application/json"),
}


async def apply(fault: Fault, request: web.Request, handler: Handler) -> web.StreamResponse:
    canned = _CANNED.get(fault.kind)
    if canned is not None:
        return canned()
    if fault.kind == "answer":
        # surrogatepass: a hostile answer may carry bytes that are no UTF-8 (a lone surrogate).
        body = fault.body.encode("utf-8", "surrogatepass")
        return web.Response(status=fault.status, body=body, headers={"Content-Type": fault.content_type})
    if fault.kind == "timeout":
        await asyncio.sleep(fault.seconds)
        return await handler(request)
    if fault.kind == "reset":
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError("fault: connection reset")
    if fault.kind == "huge":
        return await _huge(request, fault.size)
    real = await handler(request)
    body = real.body if isinstance(real, web.Response) and isinstance(real.body, bytes) else b"{}"
    if fault.kind == "truncated_json":
        return web.Response(body=body[: max(1, len(body) // 2)], status=real.status, content_type="application/json")
    return await _trickle(request, real.status, body, fault.seconds)


async def _trickle(request: web.Request, status: int, body: bytes, seconds: float) -> web.StreamResponse:
    """slow_body: the real answer, a few bytes at a time over ``seconds``."""
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    await response.prepare(request)
    pieces = max(1, min(10, len(body)))
    step = max(1, -(-len(body) // pieces))
    for i in range(0, len(body), step):
        await response.write(body[i : i + step])
        await asyncio.sleep(seconds / pieces)
    if not body:
        await asyncio.sleep(seconds)  # an empty answer is slow too
    await response.write_eof()
    return response


async def _huge(request: web.Request, size: int) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    chunk = b"[" + b'"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",' * 32768
    sent = 0
    try:
        while sent < size:
            await response.write(chunk)
            sent += len(chunk)
        await response.write(b'"end"]')
        await response.write_eof()
    except (ConnectionResetError, RuntimeError):
        pass  # the client refused the body: exactly what a size cap does
    return response


def random_fault(rng: random.Random, route: str = "*") -> Fault:
    """A random fault kind for soak tests (short timeouts so soaks stay bounded)."""
    kind = rng.choice([k for k in KINDS if k != "answer"])
    return Fault(route=route, kind=kind, times=1, seconds=rng.uniform(0.1, 3.0), size=8 * 1024 * 1024)
