"""What /metrics and the health endpoints answer, wherever they are served (a thread of the collecting
process, or a serving process of its own: :mod:`exporter.servingchild`): content negotiation and readiness.

Imports nothing heavy: the serving process loads this and the HTTP server only.
"""

from __future__ import annotations

from collections.abc import Callable

from exporter.httpserver import App, Request, Response

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


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


def negotiate(request: Request) -> tuple[bool, bool, dict[str, str]]:
    """Whether a scrape asks for OpenMetrics and takes gzip, and the headers of its answer."""
    openmetrics = wants_openmetrics(request.header("Accept"))
    gzipped = wants_gzip(request.header("Accept-Encoding"))
    headers = {"Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    headers["Vary"] = "Accept, Accept-Encoding"
    return openmetrics, gzipped, headers


def no_payload() -> Response:
    return Response.text("no data rendered yet\n", 503)


def add_health_routes(app: App, ready: Callable[[], bool]) -> None:
    """/-/healthy (200 while the process answers) and /-/ready (200 once ``ready()``)."""

    async def healthy(_: Request) -> Response:
        return Response.text("OK\n")

    async def readiness(_: Request) -> Response:
        if ready():
            return Response.text("OK\n")
        return Response.text("first collection round not finished\n", 503)

    app.add("GET", "/-/healthy", healthy)
    app.add("GET", "/-/ready", readiness)
