"""The collector contract over real HTTP: every collector on every scenario emits only what it
declares, and any one endpoint that fails leaves the other parts current."""

from __future__ import annotations

import re

import pytest
from prometheus_client.core import Metric

from exporter.collectors.registry import COLLECTORS
from exporter.families import REGISTRY, Kind
from exporter.outcomes import SUCCESSFUL_OUTCOMES, Outcome
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import SCENARIOS
from exporter.snapshot import PartRecord
from tests.conftest import make_target

#: optional parts switched on so that they are checked too, and every item read in every run
EVERYTHING_ON = {name: settings for name, settings in {
    "workers": {"probe_worker": "exporter-probe", "history_max_interval": "1s"},
    "openmetrics": {"rtfs": True, "distribution": True},
    "activity": {"settle": 0},
    "federation": {"legacy_repo_status": True, "full_sweep": "1s"},
    "replication": {"full_sweep": "1s"},
    "health": {"details_interval": "0s"},
}.items() if name in COLLECTORS}

#: the scenario in which each collector has the most parts with data
RICHEST = {
    "replication": "replication",
    "federation": "federation-rtfs",
    "maintenance": "maintenance",
    "workers": "workers",
    "distribution": "distribution",
}


#: parts whose failure is what they measure (the synthetic probe): the fault shows in their value
MEASUREMENTS = {"/worker/api/v1/execute/{worker}": "jfrog_worker_probe_success"}


def _declared_labels(family: Metric, sample_name: str) -> set[str]:
    declared = REGISTRY.families()
    by_name = {f.name: f for f in declared}
    spec = by_name[family.name]
    extra = {"le"} if spec.kind is Kind.HISTOGRAM and sample_name.endswith("_bucket") else set()
    return set(spec.labels) | extra


def _check_families(collector: str, families: list[Metric]) -> None:
    owners = {f.name: f.owner for f in REGISTRY.families()}
    for family in families:
        if not family.name.startswith("jfrog_"):
            # Passed through from the JPD: never one of the exporter's names.
            assert collector == "openmetrics", family.name
            assert all(REGISTRY.claimed(s.name) is None for s in family.samples), family.name
            continue
        assert owners.get(family.name) == collector, f"{family.name} is not declared by {collector}"
        for sample in family.samples:
            assert set(sample.labels) == _declared_labels(family, sample.name), (family.name, sample.labels)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_collector_emits_only_its_declared_families(sim, scenario: str) -> None:
    # The large scenario at 300 repositories: the same shapes, labels and parts, in seconds.
    url, _ = await sim.start(scenario, scale=300 if scenario == "large" else None)
    engine = Engine([make_target(url, collectors=EVERYTHING_ON)], only=list(COLLECTORS))
    try:
        for _ in range(2):  # collectors that start from a watermark make every call from the second run on
            await engine.run_all_once()
    finally:
        await engine.shutdown()
    for collector in COLLECTORS:
        run = engine.store.run("sim", collector)
        internal = [p for p in run.parts if p.outcome is Outcome.ERROR and "internal error" in p.reason]
        assert not internal, internal
        assert "internal error" not in run.reason
        _check_families(collector, engine.store.families("sim", collector))


def _glob(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "*", template)


@pytest.mark.parametrize("collector", list(COLLECTORS))
async def test_one_failing_endpoint_leaves_the_other_parts_current(sim, collector: str) -> None:
    url, state = await sim.start(RICHEST.get(collector, "healthy"))
    engine = Engine([make_target(url, retries=0, collectors=EVERYTHING_ON)], only=[collector])
    try:
        for _ in range(2):
            await engine.run_collector("sim", collector)
        before = {p.endpoint: p for p in engine.store.run("sim", collector).parts}
        working = sorted(e for e, p in before.items() if p.outcome is Outcome.SUCCESS and e.startswith("/"))
        assert working, f"{collector} has no part with data in this scenario"
        for endpoint in working:
            state.faults[:] = [Fault(route=_glob(endpoint.split("?")[0]), kind="error_500")]
            kept = engine.store.series("sim", collector, [endpoint])
            await engine.run_collector("sim", collector)
            after = {p.endpoint: p for p in engine.store.run("sim", collector).parts}
            if endpoint in MEASUREMENTS:
                [probe] = [f for f in engine.store.families("sim", collector) if f.name == MEASUREMENTS[endpoint]]
                assert [s.value for s in probe.samples] == [0.0]
            else:
                _assert_failed_alone(engine, collector, endpoint, before, after, kept)
            state.faults.clear()
            await engine.run_collector("sim", collector)
            before = {p.endpoint: p for p in engine.store.run("sim", collector).parts}
            assert all(p.outcome in SUCCESSFUL_OUTCOMES for p in before.values()), before
    finally:
        await engine.shutdown()


def _assert_failed_alone(engine: Engine, collector: str, endpoint: str, before: dict[str, PartRecord],
                         after: dict[str, PartRecord], kept: int) -> None:
    failed = after[endpoint]
    assert failed.outcome is Outcome.ERROR, (endpoint, failed)
    assert failed.last_success == before[endpoint].last_success, "its data keeps its age"
    assert engine.store.series("sim", collector, [endpoint]) == kept, "its data is kept"
    assert endpoint in engine.store.run("sim", collector).reason
    for other, part in after.items():
        if part.outcome in SUCCESSFUL_OUTCOMES:
            previous = before[other].last_success
            assert part.last_success is not None and previous is not None and part.last_success > previous
        else:  # only the faulted part, or a part that needs it
            assert other == endpoint or part.reason == f"not read: {endpoint} failed", (other, part)
