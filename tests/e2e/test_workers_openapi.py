"""The simulator's Workers routes against the Workers OpenAPI document (tests/field/workers-openapi.yaml).

Schemathesis reads the document, generates requests for every operation and checks each answer: a
documented status, the documented content type, a body valid against the response schema, never a
server error. A scripted lifecycle then reaches the answers random keys cannot (an existing worker),
again checked against the document, and a few asserts pin down behaviour the document only implies.

The simulator runs in the test's event loop; schemathesis calls it synchronously from a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from exporter.simulator.core import DEFAULT_TOKEN
from tests.conftest import make_target
from tests.support import value

DOCUMENT = Path(__file__).resolve().parents[1] / "field" / "workers-openapi.yaml"
SCHEMA = schemathesis.openapi.from_path(DOCUMENT)
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: generated requests per operation: enough to reach each documented answer of random input, fast
EXAMPLES = 12
#: the document's servers end in /worker/api
BASE = "/worker/api"

NEW_WORKER = {
    "key": "guard-uploads",
    "description": "refuses uploads of flagged files",
    "enabled": True,
    "source_code": "export default async () => ({ status: 'UPLOAD_PROCEED' });",
    "action": "BEFORE_UPLOAD",
    "filter_criteria": {"artifact_filter_criteria": {"repo_keys": ["libs-release-local"]}},
    "secrets": [{"key": "TOKEN", "value": "t0ken"}],
}


def operations() -> list[Any]:
    return [result.ok() for result in SCHEMA.get_all_operations()]


def call(case: Case, url: str) -> Response:
    """One request, checked against the document; raises on any violation."""
    return case.call_and_validate(base_url=url + BASE, headers=AUTH, checks=CHECKS)


def fuzz(operation: Any, url: str) -> None:
    """Generated requests for one operation, each answer checked against the document."""

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Case) -> None:
        call(case, url)

    run()


async def in_thread(function: Callable[..., Any], *args: Any) -> Any:
    # The simulator answers from this event loop while schemathesis blocks in its own thread.
    return await asyncio.to_thread(function, *args)


def request(url: str, method: str, path: str, *, path_parameters: dict[str, str] | None = None,
            body: Any = None, query: dict[str, str] | None = None) -> Response:
    operation = SCHEMA[path][method]
    kwargs: dict[str, Any] = {"path_parameters": path_parameters or {}, "query": query or {}}
    if body is not None:
        kwargs.update(body=body, media_type="application/json")
    return call(operation.Case(**kwargs), url)


@pytest.mark.parametrize("operation", operations(), ids=lambda op: op.label)
async def test_generated_requests_conform(sim, operation: Any) -> None:
    url, _ = await sim.start("workers")
    await in_thread(fuzz, operation, url)


def lifecycle(url: str) -> dict[str, Response]:
    """Every operation on a worker that exists, in the order a client would use them."""
    key = {"workerKey": NEW_WORKER["key"]}
    steps: dict[str, Response] = {}
    steps["create"] = request(url, "POST", "/v1/workers", body=NEW_WORKER)
    steps["duplicate"] = request(url, "POST", "/v1/workers", body=NEW_WORKER)
    steps["list"] = request(url, "GET", "/v1/workers")
    steps["get"] = request(url, "GET", "/v1/workers/{workerKey}", path_parameters=key)
    changed = dict(NEW_WORKER, description="changed", secrets=[{"key": "TOKEN", "markedForRemoval": True}])
    steps["update"] = request(url, "PUT", "/v1/workers/{workerKey}", path_parameters=key, body=changed)
    steps["update_by_body"] = request(url, "PUT", "/v1/workers", body=dict(changed, description="again"))
    steps["disable"] = request(url, "PUT", "/v1/workers/{workerKey}/disable", path_parameters=key)
    steps["after_disable"] = request(url, "GET", "/v1/workers/{workerKey}", path_parameters=key)
    steps["enable"] = request(url, "PUT", "/v1/workers/{workerKey}/enable", path_parameters=key)
    for status, data in (("ok", {}), ("stop", {"stop": True})):
        steps[f"test_{status}"] = request(url, "POST", "/v1/workers/{workerKey}/test", path_parameters=key,
                                          body={"action": "BEFORE_UPLOAD", "data": data})
    steps["test_error"] = request(url, "POST", "/v1/workers/{workerKey}/test", path_parameters=key,
                                  body={"action": "AFTER_CREATE", "data": {}})
    steps["logs"] = request(url, "GET", "/v1/workers/{workerKey}/logs", path_parameters=key)
    steps["logs_future"] = request(url, "GET", "/v1/workers/{workerKey}/logs", path_parameters=key,
                                   query={"from": "2999-01-01T00:00:00Z"})
    steps["delete"] = request(url, "DELETE", "/v1/workers/{workerKey}", path_parameters=key)
    steps["after_delete"] = request(url, "GET", "/v1/workers/{workerKey}", path_parameters=key)
    return steps


async def test_worker_lifecycle_conforms(sim) -> None:
    url, _ = await sim.start("workers")
    steps = await in_thread(lifecycle, url)
    statuses = {name: r.status_code for name, r in steps.items()}
    assert statuses == {
        "create": 201, "duplicate": 409, "list": 200, "get": 200, "update": 200, "update_by_body": 204,
        "disable": 200, "after_disable": 200, "enable": 200, "test_ok": 200, "test_stop": 200, "test_error": 200,
        "logs": 200, "logs_future": 200, "delete": 204, "after_delete": 404,
    }
    assert NEW_WORKER["key"] in [w["key"] for w in steps["list"].json()["workers"]]
    got = steps["get"].json()
    # Servers answer in camelCase, whatever spelling the client used.
    assert got["sourceCode"] == NEW_WORKER["source_code"]
    assert got["filterCriteria"] == {"artifactFilterCriteria": {"repoKeys": ["libs-release-local"]}}
    assert steps["after_disable"].json()["enabled"] is False
    assert [steps[f"test_{s}"].json()["status"] for s in ("ok", "stop", "error")] == \
        ["STATUS_OK", "STATUS_STOP", "STATUS_ERROR"]
    assert all(isinstance(steps[f"test_{s}"].json()["execution_time_ms"], int) for s in ("ok", "stop", "error"))
    # The three test runs have logs; nothing starts after 2999.
    assert {line["level"] for line in steps["logs"].json()["logs"]} >= {"INFO", "ERROR"}
    assert steps["logs_future"].json() == {"logs": []}


async def test_unknown_worker_is_404(sim) -> None:
    url, _ = await sim.start("workers")
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        answers = [
            await client.get("/worker/api/v1/workers/no-such-worker"),
            await client.put("/worker/api/v1/workers/no-such-worker/enable"),
            await client.post("/worker/api/v1/workers/no-such-worker/test", json={"action": "GENERIC_EVENT",
                                                                                 "data": {}}),
        ]
    assert [a.status_code for a in answers] == [404, 404, 404]
    assert all(a.json()["errors"][0]["status"] == 404 for a in answers)


async def test_created_worker_is_listed_and_collected(sim, collect_once) -> None:
    url, _ = await sim.start("workers")
    body = dict(NEW_WORKER, enabled=False)
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as client:
        created = await client.post("/worker/api/v1/workers", json=body)
        listed = (await client.get("/worker/api/v1/workers")).json()["workers"]
    assert created.status_code == 201
    assert [w for w in listed if w["key"] == body["key"]] == [created.json()]
    samples, _ = await collect_once([make_target(url, retries=0)], only=["workers"])
    assert value(samples, "jfrog_worker_enabled", worker=body["key"], action=body["action"]) == 0
    # The scenario's workers are still there.
    assert value(samples, "jfrog_worker_enabled", worker="block-risky-downloads", action="BEFORE_DOWNLOAD") == 1


def _answer(body: object, status: int = 200) -> Response:
    prepared = requests.Request("GET", "http://simulator/worker/api/v1/workers/w").prepare()
    return Response(status_code=status, headers={"content-type": ["application/json"]},
                    content=json.dumps(body).encode(), request=prepared, elapsed=0.01, verify=True)


def test_the_document_rejects_a_wrong_body() -> None:
    """The checker really checks: a worker whose enabled is a string, a test status outside the enum."""
    get_worker = SCHEMA["/v1/workers/{workerKey}"]["GET"]
    assert get_worker.validate_response(_answer({"key": "w", "enabled": True})) is None
    with pytest.raises(Failure):
        get_worker.validate_response(_answer({"key": "w", "enabled": "yes"}))
    test_worker = SCHEMA["/v1/workers/{workerKey}/test"]["POST"]
    with pytest.raises(Failure):
        test_worker.validate_response(_answer({"status": "STATUS_SUCCESS", "execution_time_ms": 3}))
