"""Maintenance routes: PUD status, cleanup policies, background tasks, archive policies, retention."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error
from exporter.simulator.maintenance_data import (
    ArchiveExecution,
    BackgroundTask,
    CleanupPolicy,
    MaintenanceArea,
    PudDirectory,
    PudRun,
    area,
)

NOT_FOUND = "File not found."


def _area(request: web.Request) -> MaintenanceArea | None:
    return area(request.app[STATE].scenario)


def _millis(ts: float) -> int:
    return round(ts * 1000)


def _clock(seconds: float) -> str:
    """"0:04:45.404", as the PUD status renders durations."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def _timing(started: float, last_updated: float) -> dict[str, Any]:
    # The PUD status renders local times without an offset; the simulator's zone is UTC.
    def local(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S")

    return {
        "startedAtMillis": _millis(started),
        "startedAt": local(started),
        "durationMillis": _millis(last_updated - started),
        "duration": _clock(last_updated - started),
        "lastUpdatedMillis": _millis(last_updated),
        "lastUpdated": local(last_updated),
    }


def _directory(d: PudDirectory) -> dict[str, Any]:
    return {
        "name": d.name,
        "status": d.status,
        "binariesProcessed": d.binaries_processed,
        "binariesCleaned": d.binaries_cleaned,
        "bytesCleaned": d.bytes_cleaned,
        "timing": _timing(d.started, d.last_updated),
    }


def pud_body(run: PudRun) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": run.status,
        "dryRun": run.dry_run,
        "timing": _timing(run.started, run.last_updated),
        "progress": f"{run.directories_done} of {run.directories_total}",
        "report": {
            "totalBinariesProcessed": run.binaries_processed,
            "totalBinariesCleaned": run.binaries_cleaned,
            "totalBytesCleaned": run.bytes_cleaned,
        },
    }
    if run.last_directory is not None:
        body["lastHandledDirectory"] = _directory(run.last_directory)
    if run.error:
        body["error"] = run.error
    return body


