"""System routes: ping, readiness, liveness, version, licenses, router health."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.simulator.core import CLOUD_NO_LICENSE, STATE, admin, jfrog_error, public
from exporter.simulator.render import license_date
from exporter.simulator.scenarios import License


@public
async def ping(request: web.Request) -> web.Response:
    # Artifactory 7 answers ping to anyone, whatever credentials come with it (tests/field/ping.yaml).
    return web.Response(text="OK", content_type="text/plain")


@public
async def readiness(request: web.Request) -> web.Response:
    if request.app[STATE].scenario.ready:
        return web.json_response({"code": "OK"})
    return web.json_response({"code": "UNAVAILABLE"}, status=503)


async def liveness(request: web.Request) -> web.Response:
    return web.json_response({"code": "OK"})


async def version(request: web.Request) -> web.Response:
    scenario = request.app[STATE].scenario
    return web.json_response({
        "version": scenario.version,
        "revision": scenario.revision,
        "addons": ["build", "ldap", "properties", "rest", "search", "sso", "watch", "webstart"],
    })


def _license(lic: License, ha: bool) -> dict[str, Any]:
    valid = lic.valid_through if isinstance(lic.valid_through, str) else license_date(lic.valid_through)
    body: dict[str, Any] = {"type": lic.type, "validThrough": valid, "licensedTo": lic.licensed_to}
    if ha:
        body.update({
            "licenseHash": lic.license_hash,
            "nodeId": lic.node_id or "Not in use",
            "nodeUrl": lic.node_url or "Not in use",
            "expired": False,
        })
    return body


@admin
async def licenses(request: web.Request) -> web.Response:
    scenario = request.app[STATE].scenario
    if scenario.edition == "cloud":
        return jfrog_error(400, CLOUD_NO_LICENSE)
    if scenario.ha_licenses is not None:
        # Real HA servers wrap the list, where the documents show a bare array (tests/field/system.yaml).
        return web.json_response({"licenses": [_license(lic, ha=True) for lic in scenario.ha_licenses]})
    if scenario.licenses_as_object and scenario.license is not None:
        return web.json_response(_license(scenario.license, ha=False))
    return jfrog_error(404, "File not found.")


@admin
async def license_(request: web.Request) -> web.Response:
    scenario = request.app[STATE].scenario
    if scenario.license is None:
        return jfrog_error(404, "File not found.")
    return web.json_response(_license(scenario.license, ha=False))


@public
async def router_health(request: web.Request) -> web.Response:
    """503 with the same body as soon as one service is not HEALTHY, like the router."""
    scenario = request.app[STATE].scenario
    services = [
        {"service_id": s.service_id, "node_id": s.node_id, "state": s.state, "message": s.message}
        for s in scenario.services
    ]
    body = {"router": {"node_id": scenario.node_id(), "state": "HEALTHY", "message": "OK"}, "services": services}
    healthy = all(s.state == "HEALTHY" for s in scenario.services)
    return web.json_response(body, status=200 if healthy else 503)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/system/ping", ping)
    router.add_get("/artifactory/api/v1/system/readiness", readiness)
    router.add_get("/artifactory/api/v1/system/liveness", liveness)
    router.add_get("/artifactory/api/system/version", version)
    router.add_get("/artifactory/api/system/licenses", licenses)
    router.add_get("/artifactory/api/system/license", license_)
    router.add_get("/router/api/v1/system/health", router_health)
