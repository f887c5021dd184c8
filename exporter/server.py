"""The exporter's HTTP endpoints; knows nothing about JFrog.

/metrics sends the last rendered payload (text format, or OpenMetrics when
the Accept header asks for it; gzip when accepted). /-/healthy answers while
the process runs, /-/ready once every target finished its first round.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exporter import __version__
from exporter.snapshot import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, RunRecord, SnapshotStore


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def wants_gzip(accept_encoding: str) -> bool:
    return any(part.strip().split(";")[0] == "gzip" for part in accept_encoding.split(","))


def build_app(store: SnapshotStore, middlewares: Sequence[Any] = ()) -> web.Application:
    app = web.Application(middlewares=list(middlewares))

    async def metrics(request: web.Request) -> web.Response:
        payload = store.payload
        if payload is None:
            return web.Response(status=503, text="no data rendered yet\n")
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        gzipped = wants_gzip(request.headers.get("Accept-Encoding", ""))
        headers = {"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept, Accept-Encoding"
        return web.Response(body=payload.body(openmetrics, gzipped), headers=headers)

    async def healthy(_: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready(_: web.Request) -> web.Response:
        if store.all_ran() and store.payload is not None:
            return web.Response(text="OK\n")
        return web.Response(status=503, text="first collection round not finished\n")

    async def landing(_: web.Request) -> web.Response:
        return web.Response(text=landing_page(store), content_type="text/html")

    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/", landing)
    return app


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    seconds = max(0.0, now - ts)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _failed_parts(run: RunRecord, now: float) -> str:
    """The parts that failed, each with its reason and the age of the data it keeps."""
    items = [
        f"<li><code>{html.escape(p.endpoint)}</code> {html.escape(p.outcome.value)}: {html.escape(p.reason)} "
        f"(data from {_age(p.last_success, now)})</li>"
        for p in run.failed_parts
    ]
    return f"<ul>{''.join(items)}</ul>" if items else html.escape(run.reason)


def landing_page(store: SnapshotStore) -> str:
    """Per target and collector: last outcome, the parts that failed and why, duration, data age, interval."""
    now = time.time()
    rows = []
    for (target, collector), run in sorted(store.view().items()):
        outcome = run.outcome.value if run.outcome else "pending"
        css = "ok" if run.succeeded else ("pending" if run.outcome is None else "fail")
        nxt = datetime.fromtimestamp(run.next_run, UTC) if run.next_run else None
        rows.append(
            "<tr class='{css}'><td>{t}</td><td>{c}</td><td>{o}</td><td>{r}</td><td>{d}</td>"
            "<td>{a}</td><td>{i:g}s</td><td>{n}</td></tr>".format(
                css=css,
                t=html.escape(target),
                c=html.escape(collector),
                o=html.escape(outcome),
                r=_failed_parts(run, now),
                d=f"{run.duration:.2f}s" if run.last_run else "",
                a=_age(run.last_success, now),
                i=run.interval,
                n=html.escape(nxt.strftime("%H:%M:%S %Z")) if nxt else "",
            )
        )
    payload = store.payload
    rendered = (
        f"{payload.series} series, rendered in {payload.render_seconds * 1000:.0f} ms, {_age(payload.rendered_at, now)}"
        if payload
        else "nothing rendered yet"
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>JFrog Exporter</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
tr.ok td:nth-child(3) {{ color: #1a7f37; }} tr.fail td:nth-child(3) {{ color: #cf222e; font-weight: bold; }}
tr.pending td:nth-child(3) {{ color: #9a6700; }}
</style></head>
<body>
<h1>JFrog Exporter {html.escape(__version__)}</h1>
<p><a href="/metrics">Metrics</a> ({html.escape(rendered)}) &middot; <a href="/-/healthy">/-/healthy</a>
&middot; <a href="/-/ready">/-/ready</a></p>
<p>Data is collected in the background; a failed run keeps the last good data, whose age is shown here.</p>
<table>
<tr><th>target</th><th>collector</th><th>last outcome</th><th>reason</th><th>duration</th>
<th>data from</th><th>interval</th><th>next run</th></tr>
{"".join(rows)}
</table>
</body></html>
"""
