"""Data that stops moving is never reported as current: a run that never completes, a wall clock stepped
back (APScheduler plans by it) — the exporter notices, says so, and collects again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from exporter import scheduler
from exporter.collectors.storage import STORAGEINFO
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from tests.conftest import make_target
from tests.support import parse_exposition, value


async def until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def quick_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduler, "WATCH_EVERY", 0.1)
    monkeypatch.setattr(scheduler, "STALE_GRACE", 0.0)


async def test_a_run_that_never_completes_makes_the_data_stale(sim, quick_watch, caplog) -> None:
    url, state = await sim.start()
    state.faults.append(Fault(route=STORAGEINFO, kind="timeout", seconds=4))
    engine = Engine([make_target(url, retries=0, timeout=3, collectors={"storage": {"interval": 1}})], ["storage"])
    engine.start()
    try:
        with caplog.at_level(logging.WARNING):
            # Stale after two intervals, while the first run still waits for its answer.
            await until(lambda: engine.store.run("sim", "storage").outcome is Outcome.TIMEOUT, 2.9)
        run = engine.store.run("sim", "storage")
        assert "no run completed for 2s (one is due every 1s)" in run.reason
        assert all(p.outcome is Outcome.TIMEOUT for p in run.parts)
        assert "the data is stale" in caplog.text
        # The runs due meanwhile were not started: counted and said, not skipped in silence.
        assert engine.skipped_runs[("sim", "storage")] >= 1
        assert "a run was due while the previous one was still going" in caplog.text
        await engine.render_now()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
        assert (value(samples, "jfrog_exporter_runs_skipped_total", collector="storage") or 0) >= 1
        state.faults.clear()
        await until(lambda: engine.store.run("sim", "storage").outcome is Outcome.SUCCESS, 6)
    finally:
        await engine.shutdown()


async def test_a_wall_clock_stepped_back_does_not_stop_collection(sim, quick_watch, monkeypatch, caplog) -> None:
    url, _ = await sim.start()
    engine = Engine([make_target(url, collectors={"storage": {"interval": 1}})], ["storage"])
    engine.start()
    try:
        await until(lambda: engine.store.run("sim", "storage").runs[Outcome.SUCCESS] >= 1, 5)
        # What APScheduler sees after the clock went back an hour: every next run an hour away.
        assert engine._scheduler is not None
        later = datetime.now().astimezone() + timedelta(hours=1)
        for job in engine._scheduler.get_jobs():
            job.modify(next_run_time=later)
        monkeypatch.setattr(scheduler, "time", SimpleNamespace(time=lambda: time.time() - 3600,
                                                               monotonic=time.monotonic,
                                                               perf_counter=time.perf_counter))
        runs = engine.store.run("sim", "storage").runs[Outcome.SUCCESS]
        with caplog.at_level(logging.WARNING):
            await until(lambda: engine.store.run("sim", "storage").runs[Outcome.SUCCESS] >= runs + 2, 4)
        assert "the wall clock stepped -3600s: every collector is rescheduled from now" in caplog.text
    finally:
        await engine.shutdown()


async def test_a_jpd_that_is_back_is_seen_at_once_not_after_the_back_off(sim, monkeypatch, caplog) -> None:
    monkeypatch.setattr(scheduler, "BACKOFF_AFTER", 1)
    url, state = await sim.start()
    state.faults.append(Fault(route="*", kind="reset"))
    intervals = {"health": {"interval": 1}, "storage": {"interval": 1}}
    engine = Engine([make_target(url, retries=0, collectors=intervals)], ["health", "storage"])
    engine.start()
    try:
        await until(lambda: engine.store.run("sim", "storage").interval >= 4, 12)
        state.faults.clear()
        back = time.monotonic()
        with caplog.at_level(logging.INFO):
            await until(lambda: engine.store.run("sim", "storage").outcome is Outcome.SUCCESS, 3)
        took = time.monotonic() - back
        assert engine.store.run("sim", "storage").interval == 1
        assert "the JPD answers its ping again: back to every 1s, running now" in caplog.text
        assert took < 3, f"seen after {took:.1f}s, the backed-off interval was 4s or more"
    finally:
        await engine.shutdown()
