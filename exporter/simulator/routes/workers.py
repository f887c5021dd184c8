"""Workers routes under the platform base URL: the operations of the Workers OpenAPI document
(tests/field/workers-openapi.yaml), the execution history and execute (GENERIC_EVENT).

Where real servers differ from the document, the simulator answers as they do (each difference is
noted in that file with its source): camelCase fields, and updates with PUT on the collection
answered 204.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, SimState, admin, jfrog_error
from exporter.simulator.workers_data import (
    API_PERIOD,
    ARTIFACT_ACTIONS,
    CHANGES,
    FAIL,
    KNOWN_ACTIONS,
    RUNTIME,
    SUCCESS,
    WorkersArea,
    WorkerSpec,
    area,
    disable,
    enable,
    execution,
)

#: API executions kept per worker
_KEEP = 1000
#: executions whose logs the logs endpoint shows at most
_LOG_ENTRIES = 200
_NO_WORKERS = "File not found."


def _area(request: web.Request) -> WorkersArea | None:
    return area(request.app[STATE].scenario)


def _changes(state: SimState) -> dict[str, WorkerSpec | None]:
    changes: dict[str, WorkerSpec | None] = state.runtime.setdefault(CHANGES, {})
    return changes


def _not_found(key: str) -> web.Response:
    return jfrog_error(404, f"Worker '{key}' not found")


def worker_body(spec: WorkerSpec) -> dict[str, Any]:
    """camelCase, as the real server sends it (the OpenAPI text spells it snake_case)."""
    body: dict[str, Any] = {
        "key": spec.key,
        "description": spec.description,
        "enabled": spec.enabled,
        "sourceCode": spec.source_code,
        "action": spec.action,
    }
    if spec.filter_criteria is not None:
        body["filterCriteria"] = spec.filter_criteria
    elif spec.action in ARTIFACT_ACTIONS and spec.repo_keys:
        body["filterCriteria"] = {"artifactFilterCriteria": {"repoKeys": spec.repo_keys}}
    body.update({
        "secrets": [{"key": k, "value": v} for k, v in spec.secrets.items()],
        "shared": spec.shared,
        "debug": spec.debug,
        "projectKey": spec.project_key,
    })
    return body


@admin
async def list_workers(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_WORKERS)
    workers = data.current(_changes(request.app[STATE]))
    return web.json_response({"workers": [worker_body(w) for w in workers]})


@dataclass(frozen=True)
class Addressed:
    """The worker a request names, with what its handler needs."""

    state: SimState
    data: WorkersArea
    key: str
    spec: WorkerSpec


def _addressed(request: web.Request) -> Addressed | web.Response:
    """The worker in the request's path, or the 404 that says it is not there."""
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_WORKERS)
    state = request.app[STATE]
    key = request.match_info["worker"]
    spec = data.lookup(key, _changes(state))
    return _not_found(key) if spec is None else Addressed(state, data, key, spec)


@admin
async def get_worker(request: web.Request) -> web.Response:
    worker = _addressed(request)
    return worker if isinstance(worker, web.Response) else web.json_response(worker_body(worker.spec))


# -- create, update, delete ------------------------------------------------------------------------


class Invalid(ValueError):
    """A worker configuration the server refuses with 400."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_keys(value: Any) -> Any:
    """filter_criteria.artifact_filter_criteria.repo_keys -> filterCriteria.artifactFilterCriteria.repoKeys."""
    if isinstance(value, dict):
        return {_camel(str(k)): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _field(body: dict[str, Any], camel: str, kind: type, default: Any = None) -> Any:
    """A field in either spelling (the field sends camelCase, the document snake_case), of the given type."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    value = body.get(camel, body.get(snake, default))
    if value is not default and not isinstance(value, kind):
        raise Invalid(f"{camel} must be of type {kind.__name__}")
    return value


def _action(body: dict[str, Any]) -> str:
    value = body.get("action")
    if isinstance(value, dict):  # newer clients send {"name": ..., "application": ...}
        value = value.get("name")
    if not isinstance(value, str) or not value:
        raise Invalid("action is required")
    if value not in KNOWN_ACTIONS:
        raise Invalid(f"Unknown action '{value}'")
    return value


