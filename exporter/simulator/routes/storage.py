"""Storage summary: /artifactory/api/storageinfo, rendered the way Artifactory renders it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error
from exporter.simulator.render import human_count, human_size, percent
from exporter.simulator.scenarios import Scenario


def storage_info(scenario: Scenario) -> dict[str, Any]:
    storage = scenario.storage
    assert storage is not None
    filestore: dict[str, Any] = {"storageType": storage.storage_type, "storageDirectory": storage.storage_dir}
    if storage.total_space is not None:
        filestore["totalSpace"] = human_size(storage.total_space)
    total = storage.total_space
    if storage.used_space is not None and total:
        filestore["usedSpace"] = f"{human_size(storage.used_space)} ({percent(storage.used_space, total)})"
    if storage.free_space is not None and total:
        filestore["freeSpace"] = f"{human_size(storage.free_space)} ({percent(storage.free_space, total)})"
    total_used = sum(r.used_bytes for r in scenario.repos)
    repos = [
        {
            "repoKey": r.key,
            "repoType": r.repo_type,
            "foldersCount": r.folders,
            "filesCount": r.files,
            "usedSpace": human_size(r.used_bytes),
            "itemsCount": r.files + r.folders,
            "packageType": r.package_type,
            "percentage": percent(r.used_bytes, total_used),
        }
        for r in scenario.repos
    ]
    repos.append({
        "repoKey": "TOTAL",
        "repoType": "NA",
        "foldersCount": sum(r.folders for r in scenario.repos),
        "filesCount": sum(r.files for r in scenario.repos),
        "usedSpace": human_size(total_used),
        "itemsCount": sum(r.files + r.folders for r in scenario.repos),
    })
    return {
        "binariesSummary": {
            "binariesCount": human_count(storage.binaries_count),
            "binariesSize": human_size(storage.binaries_size),
            "artifactsSize": human_size(storage.artifacts_size),
            "optimization": f"{storage.optimization_pct:.2f}%",
            "itemsCount": human_count(storage.items_count),
            "artifactsCount": human_count(storage.artifacts_count),
        },
        "fileStoreSummary": filestore,
        "repositoriesSummaryList": repos,
    }


@admin
async def storageinfo(request: web.Request) -> web.Response:
    scenario = request.app[STATE].scenario
    if scenario.storage is None:
        return jfrog_error(404, "File not found.")
    return web.json_response(storage_info(scenario))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/storageinfo", storageinfo)
