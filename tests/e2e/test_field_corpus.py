"""The field corpus (tests/field/*.yaml): what real JPDs answered, replayed through the exporter.

Each case is one answer of one endpoint. The simulator serves the rest of a JPD that has data for
the case's collector, and the recorded answer replaces what it would say on that endpoint; the
exporter then runs the collector once. The part that reads the endpoint must end as the case
expects, and the series the case names must carry the values it gives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.client import classify
from exporter.collectors.registry import COLLECTORS  # noqa: F401  (declares every endpoint)
from exporter.families import REGISTRY
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from tests.conftest import make_target
from tests.support import parse_exposition, value

FIELD = Path(__file__).resolve().parents[1] / "field"
#: files replayed elsewhere: ping cases (tests/unit/test_field.py), the Workers OpenAPI document
#: (tests/e2e/test_workers_openapi.py)
SEPARATE = {"ping.yaml", "workers-openapi.yaml"}
#: the scenario in which each collector has data around the replayed endpoint
SCENARIO = {"replication": "replication", "federation": "federation-rtfs", "maintenance": "maintenance",
            "workers": "workers", "distribution": "distribution"}
SETTINGS = {"activity": {"settle": 0}, "federation": {"legacy_repo_status": True}}
#: templates of the legacy federation service, read on a JPD that runs it
LEGACY_FEDERATION = ("mirrorsLag", "unavailableMirrors", "/federation/state", "/federation/status/repo/")
EXPLICIT = {"/artifactory/api/replications/{repo}": {"replication": {"repos": ["libs-release-local"]}}}
#: answers that make the collector fall back to the template under test
FALLBACK = {"/artifactory/api/system/license": "/artifactory/api/system/licenses",
            "/artifactory/api/federation/status/repo/{repo}": "/artifactory/api/v2/federation/status/repo/*"}
#: endpoints one server answers alike (the license pair), whose part may take either name
SAME_SERVER = {"/artifactory/api/system/licenses": "/artifactory/api/system/license",
               "/artifactory/api/system/license": "/artifactory/api/system/licenses"}
#: endpoints read as a step of another endpoint's part
STEP_OF = {"/artifactory/api/federation/status/unavailableMirrors": "/artifactory/api/federation/state"}


#: cases a one-endpoint replay cannot show, and why
NOT_REPLAYABLE = {
    "oss-replication-status-pro-only": "on Artifactory OSS the configuration list refuses first (case "
                                       "oss-replications-list-pro-only), so the status endpoint is never reached; "
                                       "alone, its refusal leaves the part without data rather than unsupported",
}


def cases() -> list[Any]:
    out = []
    for path in sorted(FIELD.glob("*.yaml")):
        if path.name in SEPARATE:
            continue
        for case in yaml.safe_load(path.read_text()) or []:
            marks = [pytest.mark.xfail(reason=NOT_REPLAYABLE[case["name"]], strict=True)] \
                if case["name"] in NOT_REPLAYABLE else []
            out.append(pytest.param(case, id=f"{path.stem}:{case['name']}", marks=marks))
    return out


def _template_matches(template: str, path: str) -> bool:
    return re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path) is not None


def _read_by(collector: str, path: str) -> str | None:
    """The route template of ``collector`` that ``path`` fills, if the collector reads it."""
    return next((e.template for e in REGISTRY.endpoints()
                 if e.owner == collector and _template_matches(e.template, path)), None)


@pytest.mark.parametrize("case", cases())
async def test_recorded_answer(sim, case: dict[str, Any]) -> None:
    assert case["source"].startswith(("https://", "seeds/")), "every case cites its source: a report or the documents"
    path = case["request"].split(" ", 1)[1].split("?", 1)[0]
    expect = case["expect"]
    collector = expect["collector"]
    outcome = Outcome(expect["outcome"])
    answer = str(case["body"] or "").encode()
    headers = {"content-type": case.get("content_type", "application/json")}
    template = _read_by(collector, path)
    if template is None:
        # An endpoint the exporter does not read: the answer still teaches how the JPD refuses things.
        result, _ = classify(path, int(case["status"]), headers, answer, "json", frozenset({200}))
        assert result.outcome is outcome, result.reason
        return
    legacy = any(marker in template for marker in LEGACY_FEDERATION)
    url, state = await sim.start("federation-legacy" if legacy else SCENARIO.get(collector, "healthy"))
    if template in FALLBACK:
        state.faults.append(Fault(route=FALLBACK[template], kind="answer", status=404,
                                  body='{"errors": [{"status": 404, "message": "Not Found"}]}'))
    # Every item of a templated endpoint gets the recorded answer: the scenario's items are not the report's.
    for route in {template, SAME_SERVER.get(template, template)}:
        state.faults.append(Fault(route=re.sub(r"\{[^}]+\}", "*", route), kind="answer", status=int(case["status"]),
                                  body=answer.decode(), content_type=headers["content-type"]))
    settings = EXPLICIT.get(template) or ({collector: SETTINGS[collector]} if collector in SETTINGS else {})
    engine = Engine([make_target(url, retries=0, collectors=settings)], only=[collector])
    try:
        for _ in range(2):  # collectors that start from a watermark make every call from the second run on
            await engine.run_all_once()
    finally:
        await engine.shutdown()
    parts = {p.endpoint: p for p in engine.store.run("sim", collector).parts}
    names = [n for n in (template, SAME_SERVER.get(template), STEP_OF.get(template)) if n in parts]
    assert names, f"{collector} did not read {template}: {sorted(parts)}"
    assert parts[names[0]].outcome is outcome, parts[names[0]].reason
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    for sample in expect.get("samples") or []:
        if "{" not in template:  # a templated endpoint's series carry the scenario's names, not the report's
            got = value(samples, sample["name"], **sample.get("labels", {}))
            assert got == (None if sample["value"] is None else pytest.approx(sample["value"])), (sample, got)