def _secrets(body: dict[str, Any], current: dict[str, str]) -> dict[str, str]:
    """Secrets merged by key; one marked for removal is dropped (how clients delete a secret)."""
    merged = dict(current)
    for item in _field(body, "secrets", list, []):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise Invalid("each secret needs a key")
        if item.get("markedForRemoval") is True:
            merged.pop(item["key"], None)
        else:
            merged[item["key"]] = str(item.get("value", ""))
    return merged


def _key(body: dict[str, Any], path_key: str | None) -> str:
    key = body.get("key", path_key)
    if not isinstance(key, str) or not key.strip():
        raise Invalid("key is required")
    if "/" in key or key != key.strip() or any(c.isspace() for c in key):
        raise Invalid(f"Invalid worker key '{key}'")
    if path_key is not None and key != path_key:
        raise Invalid("The worker key cannot be changed")
    return key


def _configured(body: object, base: WorkerSpec | None, path_key: str | None, now: float) -> WorkerSpec:
    """The worker a create (``base`` None) or an update asks for."""
    if not isinstance(body, dict):
        raise Invalid("The request payload is malformed")
    key = _key(body, path_key)
    source = _field(body, "sourceCode", str, base.source_code if base else None)
    if not source:
        raise Invalid("sourceCode is required")
    action = _action(body)
    criteria, repos = _filters(body, base)
    spec = replace(
        base or WorkerSpec(key, action, period=None, started_at=now, repo_keys=[]),
        action=action,
        description=_field(body, "description", str, base.description if base else ""),
        source_code=source,
        filter_criteria=criteria,
        repo_keys=repos,
        secrets=_secrets(body, base.secrets if base else {}),
        shared=_field(body, "shared", bool, base.shared if base else False),
        debug=_field(body, "debug", bool, base.debug if base else False),
        project_key=_field(body, "projectKey", str, base.project_key if base else ""),
    )
    spec = _timed(spec, base, now)
    wanted = _field(body, "enabled", bool, base.enabled if base else True)
    return enable(spec, now) if wanted else disable(spec, now)


def _filters(body: dict[str, Any], base: WorkerSpec | None) -> tuple[dict[str, Any] | None, list[str]]:
    """(filterCriteria in camelCase, its repository keys); an update without one keeps the worker's."""
    sent = _field(body, "filterCriteria", dict, None)
    if sent is None:
        return (base.filter_criteria, base.repo_keys) if base else (None, [])
    criteria: dict[str, Any] = _camel_keys(sent)
    artifact = criteria.get("artifactFilterCriteria")
    repos = artifact.get("repoKeys") if isinstance(artifact, dict) else None
    return criteria, [str(r) for r in repos] if isinstance(repos, list) else []


def _timed(spec: WorkerSpec, base: WorkerSpec | None, now: float) -> WorkerSpec:
    """GENERIC_EVENT runs only when executed; an event-driven worker runs from now if it did not before."""
    if spec.action == "GENERIC_EVENT":
        return replace(spec, period=None)
    if base is None or base.period is None:
        return replace(spec, period=API_PERIOD, started_at=now)
    return spec


async def _json(request: web.Request) -> object:
    raw = await request.read()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise Invalid("The request payload is malformed") from exc


@admin
async def create_worker(request: web.Request) -> web.Response:
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_WORKERS)
    changes = _changes(request.app[STATE])
    try:
        spec = _configured(await _json(request), None, None, data.clock())
    except Invalid as exc:
        return jfrog_error(400, str(exc))
    if data.lookup(spec.key, changes) is not None:
        return jfrog_error(409, f"Worker '{spec.key}' already exists")
    _forget_runs(request.app[STATE], spec.key)  # a new worker of an old key starts without history
    changes[spec.key] = spec
    return web.json_response(worker_body(spec), status=201)


async def _update(request: web.Request, path_key: str | None) -> tuple[web.Response | None, WorkerSpec | None]:
    """Apply an update; the refusal, if any."""
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_WORKERS), None
    changes = _changes(request.app[STATE])
    try:
        body = await _json(request)
        # The path names the worker; without one, the body does (then its key must be valid first).
        key = path_key if path_key is not None else _key(body if isinstance(body, dict) else {}, None)
        base = data.lookup(key, changes)
        if base is None:
            return _not_found(key), None
        spec = _configured(body, base, key, data.clock())
    except Invalid as exc:
        return jfrog_error(400, str(exc)), None
    changes[spec.key] = spec
    return None, spec


