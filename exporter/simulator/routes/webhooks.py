"""Event service routes: the webhook subscriptions and their historical troubleshooting data.

Both need an admin, as the documents say (seeds/jfrog-rest-apis.txt 4.11.2 and 4.11.11). A
scenario without the area has no Event service: its routes answer 404.
"""

from __future__ import annotations

import json

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error
from exporter.simulator.webhooks_data import WebhooksArea, area, subscription_body

_NO_SERVICE = "Not Found"


def _area(request: web.Request) -> WebhooksArea | None:
    return area(request.app[STATE].scenario)


@admin
async def list_subscriptions(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_SERVICE)
    return web.json_response([subscription_body(s) for s in data.subscriptions])


def _timestamp(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise ValueError(f"{name} must be a Unix timestamp in milliseconds")
    return int(raw)


def _refusal(start: int | None, end: int | None, count: int | None) -> str | None:
    """Why a query is refused; a query without an end and a count would be a live stream that never ends."""
    if start is None and (end is not None or count is not None):
        return "end and count cannot be used without start"
    if start is None or (end is None and count is None):
        # The real service streams every record live: an exporter must never ask that.
        return "the simulator does not stream live troubleshooting data (give start, and end or count)"
    if count is not None and count <= 0:
        return "count must be positive"
    return None


@admin
async def troubleshooting(request: web.Request) -> web.Response:
    """The records of [start, end), oldest first, at most count: JSON objects one after the other, as documented."""
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_SERVICE)
    try:
        start, end, count = (_timestamp(request, n) for n in ("start", "end", "count"))
    except ValueError as exc:
        return jfrog_error(400, str(exc))
    refusal = _refusal(start, end, count)
    if refusal is not None:
        return jfrog_error(400, refusal)
    assert start is not None
    now_ms = int(data.clock() * 1000) + 1
    records = data.deliveries(start, now_ms if end is None else end, count)
    # Pretty-printed objects separated by a blank line, like the documented sample.
    text = "\n\n".join(json.dumps(r, indent=2) for r in records)
    return web.Response(text=text, content_type="application/json")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/event/api/v1/subscriptions", list_subscriptions)
    router.add_get("/event/api/v1/troubleshooting", troubleshooting)
