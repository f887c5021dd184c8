"""Collector `workers` over HTTP against the simulator: exactly-once counting of the execution history
across polls and restarts, the synthetic probe, failures of one part."""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.collectors.workers import EXECUTE, HISTORY, WORKERS
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_TOKEN
from exporter.simulator.faults import Fault
from exporter.simulator.workers_data import WorkersArea
from tests.conftest import make_target
from tests.support import Samples, exporter, parse_exposition, scrape, series, simulator, value

SECRETS = ("Wrk-s3cret-value", "src-Emb3dded-t0ken")


# -- over HTTP against the simulator ----------------------------------------------------------------
#: every history read in every run (by default a worker's is read at the pace its window fills)
EVERY_RUN = {"history_max_interval": "1s"}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def area_of(state: Any) -> WorkersArea:
    found = state.scenario.areas["workers"]
    assert isinstance(found, WorkersArea)
    return found


async def poll(engine: Engine) -> tuple[Outcome, Samples]:
    outcome = await engine.run_collector("sim", "workers")
    await engine.render_now()
    assert engine.store.payload is not None
    return outcome, parse_exposition(engine.store.payload.text.decode())


async def windows(url: str, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The history each worker shows now, read directly from the simulated JPD."""
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        out = {}
        for key in keys:
            response = await client.get("/worker/api/v1/execution_history", params={"workerKey": key})
            response.raise_for_status()
            out[key] = response.json()
        return out


def counted(samples: Samples, worker: str) -> Counter[str]:
    return Counter({s["status"]: int(value(samples, "jfrog_worker_executions_total", **s) or 0)
                    for s in series(samples, "jfrog_worker_executions_total", worker=worker)})


async def test_every_history_entry_is_counted_once_across_polls_and_restarts(sim) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    clock = FakeClock(data.origin + 1800)
    data.clock = clock
    keys = [w.key for w in data.workers]
    target = make_target(url, collectors={"workers": EVERY_RUN})

    engine = Engine([target], only=["workers"])
    try:
        outcome, samples = await poll(engine)
        assert outcome is Outcome.SUCCESS
        first = await windows(url, keys)
        assert len(first["block-risky-downloads"]) == data.history_limit  # a full backlog...
        for key in keys:
            assert sum(counted(samples, key).values()) == 0, key  # ...that is not counted
        seen_later: dict[str, dict[str, str]] = {k: {} for k in keys}
        # Small steps (heavily overlapping windows), no step, and a larger one within the window.
        for step in (2.0, 0.5, 0.0, 13.0, 41.0, 1.0):
            clock.now += step
            outcome, samples = await poll(engine)
            assert outcome is Outcome.SUCCESS
            for key, entries in (await windows(url, keys)).items():
                old = {e["id"] for e in first[key]}
                for e in entries:
                    if e["id"] not in old:
                        seen_later[key][e["id"]] = e["executionStatus"]
        for key in keys:
            expected = Counter(s.removeprefix("STATUS_").lower() for s in seen_later[key].values())
            got = counted(samples, key)
            assert +got == expected, key
            assert value(samples, "jfrog_worker_execution_duration_seconds_count", worker=key) == sum(got.values())
        assert sum(len(v) for v in seen_later.values()) > 20
        assert counted(samples, "notify-on-create")["fail"] > 0
        # A disabled worker keeps its old history: nothing new to count.
        assert sum(counted(samples, "legacy-token-guard").values()) == 0
        before_restart = {key: counted(samples, key) for key in keys}
    finally:
        await engine.shutdown()

    # The exporter restarts: the backlog is not counted again, counting resumes from now.
    engine = Engine([target], only=["workers"])
    try:
        _, samples = await poll(engine)
        assert all(sum(counted(samples, key).values()) == 0 for key in keys)
        base = await windows(url, keys)
        clock.now += 9.0
        _, samples = await poll(engine)
        after = await windows(url, keys)
        for key in keys:
            old = {e["id"] for e in base[key]}
            expected = Counter(e["executionStatus"].removeprefix("STATUS_").lower()
                               for e in after[key] if e["id"] not in old)
            assert +counted(samples, key) == expected, key
        assert sum(counted(samples, "block-risky-downloads").values()) == 3  # one run every 3 s
        assert before_restart["block-risky-downloads"]["success"] > 0
    finally:
        await engine.shutdown()


async def test_workers_scenario_series(sim, caplog: pytest.LogCaptureFixture) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    data.clock = FakeClock(data.origin + 600)
    engine = Engine([make_target(url)], only=["workers"])
    try:
        with caplog.at_level(logging.DEBUG, logger="exporter"):
            outcome, samples = await poll(engine)
        assert outcome is Outcome.SUCCESS
        history = await windows(url, [w.key for w in data.workers])
    finally:
        await engine.shutdown()
    for w in data.workers:
        assert value(samples, "jfrog_worker_enabled", worker=w.key, action=w.action) == (1 if w.enabled else 0)
    # Last execution and limit use come from the newest entry of each history.
    newest = max(history["block-risky-downloads"], key=lambda e: e["endTimeMillis"])
    assert value(samples, "jfrog_worker_last_execution_timestamp_seconds",
                 worker="block-risky-downloads") == newest["startTimeMillis"] / 1000
    stats, limits = newest["executionResult"]["workerStats"], newest["executionResult"]["executionLimits"]
    assert value(samples, "jfrog_worker_limit_usage_ratio", worker="block-risky-downloads",
                 resource="memory") == pytest.approx(stats["topMemoryUsageBytes"] / limits["maxMemoryUsageBytes"])
    assert value(samples, "jfrog_worker_limit_usage_ratio", worker="block-risky-downloads",
                 resource="duration") == pytest.approx(
        stats["executionDurationMillis"] / limits["maxExecutionDurationMillis"])
    assert value(samples, "jfrog_worker_limit_usage_ratio", worker="block-risky-downloads",
                 resource="cpu") == pytest.approx(stats["cpuTimeMillis"] / limits["maxCpuTimeMillis"])
    # tag-uploads reports no limits: no ratio.
    assert series(samples, "jfrog_worker_limit_usage_ratio", worker="tag-uploads") == []
    # GENERIC_EVENT workers never executed: no last execution yet.
    assert value(samples, "jfrog_worker_last_execution_timestamp_seconds", worker="nightly-report") is None
    # Source code and secrets appear nowhere: not in the page, not in a log line.
    text = engine.store.payload.text.decode() if engine.store.payload else ""
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for secret in SECRETS:
        assert secret not in text and secret not in logs


async def test_probe_success_and_its_executions_are_counted(sim) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    clock = FakeClock(data.origin + 600)
    data.clock = clock
    target = make_target(url, collectors={"workers": {"probe_worker": "exporter-probe", **EVERY_RUN}})
    engine = Engine([target], only=["workers"])
    try:
        for _ in range(4):
            outcome, samples = await poll(engine)
            assert outcome is Outcome.SUCCESS
            clock.now += 5.0
    finally:
        await engine.shutdown()
    assert value(samples, "jfrog_worker_probe_success", worker="exporter-probe") == 1
    duration = value(samples, "jfrog_worker_probe_duration_seconds", worker="exporter-probe")
    assert duration is not None and 0 < duration < 5
    # Four probes; the first was part of the first sight.
    assert counted(samples, "exporter-probe") == Counter({"success": 3, "fail": 0})
    assert value(samples, "jfrog_worker_last_execution_timestamp_seconds", worker="exporter-probe") is not None


@pytest.mark.parametrize(("worker", "reason"), [
    ("cleanup-trigger", "STATUS_FAIL"),  # executes, but fails
    ("nightly-report", "disabled"),
    ("tag-uploads", "GENERIC_EVENT"),  # not an HTTP-triggered worker
    ("no-such-worker", "404"),
])
async def test_probe_failures(sim, caplog: pytest.LogCaptureFixture, worker: str, reason: str) -> None:
    url, _ = await sim.start("workers")
    target = make_target(url, retries=0, collectors={"workers": {"probe_worker": worker}})
    engine = Engine([target], only=["workers"])
    try:
        with caplog.at_level(logging.WARNING, logger="exporter"):
            first, samples = await poll(engine)
            second, _ = await poll(engine)
    finally:
        await engine.shutdown()
    # A failing probe is a measurement, not a failed collection.
    assert first is Outcome.SUCCESS and second is Outcome.SUCCESS
    assert value(samples, "jfrog_worker_probe_success", worker=worker) == 0
    warnings = [r.getMessage() for r in caplog.records if "probe worker" in r.getMessage()]
    assert len(warnings) == 1 and reason in warnings[0], warnings


async def test_probe_timeout(sim) -> None:
    url, state = await sim.start("workers")
    state.faults.append(Fault(route="/worker/api/v1/execute/*", kind="timeout", seconds=3.0))
    target = make_target(url, collectors={"workers": {"probe_worker": "exporter-probe", "probe_timeout": "300ms"}})
    engine = Engine([target], only=["workers"])
    try:
        outcome, samples = await poll(engine)
    finally:
        await engine.shutdown()
    assert outcome is Outcome.SUCCESS
    assert value(samples, "jfrog_worker_probe_success", worker="exporter-probe") == 0
    duration = value(samples, "jfrog_worker_probe_duration_seconds", worker="exporter-probe")
    assert duration is not None and 0.3 <= duration < 2.0


async def test_one_failing_history_fails_the_run_but_updates_the_rest(sim) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    clock = FakeClock(data.origin + 600)
    data.clock = clock
    engine = Engine([make_target(url, retries=0, collectors={"workers": EVERY_RUN})], only=["workers"])
    try:
        await poll(engine)
        clock.now += 30.0
        state.faults.append(Fault(route="/worker/api/v1/execution_history", kind="error_500", times=1))
        outcome, samples = await poll(engine)
        assert outcome is Outcome.ERROR
        assert "worker " in engine.store.run("sim", "workers").reason
        assert len(series(samples, "jfrog_worker_enabled")) == len(data.workers)
        total = sum(sum(counted(samples, w.key).values()) for w in data.workers)
        assert total > 0  # the other workers were counted
        # The next run catches up on the failed worker without double counting anyone.
        outcome, samples = await poll(engine)
        assert outcome is Outcome.SUCCESS
        history = await windows(url, ["block-risky-downloads"])
        assert sum(counted(samples, "block-risky-downloads").values()) == sum(
            1 for e in history["block-risky-downloads"] if e["endTimeMillis"] > (data.origin + 600) * 1000)
    finally:
        await engine.shutdown()


async def test_deleted_worker_disappears(sim) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    engine = Engine([make_target(url)], only=["workers"])
    try:
        _, samples = await poll(engine)
        assert series(samples, "jfrog_worker_enabled", worker="tag-uploads")
        data.workers = [w for w in data.workers if w.key != "tag-uploads"]
        _, samples = await poll(engine)
        assert series(samples, "jfrog_worker_enabled", worker="tag-uploads") == []
        assert series(samples, "jfrog_worker_executions_total", worker="tag-uploads") == []
    finally:
        await engine.shutdown()


async def test_editions_without_workers(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["workers"])
    assert value(samples, "jfrog_exporter_collector_success", collector="workers") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="workers", outcome="unsupported") == 1
    assert series(samples, "jfrog_worker_enabled") == []


async def test_non_admin_token_is_forbidden(sim, collect_once) -> None:
    url, _ = await sim.start("workers")
    samples, _ = await collect_once([make_target(url, token="simulator-reader-token")], only=["workers"])
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="workers", outcome="forbidden") == 1


async def test_large_scenario_reads_each_history_at_the_pace_its_window_fills(sim) -> None:
    """200 more workers running every 1 to 10 minutes: each history is read before its window of 20 entries
    turns over (at half its span, at most every 10 minutes), and no entry is missed or counted twice."""
    url, state = await sim.start("large")
    data = area_of(state)
    clock = FakeClock(data.origin + 4 * 3600)
    data.clock = clock
    engine = Engine([make_target(url)], only=["workers"], clock=clock)
    keys = [w.key for w in data.workers if w.enabled and w.key.startswith("worker-")]
    try:
        _, samples = await poll(engine)
        workers = {s["worker"] for s in series(samples, "jfrog_worker_enabled")}
        assert len({k for k in workers if k.startswith("worker-")}) == 200
        assert len(workers) == len(data.workers)
        first = await windows(url, keys)
        reads = [calls(engine, HISTORY)]
        for _ in range(9):  # 18 minutes, runs two minutes apart
            clock.now += 120
            outcome, samples = await poll(engine)
            assert outcome is Outcome.SUCCESS
            reads.append(calls(engine, HISTORY))
        last = await windows(url, keys)
        collector = engine.targets["sim"].collectors["workers"]
        read_at = {key: collector._gaps.read_at(key) for key in keys}  # type: ignore[attr-defined]
    finally:
        await engine.shutdown()
    assert reads[0] == len(data.workers)
    per_run = [b - a for a, b in itertools.pairwise(reads)]
    # Reading all of them every run would be 9 runs of 202 calls.
    assert sum(per_run) < 0.4 * 9 * len(data.workers)
    for key in keys:
        # Counted: what ended after the first read's newest entry, up to this worker's last read.
        newest_first = max(e["endTimeMillis"] for e in first[key]) if first[key] else 0
        assert read_at[key] is not None and clock.now - read_at[key] <= 600
        expected = Counter(e["executionStatus"].removeprefix("STATUS_").lower() for e in last[key]
                           if newest_first < e["endTimeMillis"] <= read_at[key] * 1000)
        assert +counted(samples, key) == expected, key


def test_real_processes_restart_without_a_burst(tmp_path: Path) -> None:
    """`simulate` and `serve` as processes: counts grow with the history; a restarted exporter starts at 0."""
    def config(interval: str) -> Path:
        path = tmp_path / f"config-{interval}.yaml"
        path.write_text(
            "targets:\n"
            f"  - name: jpd\n    url: {sim.url}\n    auth: {{token_env: SIM_TOKEN}}\n"
            f"    collectors: {{workers: {{interval: {interval}, history_max_interval: 1s}},"
            " health: {enabled: false}, storage: {enabled: false}}\n"
        )
        return path

    def totals(samples: Samples) -> int:
        return int(sum(v for (n, _), v in samples.items() if n == "jfrog_worker_executions_total"))

    env = {"SIM_TOKEN": DEFAULT_TOKEN}
    with simulator(tmp_path, "workers") as sim:
        started_ms = time.time() * 1000
        with exporter(tmp_path, "--config", str(config("1s")), env=env) as exp:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and totals(scrape(exp.url)) == 0:
                time.sleep(0.5)
            samples = scrape(exp.url)
        stopped_ms = time.time() * 1000
        assert totals(samples) > 0
        # Never more than what ended while that exporter ran.
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        for s in series(samples, "jfrog_worker_executions_total", status="success"):
            history = httpx.get(sim.url + "/worker/api/v1/execution_history", params={"workerKey": s["worker"]},
                                headers=headers).json()
            ran = sum(1 for e in history if started_ms <= e["endTimeMillis"] <= stopped_ms)
            assert sum(counted(samples, s["worker"]).values()) <= ran, s["worker"]
        # Restarted with a long interval: one poll, a full history, nothing counted.
        with exporter(tmp_path, "--config", str(config("10m")), env=env) as exp:
            deadline = time.monotonic() + 20
            samples = scrape(exp.url)
            while time.monotonic() < deadline and not series(samples, "jfrog_worker_executions_total"):
                time.sleep(0.3)
                samples = scrape(exp.url)
    assert len(series(samples, "jfrog_worker_executions_total", status="success")) >= 5
    assert totals(samples) == 0
    assert value(samples, "jfrog_worker_last_execution_timestamp_seconds", worker="block-risky-downloads")


def endpoint_values(samples: Samples, name: str) -> dict[str, float]:
    return {s["endpoint"]: v for s in series(samples, name, collector="workers")
            if (v := value(samples, name, collector="workers", endpoint=s["endpoint"])) is not None}


async def test_one_endpoint_fails_the_others_stay_current(sim) -> None:
    url, state = await sim.start("workers")
    data = area_of(state)
    clock = FakeClock(data.origin + 600)
    data.clock = clock
    target = make_target(url, retries=0, collectors={"workers": {"probe_worker": "exporter-probe", **EVERY_RUN}})
    engine = Engine([target], only=["workers"])
    try:
        await poll(engine)
        clock.now += 30.0
        outcome, before = await poll(engine)
        assert outcome is Outcome.SUCCESS
        counted_before = counted(before, "block-risky-downloads")
        assert sum(counted_before.values()) > 0
        # The histories now answer a proxy's error page; the list changes and runs go on meanwhile.
        state.faults.append(Fault.parse(f"{HISTORY}=html_502"))
        data.find("block-risky-downloads").enabled = False
        clock.now += 30.0
        outcome, after = await poll(engine)
    finally:
        await engine.shutdown()
    assert outcome is Outcome.ERROR
    up = endpoint_values(after, "jfrog_exporter_endpoint_up")
    assert up == {EXECUTE: 1, WORKERS: 1, HISTORY: 0}
    first = endpoint_values(before, "jfrog_exporter_endpoint_last_success_timestamp_seconds")
    second = endpoint_values(after, "jfrog_exporter_endpoint_last_success_timestamp_seconds")
    assert second[HISTORY] == first[HISTORY]
    assert second[EXECUTE] > first[EXECUTE] and second[WORKERS] > first[WORKERS]
    # The list and the probe are current...
    assert value(after, "jfrog_worker_enabled", worker="block-risky-downloads", action="BEFORE_DOWNLOAD") == 0
    assert value(after, "jfrog_worker_probe_success", worker="exporter-probe") == 1
    # ...and the counts stay what they were: nothing is lost or counted twice when the history is back.
    assert counted(after, "block-risky-downloads") == counted_before
    assert value(after, "jfrog_worker_execution_duration_seconds_count", worker="block-risky-downloads") == sum(
        counted_before.values())
    assert value(after, "jfrog_exporter_collector_success", collector="workers") == 0
    reason = engine.store.run("sim", "workers").reason
    assert HISTORY in reason and "502" in reason


def calls(engine: Engine, endpoint: str) -> int:
    return sum(n for (ep, _), n in engine.targets["sim"].client.stats.counts.items() if ep == endpoint)