@admin
async def update_worker(request: web.Request) -> web.Response:
    """The document's update: PUT on the worker's path, 200."""
    refusal, _ = await _update(request, request.match_info["worker"])
    return refusal or web.Response(status=200)


@admin
async def update_worker_by_body(request: web.Request) -> web.Response:
    """How servers take an update (JFrog's CLI and Terraform provider): PUT on the collection, 204."""
    refusal, _ = await _update(request, None)
    return refusal or web.Response(status=204)


@admin
async def delete_worker(request: web.Request) -> web.Response:
    worker = _addressed(request)
    if isinstance(worker, web.Response):
        return worker
    _changes(worker.state)[worker.key] = None
    _forget_runs(worker.state, worker.key)
    return web.Response(status=204)


async def _switch(request: web.Request, on: bool) -> web.Response:
    worker = _addressed(request)
    if isinstance(worker, web.Response):
        return worker
    now = worker.data.clock()
    _changes(worker.state)[worker.key] = enable(worker.spec, now) if on else disable(worker.spec, now)
    return web.Response(status=200)


@admin
async def enable_worker(request: web.Request) -> web.Response:
    return await _switch(request, True)


@admin
async def disable_worker(request: web.Request) -> web.Response:
    return await _switch(request, False)


# -- executions: history, execute, test, logs ----------------------------------------------------------


def _recorded(state: SimState) -> dict[str, list[dict[str, Any]]]:
    recorded: dict[str, list[dict[str, Any]]] = state.runtime.setdefault(RUNTIME, {})
    return recorded


def _forget_runs(state: SimState, key: str) -> None:
    _recorded(state).pop(key, None)


def _record(state: SimState, data: WorkersArea, spec: WorkerSpec, **kwargs: Any) -> dict[str, Any]:
    """Record a run that ends now (the call returns when it has ended)."""
    recorded = _recorded(state).setdefault(spec.key, [])
    entry = execution(spec, len(recorded), data.clock(), **kwargs)
    took = entry["endTimeMillis"] - entry["startTimeMillis"]
    entry.update(id=str(uuid.uuid4()), startTimeMillis=entry["startTimeMillis"] - took,
                 endTimeMillis=entry["startTimeMillis"])
    recorded.append(entry)
    del recorded[:-_KEEP]
    return entry


def _runs(state: SimState, data: WorkersArea, spec: WorkerSpec, limit: int, test_runs: bool) -> list[dict[str, Any]]:
    """The newest ``limit`` runs, newest first: periodic ones and those triggered through the API."""
    now = data.clock()
    entries = data.scheduled(spec, now, limit)
    entries += [e for e in _recorded(state).get(spec.key, [])
                if e["endTimeMillis"] <= now * 1000 and (test_runs or not e["testRun"])]
    entries.sort(key=lambda e: e["endTimeMillis"], reverse=True)
    return entries[:limit]


def history(state: SimState, data: WorkersArea, spec: WorkerSpec, test_runs: bool = False) -> list[dict[str, Any]]:
    """The history window: the newest ``history_limit`` entries, newest first."""
    return _runs(state, data, spec, data.history_limit, test_runs)


