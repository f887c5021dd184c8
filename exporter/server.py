"""The exporter's HTTP endpoints; knows nothing about JFrog.

/metrics sends the last rendered payload (text format, or OpenMetrics when
the Accept header asks for it; gzip when accepted). /-/healthy answers while
the process runs, /-/ready once every target finished its first round, /
the landing page (:mod:`exporter.landing`) with its Content-Security-Policy.

Clients are not trusted to behave (:mod:`exporter.httpserver`): a large
payload goes out a chunk at a time as the client takes it, within a deadline,
and a request that cannot be parsed costs one short log line at most.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from exporter.endpoints import add_health_routes, negotiate, no_payload
from exporter.families import Emitter
from exporter.httpserver import SEND_DEADLINE, App, Middleware, Request, Response
from exporter.landing import HEADERS as LANDING_HEADERS
from exporter.landing import landing_page
from exporter.selfmetrics import SCRAPES_ABORTED, SERVING_PROCESS_MEMORY
from exporter.snapshot import SnapshotStore

if TYPE_CHECKING:
    from exporter.config import TargetConfig


class ServingStats:
    """What the serving thread (or process) counts; read by the collection thread when it renders the
    self-metrics."""

    def __init__(self) -> None:
        self.scrapes_aborted = 0
        #: the serving process, when HTTP is answered by one of its own
        self.serving_pid: int | None = None

    def families(self) -> Iterable[Metric]:
        out = Emitter(None)
        out.counter(SCRAPES_ABORTED, self.scrapes_aborted)
        if self.serving_pid is not None:
            out.gauge(SERVING_PROCESS_MEMORY, resident_bytes(self.serving_pid))
        return out.families()


def resident_bytes(pid: int) -> float | None:
    """The resident size of process ``pid`` (Linux); None when it cannot be read (the process is gone)."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return float(pages * os.sysconf("SC_PAGE_SIZE"))


def build_app(store: SnapshotStore, middlewares: Sequence[Middleware] = (),
              send_deadline: float = SEND_DEADLINE, targets: Sequence[TargetConfig] = (),
              reload: Callable[[], Awaitable[str]] | None = None, stats: ServingStats | None = None) -> App:
    """The HTTP endpoints over ``store``; ``targets`` is the configuration the landing page shows, secrets left
    out (a list a reload updates in place); POST /-/reload only with ``reload`` (serve --web.enable-lifecycle);
    ``stats`` counts what the scrapes served here do (a serving process of its own adds its counts to them)."""
    app = App(middlewares, send_deadline)
    stats = stats or ServingStats()
    store.add_source(stats.families)

    def stalled() -> None:
        stats.scrapes_aborted += 1

    async def metrics(request: Request) -> Response:
        payload = store.payload
        if payload is None:
            return no_payload()
        openmetrics, gzipped, headers = negotiate(request)
        # Uncompressed, the rendered chunks themselves: no joined copy of the exposition is kept or made.
        chunks = [payload.gzipped(openmetrics)] if gzipped else payload.chunks(openmetrics)
        return Response(200, chunks, headers, on_stall=stalled)

    async def landing(_: Request) -> Response:
        return Response.text(landing_page(store, targets), content_type="text/html", headers=LANDING_HEADERS)

    async def reload_config(_: Request) -> Response:
        assert reload is not None
        try:
            summary = await reload()
        except Exception as exc:  # the running configuration stays; say why
            return Response.text(f"reload refused: {exc}\n", 500)
        return Response.text(f"reloaded: {summary}\n")

    app.add("GET", "/metrics", metrics)
    add_health_routes(app, store.ready)
    app.add("GET", "/", landing)
    if reload is not None:
        app.add("POST", "/-/reload", reload_config)
    return app
