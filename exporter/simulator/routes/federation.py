"""Federation: the Federation service (RTFS) and legacy monitoring endpoints, failed binary tasks,
inconsistent repositories, and the repository list by type."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error
from exporter.simulator.federation_data import RTFS, FederatedRepo, FederationArea, area

_NOT_FOUND = "File not found."


def _area(request: web.Request, mode: str | None = None) -> FederationArea | None:
    data = area(request.app[STATE].scenario)
    if data is None or (mode is not None and data.mode != mode):
        return None
    return data


def _refusal(action: str) -> web.Response:
    """What a legacy endpoint answers on a JPD where the Federation service is enabled."""
    return web.Response(status=400, text=f"RTFS is enabled therefore {action} is not allowed",
                        content_type="text/plain")


def _legacy_only(request: web.Request, action: str) -> FederationArea | web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NOT_FOUND)
    if data.mode == RTFS:
        return _refusal(action)
    return data


def _rtfs_only(request: web.Request) -> FederationArea | web.Response:
    data = _area(request, RTFS)
    return jfrog_error(404, _NOT_FOUND) if data is None else data


def _legacy_url(url: str) -> str:
    # The legacy endpoints spell member URLs with a trailing slash (2.11.11 samples).
    return url.rstrip("/") + "/"


# -- RTFS ----------------------------------------------------------------------


@admin
async def state_summary(request: web.Request) -> web.Response:
    data = _rtfs_only(request)
    if isinstance(data, web.Response):
        return data
    counts = dict.fromkeys(("HEALTHY", "NOT_AVAILABLE", "DELAYED", "PENDING_FS", "FULL_SYNC_RUNNING", "ERROR",
                            "DISABLED"), 0)
    for repo in data.repos:
        counts[repo.summary_state()] += 1
    return web.json_response({"federationStates": counts})


@admin
async def state_list(request: web.Request) -> web.Response:
    data = _rtfs_only(request)
    if isinstance(data, web.Response):
        return data
    federations = [
        {
            "localRepoKey": repo.key,
            "memberInfoList": [
                {"url": m.url, "repoKey": m.repo_key, "aggregatedStatus": m.state, "supported": m.supported,
                 "disabled": m.state == "DISABLED", "inLag": m.in_lag}
                for m in repo.members
            ],
            "priority": repo.priority,
        }
        for repo in data.repos
    ]
    return web.json_response({"federations": federations})


def connections(data: FederationArea, repo: FederatedRepo) -> list[dict[str, Any]]:
    """Every connection of the Federation, both directions and between the other members, like the real API."""
    nodes = [(data.local_url, repo.key), *((m.url, m.repo_key) for m in repo.members)]
    by_node = {(m.url, m.repo_key): m for m in repo.members}
    out = []
    for source in nodes:
        for target in nodes:
            if source == target:
                continue
            entry: dict[str, Any] = {"localRepoKey": source[1], "localPlatformUrl": source[0],
                                     "remoteRepoKey": target[1], "remotePlatformUrl": target[0]}
            member = by_node.get(target)
            if source == nodes[0] and member is not None:
                entry.update(status=member.state, lagInMs=member.lag_ms, queuedEvents=member.queued_events,
                             disabled=member.state == "DISABLED", supported=member.supported)
            else:
                # Connections not leaving this JPD: distinct values, so a reader that takes them is caught.
                entry.update(status="HEALTHY", lagInMs=777_000, queuedEvents=99, disabled=False, supported=True)
            out.append(entry)
    return out


@admin
async def connection_states(request: web.Request) -> web.Response:
    data = _rtfs_only(request)
    if isinstance(data, web.Response):
        return data
    repo = data.find(request.match_info["repo"])
    if repo is None:
        return jfrog_error(404, f"Repository '{request.match_info['repo']}' is not a federated repository")
    return web.json_response({"memberConnections": connections(data, repo)})


# -- legacy --------------------------------------------------------------------


@admin
async def mirrors_lag(request: web.Request) -> web.Response:
    data = _legacy_only(request, "get mirrors lag")
    if isinstance(data, web.Response):
        return data
    threshold = float(request.query.get("thresholdTimeInMs", "-1"))
    return web.json_response([
        {"localRepoKey": repo.key, "remoteUrl": _legacy_url(m.url), "remoteRepoKey": m.repo_key,
         "lagInMS": m.lag_ms, "eventRegistrationTimeStamp": 1663772736117}
        for repo in data.repos for m in repo.members if m.lag_ms > threshold
    ])


@admin
async def unavailable_mirrors(request: web.Request) -> web.Response:
    data = _legacy_only(request, "get unavailable mirrors")
    if isinstance(data, web.Response):
        return data
    return web.json_response([
        {"localRepoKey": repo.key, "remoteUrl": _legacy_url(m.url), "remoteRepoKey": m.repo_key, "status": m.state}
        for repo in data.repos for m in repo.members if m.state != "HEALTHY"
    ])


@admin
async def federation_state(request: web.Request) -> web.Response:
    data = _legacy_only(request, "get federation state")
    if isinstance(data, web.Response):
        return data
    return web.json_response([
        {"localRepoKey": repo.key, "status": repo.legacy_state,
         "members": [{"remoteUrl": _legacy_url(m.url), "remoteRepoKey": m.repo_key} for m in repo.members]}
        for repo in data.repos
    ])


def _legacy_repo_status(repo: FederatedRepo, v2: bool) -> dict[str, Any]:
    def status(state: str) -> str:
        return state if v2 else "SYNC" if state == "HEALTHY" else "OUT_OF_SYNC"

    return {
        "localKey": repo.key,
        "binariesTasksInfo": {"inProgressTasks": 0, "failingTasks": repo.failed_binary_tasks},
        "mirrorEventsStatusInfo": [
            {"remoteUrl": m.url, "remoteRepoKey": m.repo_key, "status": status(m.state),
             "createEvents": m.queued_events, "updateEvents": 0, "deleteEvents": 0, "propsEvents": 0,
             "errorEvents": 0, "lagInMS": m.lag_ms, "eventRegistrationTimeStamp": 1676559878115}
            for m in repo.members
        ],
        "federatedArtifactStatus": {"countFullyReplicateArtifacts": 0, "countArtificiallyReplicatedArtifacts": 0},
    }


async def _repo_status(request: web.Request, v2: bool) -> web.Response:
    data = _legacy_only(request, "get federated repository status")
    if isinstance(data, web.Response):
        return data
    repo = data.find(request.match_info["repo"])
    if repo is None:
        return jfrog_error(404, f"Repository '{request.match_info['repo']}' is not a federated repository")
    return web.json_response(_legacy_repo_status(repo, v2))


@admin
async def repo_status_v1(request: web.Request) -> web.Response:
    return await _repo_status(request, v2=False)


@admin
async def repo_status_v2(request: web.Request) -> web.Response:
    return await _repo_status(request, v2=True)


# -- both services ---------------------------------------------------------------


@admin
async def inconsistent_repos(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NOT_FOUND)
    return web.json_response([repo.key for repo in data.repos if repo.inconsistent])


@admin
async def failed_binary_tasks(request: web.Request) -> web.Response:
    """2.11.12: paginated with limit (default 1000) and page (from 1)."""
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NOT_FOUND)
    key = request.query.get("repoKey")
    if not key:
        return jfrog_error(400, "repoKey is required")
    repo = data.find(key)
    if repo is None:
        return jfrog_error(404, f"Repository '{key}' is not a federated repository")
    try:
        limit = max(1, int(request.query.get("limit", "1000")))
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        return jfrog_error(400, "limit and page must be numbers")
    start = (page - 1) * limit
    stop = min(repo.failed_binary_tasks, start + limit)
    return web.json_response([
        {"sha1": hashlib.sha1(f"{key}/{i}".encode(), usedforsecurity=False).hexdigest(), "repoKey": key,
         "creationTime": 1694003288367 + i, "failuresCount": 10}
        for i in range(start, stop)
    ])


async def repositories(request: web.Request) -> web.Response:
    """2.10.4: minimal details of every repository, optionally of one type (can be anonymous)."""
    scenario = request.app[STATE].scenario
    wanted = request.query.get("type", "").lower()
    base = str(request.url.origin())
    return web.json_response([
        {"key": r.key, "type": r.repo_type, "description": "", "url": f"{base}/artifactory/{r.key}",
         "packageType": r.package_type}
        for r in scenario.repos if not wanted or r.repo_type.lower() == wanted
    ])


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/federation/status/stateSummary", state_summary)
    router.add_get("/artifactory/api/federation/status/stateList", state_list)
    router.add_get("/artifactory/api/federation/status/connectionStates/{repo}", connection_states)
    router.add_get("/artifactory/api/federation/status/mirrorsLag", mirrors_lag)
    router.add_get("/artifactory/api/federation/status/unavailableMirrors", unavailable_mirrors)
    router.add_get("/artifactory/api/federation/state", federation_state)
    router.add_get("/artifactory/api/federation/status/repo/{repo}", repo_status_v1)
    router.add_get("/artifactory/api/v2/federation/status/repo/{repo}", repo_status_v2)
    router.add_get("/artifactory/api/federation/inconsistentRepos", inconsistent_repos)
    router.add_get("/artifactory/api/federation/binaries/failures/list", failed_binary_tasks)
    router.add_get("/artifactory/api/repositories", repositories)

