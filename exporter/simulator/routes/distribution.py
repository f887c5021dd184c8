"""JFrog Distribution: ping, system info, Release Bundle v1 distribution status, received v2 bundles, metrics.

Shapes from chapter 5 of jfrog-rest-apis.txt, made well-formed (the
documented samples are not). A scenario without Distribution answers 404
everywhere under /distribution. Ping and system info need no credentials;
received Release Bundles and the metrics need an admin (a reader gets 403).
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error, public
from exporter.simulator.distribution_data import COMPLETED, FAILED, Distribution, DistributionArea, area
from exporter.simulator.render import iso8601


def _area(request: web.Request) -> DistributionArea | None:
    return area(request.app[STATE].scenario)


def _not_found() -> web.Response:
    return jfrog_error(404, "Not Found")


def distribution_status(d: Distribution) -> dict[str, Any]:
    """5.6.4: one distribution and its sites."""
    return {
        "distribution_id": d.ident,
        "distribution_friendly_id": d.ident,
        "created_by": "release-manager",
        "distributed_by": "release-manager",
        "start_time": iso8601(d.started),
        "finish_time": None if d.finished is None else iso8601(d.finished),
        "type": d.kind,
        "release_bundle_name": d.bundle,
        "release_bundle_version": d.version,
        "status": d.status,
        "distribution_rules": [{"site_name": "*", "city_name": "*", "country_codes": ["*"]}],
        "sites": [
            {
                "status": site.status,
                "general_error": site.error,
                "target_artifactory": {"service_id": f"jfrt@01{site.name.replace('-', '')}", "name": site.name,
                                       "type": "edge"},
                "total_files": 4,
                "total_bytes": 4403784,
                "distributed_bytes": 4403784 if site.status == COMPLETED else 0,
                "distributed_files": 4 if site.status == COMPLETED else 0,
                "file_errors": [],
                "files_in_progress": [],
            }
            for site in d.sites
        ],
    }


@public
async def ping(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return _not_found()
    if not data.healthy:
        return web.json_response({"status_code": 500, "message": "One or more of the following services are "
                                  "unavailable: distributor, database and/or redis"}, status=500)
    return web.json_response({"status_code": 200, "message": "ok"})


@public
async def system_info(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return _not_found()
    return web.json_response({"status": "STABLE" if data.healthy else "UNSTABLE",
                              "message": "" if data.healthy else "redis is unavailable",
                              "version": data.version, "service_id": "jfds@01simulatedistribution"})


async def distributions(request: web.Request) -> web.Response:
    """Any authenticated user (Distribution filters by read permission; the simulator does not)."""
    data = _area(request)
    if data is None:
        return _not_found()
    if data.encoded is None:
        data.encoded = json.dumps([distribution_status(d) for d in data.distributions]).encode()
    return web.Response(body=data.encoded, content_type="application/json")


@admin
async def received(request: web.Request) -> web.Response:
    """5.5.1: one page (offset, limit) and the total, which the documents show as a string."""
    data = _area(request)
    if data is None:
        return _not_found()
    try:
        offset = max(0, int(request.query.get("offset", "0")))
        limit = max(1, int(request.query.get("limit", "100")))
    except ValueError:
        return jfrog_error(400, "offset and limit must be integers")
    page = data.received[offset:offset + limit]
    return web.json_response({
        "release_bundles": [{"name": b.name, "latest_version": b.latest_version, "source_project_key": "default",
                             "date_received": int(b.received * 1000), "number_of_versions": b.versions}
                            for b in page],
        "total": str(len(data.received)),
    })


@admin
async def metrics(request: web.Request) -> web.Response:
    """5.6.8: Distribution's own series, in the documented shape (millisecond timestamps on every sample)."""
    data = _area(request)
    if data is None:
        return _not_found()
    ts = int(time.time() * 1000)
    completed = sum(d.status == COMPLETED for d in data.distributions)
    failed = sum(d.status == FAILED for d in data.distributions)
    app = 'application="Distribution"'
    lines = [
        "# TYPE jfds_total_number_of_distribution_requests counter",
        "# HELP jfds_total_number_of_distribution_requests number of distribute start actions",
        f'jfds_total_number_of_distribution_requests_total{{{app},category="distribution"}} '
        f"{float(len(data.distributions))} {ts}",
        "# TYPE jfds_number_of_distributions_per_status counter",
        "# HELP jfds_number_of_distributions_per_status number of distributions per state",
        f'jfds_number_of_distributions_per_status_total{{{app},category="distribution",status="completed"}} '
        f"{float(completed)} {ts}",
        f'jfds_number_of_distributions_per_status_total{{{app},category="distribution",status="failed"}} '
        f"{float(failed)} {ts}",
        "# TYPE jfds_redis_tasks gauge",
        "# HELP jfds_redis_tasks",
        *(f'jfds_redis_tasks{{{app},queue="{queue}"}} 1.0 {ts}' for queue in ("pending", "working", "staging")),
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/distribution/api/v1/system/ping", ping)
    router.add_get("/distribution/api/v1/system/info", system_info)
    router.add_get("/distribution/api/v1/release_bundle/distribution", distributions)
    router.add_get("/distribution/api/v2/release_bundle/received", received)
    router.add_get("/distribution/api/v1/metrics", metrics)
