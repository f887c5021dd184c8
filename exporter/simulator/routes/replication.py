"""Replication: configurations (with their credentials, as the real API sends them), status, blocking."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, edition_refusal, jfrog_error
from exporter.simulator.render import iso8601
from exporter.simulator.replication_data import ReplicatedRepo, ReplicationArea, area


def _refused(request: web.Request) -> web.Response | None:
    return edition_refusal(request.app[STATE].scenario.edition)


def _area(request: web.Request) -> ReplicationArea | None:
    return area(request.app[STATE].scenario)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else iso8601(ts)


def configs(repo: ReplicatedRepo) -> list[dict[str, Any]]:
    """2.3.1.1: one object per target, credentials included."""
    return [
        {
            "url": t.url,
            "socketTimeoutMillis": 15000,
            "username": t.username,
            "password": t.password,
            "enableEventReplication": t.event_based,
            "enabled": t.enabled,
            "cronExp": repo.cron,
            "syncDeletes": True,
            "syncProperties": True,
            "syncStatistics": False,
            "repoKey": repo.key,
            "replicationKey": f"{repo.key}_{i}",
            "includePathPrefixPattern": "",
            "excludePathPrefixPattern": "",
            "checkBinaryExistenceInFilestore": False,
        }
        for i, t in enumerate(repo.targets)
    ]


def status(repo: ReplicatedRepo) -> dict[str, Any]:
    """2.3.1.5: the repository's status, each target and the per-remote-repository map."""
    targets = [] if repo.pull else repo.targets
    return {
        "status": repo.status,
        "lastCompleted": _iso(repo.last_completed),
        "targets": [
            {"url": t.url, "repoKey": t.remote_repo, "status": t.status, "lastCompleted": _iso(t.last_completed)}
            for t in targets
        ],
        "repositories": {
            t.remote_repo: {"status": t.status, "lastCompleted": _iso(t.last_completed)} for t in targets
        },
    }


@admin
async def all_configs(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    return web.json_response([c for repo in data.repos for c in configs(repo)])


@admin
async def repo_config(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    data = _area(request)
    repo = data.find(request.match_info["repo"]) if data else None
    if data is None or repo is None:
        return jfrog_error(404, f"Could not find replication for repository '{request.match_info['repo']}'")
    body = configs(repo)
    # A multi-push repository answers an array, a single replication one object.
    return web.json_response(body if len(body) > 1 else body[0])


async def repo_status(request: web.Request) -> web.Response:
    """Needs read permission only (not admin), like the real endpoint."""
    refused = _refused(request)
    if refused is not None:
        return refused
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    key = request.match_info["repo"]
    repo = data.find(key)
    if repo is not None:
        return web.json_response(status(repo))
    if any(r.key == key for r in request.app[STATE].scenario.repos):
        return web.json_response({"status": "never_run", "lastCompleted": None, "targets": [], "repositories": {}})
    return jfrog_error(404, f"Repository '{key}' not found")


@admin
async def system_replications(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    return web.json_response({"blockPullReplications": data.block_pull, "blockPushReplications": data.block_push})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/replications", all_configs)
    router.add_get("/artifactory/api/replications/{repo}", repo_config)
    router.add_get("/artifactory/api/replication/{repo}", repo_status)
    router.add_get("/artifactory/api/system/replications", system_replications)
