"""The request budget over real HTTP: calls spread at the configured rate without their timeout running
meanwhile, a 429 storm slows the target down and it climbs back; all of it on /metrics."""

from __future__ import annotations

import asyncio
import logging

import pytest

from exporter import budget as budget_module
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from tests.conftest import make_target
from tests.support import parse_exposition, value

STORAGE = "/artifactory/api/storageinfo"


async def metrics(engine: Engine) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    await engine.render_now()
    assert engine.store.payload is not None
    return parse_exposition(engine.store.payload.text.decode())


async def test_a_burst_is_spread_at_the_budget_and_the_wait_is_not_timed(sim) -> None:
    url, state = await sim.start("healthy")
    state.latency_ms = 100
    # 0.3 s per exchange, while the last calls wait 2 s for the budget.
    engine = Engine([make_target(url, max_requests_per_second=10, max_concurrency=16, timeout="0.3s",
                                 retries=0)], only=["storage"])
    client = engine.targets["sim"].client
    try:
        results = await asyncio.gather(*(client.get(STORAGE) for _ in range(30)))
        assert [r.outcome for r in results] == [Outcome.SUCCESS] * 30
        arrivals = sorted(state.arrivals)
        assert len(arrivals) == 30
        # One second's worth at once, then one call every 100 ms.
        assert arrivals[9] - arrivals[0] < 0.1
        assert arrivals[-1] - arrivals[0] == pytest.approx(2.0, abs=0.15)
        assert all(later - arrivals[i] > 0.9 for i, later in enumerate(arrivals[20:]))
        samples = await metrics(engine)
        assert value(samples, "jfrog_exporter_request_budget_per_second") == 10
        assert value(samples, "jfrog_exporter_requests_delayed_total") == 20
        # 0.1 + 0.2 + ... + 2.0 s
        assert value(samples, "jfrog_exporter_request_budget_wait_seconds_total") == pytest.approx(21, rel=0.1)
        assert value(samples, "jfrog_exporter_request_slowdowns_total", reason="rate_limited") == 0
    finally:
        await engine.shutdown()


async def test_a_429_storm_slows_the_target_down_until_the_jpd_recovers(
        sim, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The climb back in a fraction of a second rather than 20 s (its arithmetic: tests/unit/test_budget.py).
    monkeypatch.setattr(budget_module, "CALM_SECONDS", 1.5)
    monkeypatch.setattr(budget_module, "RECOVERY_PER_SECOND", 2.0)
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url, max_requests_per_second=10, max_concurrency=16, retries=0)],
                    only=["storage"])
    client = engine.targets["sim"].client
    try:
        state.faults[:] = [Fault(route=STORAGE, kind="throttled_429")]  # Retry-After: 1
        with caplog.at_level(logging.INFO, logger="exporter"):
            results = await asyncio.gather(*(client.get(STORAGE) for _ in range(10)))
            # Truthful outcomes: the JPD refused, the exporter did not fail.
            assert {(r.outcome, r.status) for r in results} == {(Outcome.ERROR, 429)}
            assert results[0].reason.startswith("HTTP 429: Too Many Requests (the JPD limits how fast it may be asked")
            samples = await metrics(engine)
            # Halved once, not once per answer to the calls already in flight.
            assert value(samples, "jfrog_exporter_request_slowdowns_total", reason="rate_limited") == 1
            assert value(samples, "jfrog_exporter_request_budget_per_second") == 5
            state.faults.clear()
            # The next call waits out the Retry-After, however free the budget otherwise is.
            assert (await client.get(STORAGE)).ok
            arrivals = sorted(state.arrivals)
            assert arrivals[10] - arrivals[9] > 0.9
            assert value(await metrics(engine), "jfrog_exporter_request_budget_per_second") == 5
            # Calm, then the climb back to the configured rate.
            await asyncio.sleep(1.0)
            assert (await client.get(STORAGE)).ok
            assert value(await metrics(engine), "jfrog_exporter_request_budget_per_second") == 10
        said = [r.getMessage() for r in caplog.records if r.name == "exporter.budget"]
        assert said == ["slowing down requests to sim from 10/s to 5/s: the JPD answered 429 Too Many Requests",
                        "requests to sim are back to the configured 10/s"]
    finally:
        await engine.shutdown()


async def test_answers_far_slower_than_usual_halve_the_budget(sim) -> None:
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url, max_requests_per_second=40, max_concurrency=16, timeout="5s", retries=0)],
                    only=["storage"])
    client = engine.targets["sim"].client
    try:
        assert all(r.ok for r in await asyncio.gather(*(client.get(STORAGE) for _ in range(16))))
        state.latency_ms = 700  # the JPD struggling: 0.7 s to every answer, several times its usual
        slow = await asyncio.gather(*(client.get(STORAGE) for _ in range(16)))
        assert all(r.ok for r in slow)  # slow, not failed: the outcome stays success
        samples = await metrics(engine)
        assert value(samples, "jfrog_exporter_request_slowdowns_total", reason="latency") == 1
        assert value(samples, "jfrog_exporter_request_budget_per_second") == 20
    finally:
        await engine.shutdown()
