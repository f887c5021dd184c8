"""The exporter's HTTP endpoints; knows nothing about JFrog.

/metrics sends the last rendered payload (text format, or OpenMetrics when
the Accept header asks for it; gzip when accepted). /-/healthy answers while
the process runs, /-/ready once every target finished its first round, /
the landing page (:mod:`exporter.landing`) with its Content-Security-Policy.

Clients are not trusted to behave: a large payload goes out a chunk at a time
as the client takes it, within a deadline, and a request that cannot be
parsed costs one short log line at most.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client.core import Metric

from exporter.families import Emitter
from exporter.landing import HEADERS as LANDING_HEADERS
from exporter.landing import landing_page
from exporter.selfmetrics import SCRAPES_ABORTED
from exporter.snapshot import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, SnapshotStore

if TYPE_CHECKING:
    from exporter.config import TargetConfig

#: Bytes handed to the transport at a time. asyncio copies what the socket does not take at once into a
#: buffer of the connection's own: a client that stops reading holds about one chunk, not a copy of the payload.
SEND_CHUNK = 256 * 1024
#: A client that has not taken a whole response by then is dropped (Prometheus gave up long before).
SEND_DEADLINE = 60.0
#: At most one line per this many seconds about requests that could not be parsed.
MALFORMED_LOG_INTERVAL = 60.0
#: Characters of a malformed request's error message that reach the log.
EXCERPT_CHARS = 80

log = logging.getLogger("exporter.http")


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def wants_gzip(accept_encoding: str) -> bool:
    """Whether the client accepts gzip (RFC 9110: a q of 0 refuses it; "*" covers it unless gzip is named)."""
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        weights[coding.strip().lower()] = _quality(params)
    if "gzip" in weights:
        return weights["gzip"] > 0
    return weights.get("*", 0) > 0


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0 <= q <= 1 else 0.0
    return 1.0


class ServingStats:
    """What the serving thread counts; read by the collection thread when it renders the self-metrics."""

    def __init__(self) -> None:
        self.scrapes_aborted = 0

    def families(self) -> Iterable[Metric]:
        out = Emitter(None)
        out.counter(SCRAPES_ABORTED, self.scrapes_aborted)
        return out.families()


async def send_body(request: web.Request, response: web.StreamResponse, chunks: Sequence[bytes],
                    deadline: float) -> bool:
    """Send ``chunks`` a slice at a time, each once the client took the previous; False if it stalled past
    ``deadline``.

    ``chunks`` are the payload shared by every scrape: slices of them are sent, never copies.
    """
    response.content_length = sum(len(chunk) for chunk in chunks)
    try:
        async with asyncio.timeout(deadline):
            await response.prepare(request)
            for chunk in chunks:
                view = memoryview(chunk)
                for start in range(0, len(view), SEND_CHUNK):
                    await response.write(view[start:start + SEND_CHUNK])  # waits while the transport is full
            await response.write_eof()
    except TimeoutError:
        if request.transport is not None:
            request.transport.abort()  # frees what the transport still holds for this client
        return False
    except ConnectionError:
        pass  # the client left; aiohttp closes the connection
    return True


def build_app(store: SnapshotStore, middlewares: Sequence[Any] = (),
              send_deadline: float = SEND_DEADLINE, targets: Sequence[TargetConfig] = (),
              reload: Callable[[], Awaitable[str]] | None = None) -> web.Application:
    """The HTTP endpoints over ``store``; ``targets`` is the configuration the landing page shows, secrets left
    out (a list a reload updates in place); POST /-/reload only with ``reload`` (serve --web.enable-lifecycle)."""
    app = web.Application(middlewares=list(middlewares))
    stats = ServingStats()
    store.add_source(stats.families)

    async def metrics(request: web.Request) -> web.StreamResponse:
        payload = store.payload
        if payload is None:
            return web.Response(status=503, text="no data rendered yet\n")
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        gzipped = wants_gzip(request.headers.get("Accept-Encoding", ""))
        headers = {"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept, Accept-Encoding"
        # Uncompressed, the rendered chunks themselves: no joined copy of the exposition is kept or made.
        chunks = [payload.gzipped(openmetrics)] if gzipped else payload.chunks(openmetrics)
        if sum(len(chunk) for chunk in chunks) <= SEND_CHUNK:  # the socket takes it at once: nothing is held
            return web.Response(body=b"".join(chunks), headers=headers)
        response = web.StreamResponse(headers=headers)
        if not await send_body(request, response, chunks, send_deadline):
            stats.scrapes_aborted += 1
            log.debug("dropped a /metrics client from %s that had not read the response within %gs",
                      request.remote, send_deadline)
        return response

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(_: web.Request) -> web.Response:
        if store.ready():
            return web.Response(text="OK\n")
        return web.Response(status=503, text="first collection round not finished\n")

    async def landing(_: web.Request) -> web.Response:
        return web.Response(text=landing_page(store, targets), content_type="text/html", headers=LANDING_HEADERS)

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    async def reload_config(_: web.Request) -> web.Response:
        assert reload is not None
        try:
            summary = await reload()
        except Exception as exc:  # the running configuration stays; say why
            return web.Response(status=500, text=f"reload refused: {exc}\n")
        return web.Response(text=f"reloaded: {summary}\n")

    app.router.add_get("/", landing)
    if reload is not None:
        app.router.add_post("/-/reload", reload_config)
    return app


def app_runner(app: web.Application) -> web.AppRunner:
    """A runner whose request errors go to :data:`log`, where malformed requests are shortened."""
    return web.AppRunner(app, access_log=None, handle_signals=False, logger=log)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, printable ASCII only, at most ``limit`` characters: safe to log whatever sent it."""
    flat = " ".join(text.split())
    safe = "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in flat)
    return safe if len(safe) <= limit else safe[:limit - 3] + "..."


class MalformedRequests(logging.Filter):
    """Turns aiohttp's traceback for a request it could not parse into one short line, at most one a minute.

    Such requests come from scanners or broken clients before any
    authentication; each cost a 9-line traceback, so a flood of them flooded
    the log. The first is logged; later ones within the interval are counted
    and reported with the next line. Other errors keep their traceback.
    """

    def __init__(self, interval: float = MALFORMED_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return False
        more = f" ({self._suppressed} more since the last such line)" if self._suppressed else ""
        record.msg = "rejected a malformed HTTP request (%s) from %s: %s: %s%s"
        record.args = (error.code, _remote(record), type(error).__name__, excerpt(error.message), more)
        record.exc_info = record.exc_text = record.stack_info = None
        if record.levelno > logging.WARNING:  # the client's fault, not the exporter's
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._last, self._suppressed = now, 0
        return True


def _remote(record: logging.LogRecord) -> str:
    """The client's address: aiohttp passes it as the message's only argument."""
    args = record.args if isinstance(record.args, tuple) else ()
    return excerpt(str(args[0]), 64) if len(args) == 1 else "?"


log.addFilter(MalformedRequests())
