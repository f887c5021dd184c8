"""Workers routes: list, execution history, execute (GENERIC_EVENT), under the platform base URL."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, SimState, admin, jfrog_error
from exporter.simulator.workers_data import (
    ARTIFACT_ACTIONS,
    FAIL,
    RUNTIME,
    SUCCESS,
    WorkersArea,
    WorkerSpec,
    area,
    execution,
)

#: API executions kept per worker
_KEEP = 1000


def _area(request: web.Request) -> WorkersArea | None:
    return area(request.app[STATE].scenario)


def worker_body(spec: WorkerSpec) -> dict[str, Any]:
    """camelCase, as the real server sends it (the OpenAPI text spells it snake_case)."""
    body: dict[str, Any] = {
        "key": spec.key,
        "description": spec.description,
        "enabled": spec.enabled,
        "sourceCode": spec.source_code,
        "action": spec.action,
    }
    if spec.action in ARTIFACT_ACTIONS and spec.repo_keys:
        body["filterCriteria"] = {"artifactFilterCriteria": {"repoKeys": spec.repo_keys}}
    body.update({
        "secrets": [{"key": k, "value": v} for k, v in spec.secrets.items()],
        "shared": spec.shared,
        "debug": False,
        "projectKey": spec.project_key,
    })
    return body


@admin
async def list_workers(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    return web.json_response({"workers": [worker_body(w) for w in data.workers]})


def _recorded(state: SimState) -> dict[str, list[dict[str, Any]]]:
    recorded: dict[str, list[dict[str, Any]]] = state.runtime.setdefault(RUNTIME, {})
    return recorded


def history(state: SimState, data: WorkersArea, spec: WorkerSpec) -> list[dict[str, Any]]:
    """The newest entries, newest first: periodic executions and those triggered through the API."""
    now = data.clock()
    entries = data.scheduled(spec, now, data.history_limit)
    entries += [e for e in _recorded(state).get(spec.key, []) if e["endTimeMillis"] <= now * 1000]
    entries.sort(key=lambda e: e["endTimeMillis"], reverse=True)
    return entries[: data.history_limit]


@admin
async def execution_history(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    key = request.query.get("workerKey", "")
    if not key:
        return jfrog_error(400, "workerKey is required")
    spec = data.find(key)
    if spec is None:
        return jfrog_error(404, f"Worker '{key}' not found")
    entries = history(request.app[STATE], data, spec)
    if request.query.get("showTestRun") == "true" and entries:
        # A run from the online editor's Run button; hidden unless asked for.
        test = dict(entries[-1], id=str(uuid.uuid5(uuid.NAMESPACE_URL, entries[-1]["id"] + "/test")), testRun=True)
        entries.append(test)
    return web.json_response(entries)


def _refuse_execution(key: str, spec: WorkerSpec | None) -> web.Response | None:
    """Why the worker cannot be executed, as the server says it."""
    if spec is None:
        return jfrog_error(404, f"Worker '{key}' not found")
    if spec.action != "GENERIC_EVENT":
        return jfrog_error(400, f"Worker '{key}' is not of type GENERIC_EVENT")
    if not spec.enabled:
        return jfrog_error(400, f"Worker '{key}' is disabled")
    return None


@admin
async def execute(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = _area(request)
    if data is None:
        return jfrog_error(404, "File not found.")
    key = request.match_info["worker"]
    spec = data.find(key)
    refusal = _refuse_execution(key, spec)
    if refusal is not None:
        return refusal
    assert spec is not None
    raw = await request.read()
    try:
        payload = json.loads(raw) if raw.strip() else None
    except ValueError:
        return jfrog_error(400, "The request payload is malformed")
    status = FAIL if spec.fails_when_executed else SUCCESS
    recorded = _recorded(state).setdefault(key, [])
    entry = execution(spec, len(recorded), data.clock(), status=status, payload=payload, triggered_by="admin")
    # The call returns when the run has ended: the entry ends now.
    took = entry["endTimeMillis"] - entry["startTimeMillis"]
    entry.update(id=str(uuid.uuid4()), startTimeMillis=entry["startTimeMillis"] - took,
                 endTimeMillis=entry["startTimeMillis"])
    recorded.append(entry)
    del recorded[:-_KEEP]
    if status == FAIL:
        return web.json_response({"executionStatus": FAIL})
    body: dict[str, Any] = {"executionStatus": SUCCESS}
    if payload is not None:
        body = {"data": payload, **body}
    return web.json_response(body)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/worker/api/v1/workers", list_workers)
    router.add_get("/worker/api/v1/execution_history", execution_history)
    router.add_post("/worker/api/v1/execute/{worker}", execute)
