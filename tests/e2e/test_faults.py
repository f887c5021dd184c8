"""Every fault kind on every collector's endpoints: the exporter survives, says what happened
once, keeps its last good data, and recovers when the fault clears."""

from __future__ import annotations

import logging
import re

import pytest

from exporter.collectors.registry import COLLECTORS
from exporter.outcomes import Outcome
from exporter.scheduler import BACKOFF_AFTER, Engine, backoff_interval
from exporter.simulator.faults import Fault
from tests.conftest import make_target
from tests.support import parse_exposition

#: what the exporter must report for each fault kind
EXPECTED = {
    "error_500": Outcome.ERROR,
    "html_502": Outcome.ERROR,
    "unavailable_503": Outcome.ERROR,
    "throttled_429": Outcome.ERROR,
    "timeout": Outcome.TIMEOUT,
    "slow_body": Outcome.TIMEOUT,
    "reset": Outcome.UNREACHABLE,
    "truncated_json": Outcome.BAD_RESPONSE,
    "wrong_type": Outcome.BAD_RESPONSE,
    "plain_text": Outcome.BAD_RESPONSE,
    "empty": Outcome.BAD_RESPONSE,
    "huge": Outcome.BAD_RESPONSE,
}

#: families a failed run replaces on purpose: health reports the JPD and its services down, distribution its
#: service (the rest stays); the webhook deliveries of back-to-back runs are an empty window, whose answer (an
#: empty body) a fault that empties or cuts the body leaves valid, so its part succeeds and only how far it
#: counted moves
PARTIAL = {"health": {"jfrog_up", "jfrog_ready", "jfrog_router_service_healthy", "jfrog_service_up",
                      "jfrog_service_ready"},
           "distribution": {"jfrog_distribution_up"},
           "webhooks": {"jfrog_webhook_deliveries_watermark_timestamp_seconds"}}

#: settings that make a collector call every endpoint on back-to-back runs
SETTINGS_FOR = {"activity": {"activity": {"settle": 0}}, "replication": {"replication": {"full_sweep": "1s"}},
                "federation": {"federation": {"full_sweep": "1s"}},
                "workers": {"workers": {"history_max_interval": "1s"}}, "health": {"health": {"details_interval": 0}}}

#: the scenario where each collector has data to lose
SCENARIO_FOR = {
    "replication": "replication",
    "federation": "federation-rtfs",
    "maintenance": "maintenance",
    "workers": "workers",
    "distribution": "distribution",
}


def _expected(collector: str, kind: str) -> Outcome:
    # Artifactory answers an empty Open Metrics body when metrics are disabled on the JPD.
    if collector == "openmetrics" and kind == "empty":
        return Outcome.UNSUPPORTED
    return EXPECTED[kind]


def _also_acceptable(collector: str, kind: str) -> set[Outcome]:
    # Half an Open Metrics text cut right after a line feed is still a valid, shorter exposition.
    if collector == "openmetrics" and kind == "truncated_json":
        return {Outcome.SUCCESS}
    return set()


def _glob(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "*", template)


def _series(engine: Engine, target: str, collector: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in engine.store.families(target, collector):
        if family.name in PARTIAL.get(collector, ()):
            continue
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


@pytest.mark.parametrize("collector", list(COLLECTORS))
@pytest.mark.parametrize("kind", list(EXPECTED))
async def test_fault_on_every_endpoint(sim, collector: str, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    scenario = SCENARIO_FOR.get(collector, "healthy")
    from exporter.simulator.scenarios import SCENARIOS

    if scenario not in SCENARIOS:
        scenario = "healthy"
    url, state = await sim.start(scenario)
    # No retries: classification is what is tested here (retries are the client unit tests'), and Retry-After
    # waits would dominate the run.
    target = make_target(url, timeout="0.5s", retries=0, max_response_bytes=1024 * 1024,
                         collectors=SETTINGS_FOR.get(collector, {}))
    engine = Engine([target], only=[collector])
    try:
        # Two runs: collectors that start from a watermark make their full set of calls from the second on.
        for _ in range(2):
            assert await engine.run_collector("sim", collector) in (Outcome.SUCCESS, Outcome.UNSUPPORTED)
        before = _series(engine, "sim", collector)
        routes = sorted({_glob(endpoint) for endpoint, _ in engine.targets["sim"].client.stats.counts})
        state.faults[:] = [Fault(route=r, kind=kind, seconds=5.0 if kind == "slow_body" else 2.0, size=4 << 20)
                           for r in routes]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="exporter"):
            first = await engine.run_collector("sim", collector)
            second = await engine.run_collector("sim", collector)
        expected = _expected(collector, kind)
        if first is Outcome.SUCCESS and Outcome.SUCCESS in _also_acceptable(collector, kind):
            return  # a body that is still valid data after the fault (see _also_acceptable)
        if expected is Outcome.UNSUPPORTED:
            # The documents define this answer as "the feature is off": nothing to keep, not an error.
            assert first is second is Outcome.UNSUPPORTED, engine.store.run("sim", collector).reason
            return
        assert first == expected, engine.store.run("sim", collector).reason
        assert second == first
        run = engine.store.run("sim", collector)
        assert run.runs[expected] == 2 and run.consecutive_failures == 2
        assert run.reason, "a failure says what happened"
        # One warning for the change, not one per run.
        failures = [r for r in caplog.records if "failed:" in r.getMessage()]
        assert len(failures) == 1, [r.getMessage() for r in caplog.records]
        # The last good data stays, and its age is visible.
        assert _series(engine, "sim", collector) == before
        await engine.render_now()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
        key = ("jfrog_exporter_collector_success", frozenset({("target", "sim"), ("collector", collector)}))
        assert samples[key] == 0
        # The fault clears: the next run recovers.
        state.faults.clear()
        assert await engine.run_collector("sim", collector) in (Outcome.SUCCESS, Outcome.UNSUPPORTED)
        assert engine.store.run("sim", collector).consecutive_failures == 0
    finally:
        await engine.shutdown()


def test_backoff_schedule() -> None:
    assert [backoff_interval(30, n) for n in range(BACKOFF_AFTER)] == [30] * BACKOFF_AFTER
    assert backoff_interval(30, BACKOFF_AFTER) == 60
    assert backoff_interval(30, BACKOFF_AFTER + 1) == 120
    assert backoff_interval(30, BACKOFF_AFTER + 10) == 240  # capped at 8x
    assert backoff_interval(600, BACKOFF_AFTER + 10) == 3600  # and at an hour


async def test_backoff_is_visible_and_resets(sim) -> None:
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url, retries=0)], only=["storage"])
    try:
        state.faults.append(Fault(route="/artifactory/api/storageinfo", kind="error_500"))
        for _ in range(BACKOFF_AFTER + 1):
            await engine.run_collector("sim", "storage")
        run = engine.store.run("sim", "storage")
        assert run.interval == 4 * run.base_interval
        await engine.render_now()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
        interval_key = ("jfrog_exporter_collector_interval_seconds",
                        frozenset({("target", "sim"), ("collector", "storage")}))
        assert samples[interval_key] == 4 * run.base_interval
        state.faults.clear()
        await engine.run_collector("sim", "storage")
        assert engine.store.run("sim", "storage").interval == run.base_interval
    finally:
        await engine.shutdown()
