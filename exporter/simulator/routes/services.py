"""Platform services: JFConnect ping and readiness (4.10.1, 4.10.3), Access ping (4.7.4) and the Access
Federation targets (4.7.7.1)."""

from __future__ import annotations

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error, public
from exporter.simulator.services_data import ServicesArea, area

_NOT_FOUND = "File not found."


def _area(request: web.Request) -> ServicesArea:
    return area(request.app[STATE].scenario) or ServicesArea(jfconnect_up=None, federation_targets=None)


def _text(ok: bool) -> web.Response:
    # JFConnect answers in plain text, spelled "Ok" (4.10.1); a service that is not ready answers 503.
    return web.Response(text="Ok", content_type="text/plain") if ok else \
        web.Response(status=503, text="Service Unavailable", content_type="text/plain")


async def jfconnect_ping(request: web.Request) -> web.Response:
    # The documents want a token for JFConnect (4.10): it is not marked public, the exporter retries with one.
    up = _area(request).jfconnect_up
    return jfrog_error(404, _NOT_FOUND) if up is None else _text(up)


async def jfconnect_readiness(request: web.Request) -> web.Response:
    data = _area(request)
    if data.jfconnect_up is None:
        return jfrog_error(404, _NOT_FOUND)
    return _text(data.jfconnect_up and data.jfconnect_ready)


@public
async def access_ping(request: web.Request) -> web.Response:
    # Answered to anyone, although the documents ask for an admin token (tests/field/services.yaml).
    if _area(request).access_up:
        return web.Response(text="OK", content_type="text/plain")
    return web.Response(status=503, text="Service Unavailable", content_type="text/plain")


@admin
async def access_federation(request: web.Request) -> web.Response:
    targets = _area(request).federation_targets
    if targets is None:
        return jfrog_error(404, _NOT_FOUND)
    return web.json_response({"configurations": [
        {"name": t.name, "url": t.url, "entities": t.entities,
         "permissionFilters": {"includePatterns": t.include_patterns, "excludePatterns": t.exclude_patterns},
         "active": t.active}
        for t in targets
    ]})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/jfconnect/api/v1/system/ping", jfconnect_ping)
    router.add_get("/jfconnect/api/v1/system/readiness", jfconnect_readiness)
    router.add_get("/access/api/v1/system/ping", access_ping)
    router.add_get("/access/api/v1/system/federation", access_federation)