@admin
async def execution_history(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = _area(request)
    if data is None:
        return jfrog_error(404, _NO_WORKERS)
    key = request.query.get("workerKey", "")
    if not key:
        return jfrog_error(400, "workerKey is required")
    spec = data.lookup(key, _changes(state))
    if spec is None:
        return _not_found(key)
    show_tests = request.query.get("showTestRun") == "true"
    entries = history(state, data, spec, test_runs=show_tests)
    if show_tests and entries and not any(e["testRun"] for e in entries):
        # A run from the online editor's Run button; hidden unless asked for.
        test = dict(entries[-1], id=str(uuid.uuid5(uuid.NAMESPACE_URL, entries[-1]["id"] + "/test")), testRun=True)
        entries.append(test)
    return web.json_response(entries)


def _refuse_execution(key: str, spec: WorkerSpec | None) -> web.Response | None:
    """Why the worker cannot be executed, as the server says it."""
    if spec is None:
        return _not_found(key)
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
        return jfrog_error(404, _NO_WORKERS)
    key = request.match_info["worker"]
    spec = data.lookup(key, _changes(state))
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
    _record(state, data, spec, status=status, payload=payload, triggered_by="admin")
    if status == FAIL:
        return web.json_response({"executionStatus": FAIL})
    body: dict[str, Any] = {"executionStatus": SUCCESS}
    if payload is not None:
        body = {"data": payload, **body}
    return web.json_response(body)


def _test_outcome(spec: WorkerSpec, action: str, data: dict[str, Any]) -> tuple[str, str]:
    """(status, message) of a test run. The simulated code stops the event when the payload says "stop": true."""
    if action != spec.action:
        return "STATUS_ERROR", f"Worker '{spec.key}' is hooked on {spec.action}, not {action}"
    if spec.fails_when_executed:
        return "STATUS_ERROR", "Error: upstream check returned 503"
    if data.get("stop") is True:
        return "STATUS_STOP", "stopped by the worker"
    return "STATUS_OK", "proceed"


@admin
async def test_worker(request: web.Request) -> web.Response:
    worker = _addressed(request)
    if isinstance(worker, web.Response):
        return worker
    state, data, spec = worker.state, worker.data, worker.spec
    try:
        body = await _json(request)
    except Invalid as exc:
        return jfrog_error(400, str(exc))
    if not isinstance(body, dict) or not isinstance(body.get("action"), str) or not isinstance(body.get("data"), dict):
        return jfrog_error(400, "action and data are required")
    status, message = _test_outcome(spec, body["action"], body["data"])
    # A test run shows in the history only with showTestRun=true, as the editor's Run button's runs do.
    entry = _record(state, data, spec, status=SUCCESS if status != "STATUS_ERROR" else FAIL,
                    payload=body["data"], triggered_by="admin")
    entry["testRun"] = True
    took = entry["executionResult"]["workerStats"]["executionDurationMillis"]
    return web.json_response({"status": status, "message": message, "execution_time_ms": took})


def _instant(text: str | None) -> datetime | None:
    """A date-time query parameter; ValueError when it is not one."""
    if text is None:
        return None
    when = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _log_lines(entry: dict[str, Any]) -> list[dict[str, Any]]:
    when = datetime.fromtimestamp(entry["startTimeMillis"] / 1000, UTC).isoformat().replace("+00:00", "Z")
    level = "INFO" if entry["executionStatus"] == SUCCESS else "ERROR"
    lines = str(entry["executionResult"].get("logs", "")).splitlines()
    return [{"timestamp": when, "level": level, "message": line} for line in lines if line]


@admin
async def worker_logs(request: web.Request) -> web.Response:
    """The logs of the worker's runs (those the history would hold, test runs included), oldest first."""
    worker = _addressed(request)
    if isinstance(worker, web.Response):
        return worker
    state, data, spec = worker.state, worker.data, worker.spec
    try:
        since, until = _instant(request.query.get("from")), _instant(request.query.get("to"))
    except ValueError:
        return jfrog_error(400, "from and to must be date-times (ISO 8601)")
    logs = []
    for entry in reversed(_runs(state, data, spec, _LOG_ENTRIES, test_runs=True)):
        started = datetime.fromtimestamp(entry["startTimeMillis"] / 1000, UTC)
        if (since is None or started >= since) and (until is None or started <= until):
            logs += _log_lines(entry)
    return web.json_response({"logs": logs})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/worker/api/v1/workers", list_workers)
    router.add_post("/worker/api/v1/workers", create_worker)
    router.add_put("/worker/api/v1/workers", update_worker_by_body)
    router.add_get("/worker/api/v1/workers/{worker}", get_worker)
    router.add_put("/worker/api/v1/workers/{worker}", update_worker)
    router.add_delete("/worker/api/v1/workers/{worker}", delete_worker)
    router.add_put("/worker/api/v1/workers/{worker}/enable", enable_worker)
    router.add_put("/worker/api/v1/workers/{worker}/disable", disable_worker)
    router.add_post("/worker/api/v1/workers/{worker}/test", test_worker)
    router.add_get("/worker/api/v1/workers/{worker}/logs", worker_logs)
    router.add_get("/worker/api/v1/execution_history", execution_history)
    router.add_post("/worker/api/v1/execute/{worker}", execute)