@admin
async def prune_status(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or not data.pud_supported:
        return jfrog_error(404, NOT_FOUND)
    if data.pud is None:
        # Documented answer when the PUD process never ran on this filestore.
        return web.json_response({"info": "No Prune task found"}, status=412)
    return web.json_response(pud_body(data.pud))


def package_policy(p: CleanupPolicy) -> dict[str, Any]:
    body: dict[str, Any] = {"key": p.key, "description": p.description}
    if p.cron:
        body["cronExp"] = p.cron
    if p.duration_minutes is not None:
        body["durationInMinutes"] = p.duration_minutes
    body.update({"enabled": p.enabled, "skipTrashcan": False})
    if p.project_key:
        body["projectKey"] = p.project_key
    criteria: dict[str, Any] = {
        "packageTypes": p.package_types,
        "repos": ["**"],
        "excludedRepos": [],
        "includedPackages": ["**"],
        "excludedPackages": [],
        "includeAllProjects": not p.project_key,
        "includedProjects": [p.project_key] if p.project_key else [],
    }
    if p.keep_last is not None:
        criteria["keepLastNVersions"] = p.keep_last
    else:
        criteria["createdBeforeInMonths"] = p.created_before_months or 12
        criteria["lastDownloadedBeforeInMonths"] = 1
    body["searchCriteria"] = criteria
    return body


def bundle_policy_summary(p: CleanupPolicy) -> dict[str, Any]:
    """An entry of the bundles list (2.7.2.4): no schedule or duration, a next run time instead."""
    body: dict[str, Any] = {"itemType": "releaseBundle", "policyKey": p.key}
    if p.next_run is not None:
        body["nextRunTime"] = _millis(p.next_run)
    body.update({"enabled": p.enabled, "displayProject": p.project_key or "Global"})
    if p.last_run_status:
        body["lastRunData"] = {
            "status": p.last_run_status,
            "lastRunTime": _millis(p.last_run_time or 0),
            "dryRun": False,
            "runId": p.last_run_id,
            "reportDownloaded": False,
            "totalItems": p.last_run_items,
        }
    body["includedProjects"] = [p.project_key] if p.project_key else ["All"]
    return body


def bundle_policy(p: CleanupPolicy) -> dict[str, Any]:
    """A single bundles policy (2.7.2.5)."""
    body: dict[str, Any] = {"key": p.key, "description": p.description}
    if p.cron:
        body["cronExp"] = p.cron
    body["itemType"] = "releaseBundle"
    if p.duration_minutes is not None:
        body["durationInMinutes"] = p.duration_minutes
    body["enabled"] = p.enabled
    body["searchCriteria"] = {
        "includeAllProjects": not p.project_key,
        "includedProjects": [p.project_key] if p.project_key else [],
        "releaseBundles": [{"name": "**", "projectKey": p.project_key}],
        "excludePromotedEnvironments": ["**"],
        "createdBeforeInMonths": p.created_before_months or 24,
    }
    return body


@admin
async def package_policies(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or data.package_policies is None:
        return jfrog_error(404, NOT_FOUND)
    return web.json_response([package_policy(p) for p in data.package_policies])


@admin
async def bundle_policies(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or data.bundle_policies is None:
        return jfrog_error(404, NOT_FOUND)
    return web.json_response({"policies": [bundle_policy_summary(p) for p in data.bundle_policies]})


@admin
async def bundle_policy_by_key(request: web.Request) -> web.Response:
    data = _area(request)
    key = request.match_info["policy"]
    found = next((p for p in (data.bundle_policies or []) if p.key == key), None) if data else None
    if found is None:
        return jfrog_error(404, f"Policy with key {key} was not found")
    return web.json_response(bundle_policy(found))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def task_body(task: BackgroundTask) -> dict[str, Any]:
    body: dict[str, Any] = {"id": task.id, "type": task.type, "state": task.state}
    # As in the documented sample: running tasks carry "started", the others "start_time": null.
    if task.state == "running" and task.started is not None:
        body["started"] = _iso(task.started)
    else:
        body["start_time"] = None
    body.update({"description": task.description, "nodeId": task.node_id})
    return body


@admin
async def tasks(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or data.tasks is None:
        return jfrog_error(404, NOT_FOUND)
    return web.json_response({"tasks": [task_body(t) for t in data.tasks]})


def archive_body(e: ArchiveExecution) -> dict[str, Any]:
    total = e.completed + e.failed
    body: dict[str, Any] = {
        "policyKey": e.policy_key,
        "state": e.state,
        "completedNumberOfArtifacts": e.completed,
        "failedNumberOfArtifacts": e.failed,
        "totalNumberOfArtifacts": total,
        "progressPercentage": 100 if e.finished is not None else 40,
        "startTime": _millis(e.started),
    }
    if e.finished is not None:
        body["finishTime"] = _millis(e.finished)
    body.update({
        "totalByteSize": e.total_bytes,
        "successByteSize": e.total_bytes - e.failed_bytes,
        "failureByteSize": e.failed_bytes,
    })
    return body


@admin
async def archive_executions(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or data.archive_executions is None:
        return jfrog_error(404, NOT_FOUND)
    return web.json_response([archive_body(e) for e in data.archive_executions])


@admin
async def retention_enabled(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None or data.retention_enabled is None:
        return jfrog_error(404, NOT_FOUND)
    return web.json_response({"enable": data.retention_enabled})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/system/storage/prune/status", prune_status)
    router.add_get("/artifactory/api/cleanup/packages/policies", package_policies)
    router.add_get("/artifactory/api/cleanup/packages/policies/", package_policies)
    router.add_get("/artifactory/api/cleanup/bundles/policies", bundle_policies)
    router.add_get("/artifactory/api/cleanup/bundles/policies/", bundle_policies)
    router.add_get("/artifactory/api/cleanup/bundles/policies/{policy}", bundle_policy_by_key)
    router.add_get("/artifactory/api/tasks", tasks)
    router.add_get("/artifactory/api/retention/archive/executions", archive_executions)
    router.add_get("/artifactory/api/v1/bundle/retention/config/enable", retention_enabled)
