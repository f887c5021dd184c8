"""Collector `maintenance` over HTTP against the simulator's maintenance scenarios: PUD, cleanup policies,
background tasks, archive policies, retention."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from typing import Any

import pytest

from exporter.collectors.maintenance import (
    ARCHIVE_EXECUTIONS,
    BUNDLE_POLICIES,
    PACKAGE_POLICIES,
    PRUNE_STATUS,
    RETENTION_ENABLED,
    TASKS,
)
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from exporter.simulator.maintenance_data import MaintenanceArea
from tests.conftest import make_target
from tests.support import Samples, ensure_prometheus, parse_exposition, series, value


# -- over HTTP against the simulator ----------------------------------------------------------------
async def run(engine: Engine) -> tuple[Outcome, Samples]:
    outcome = await engine.run_collector("sim", "maintenance")
    await engine.render_now()
    assert engine.store.payload is not None
    return outcome, parse_exposition(engine.store.payload.text.decode())


def area_of(state: Any) -> MaintenanceArea:
    found = state.scenario.areas["maintenance"]
    assert isinstance(found, MaintenanceArea)
    return found


async def test_maintenance_scenario(sim, collect_once) -> None:
    url, state = await sim.start("maintenance")
    data = area_of(state)
    samples, _ = await collect_once([make_target(url)], only=["maintenance"])
    assert value(samples, "jfrog_exporter_collector_success", collector="maintenance") == 1
    # PUD running with progress.
    pud = data.pud
    assert pud is not None
    assert value(samples, "jfrog_pud_status", status="running") == 1
    assert sum(value(samples, "jfrog_pud_status", status=s) or 0 for s in
               ("never_run", "stopped", "finished", "error")) == 0
    assert value(samples, "jfrog_pud_directories_processed") == pud.directories_done
    assert value(samples, "jfrog_pud_directories") == pud.directories_total
    assert value(samples, "jfrog_pud_binaries_processed") == pud.binaries_processed
    assert value(samples, "jfrog_pud_binaries_cleaned") == pud.binaries_cleaned
    assert value(samples, "jfrog_pud_cleaned_bytes") == pud.bytes_cleaned
    assert value(samples, "jfrog_pud_dry_run") == 0
    assert value(samples, "jfrog_pud_started_timestamp_seconds") == pud.started
    assert value(samples, "jfrog_pud_last_updated_timestamp_seconds") == pud.last_updated
    # Cleanup policies of both kinds, some disabled, one enabled without a schedule.
    for kind, policies in (("packages", data.package_policies), ("bundles", data.bundle_policies)):
        assert policies
        for p in policies:
            assert value(samples, "jfrog_cleanup_policy_enabled", kind=kind, policy=p.key) == (1 if p.enabled else 0)
            expected = p.duration_minutes * 60 if p.duration_minutes else None
            assert value(samples, "jfrog_cleanup_policy_max_duration_seconds", kind=kind, policy=p.key) == expected
            assert value(samples, "jfrog_cleanup_policy_scheduled", kind=kind, policy=p.key) == (1 if p.cron else 0)
    should_run_but_cannot = {
        (s["kind"], s["policy"]) for s in series(samples, "jfrog_cleanup_policy_enabled")
        if value(samples, "jfrog_cleanup_policy_enabled", **s) == 1
        and value(samples, "jfrog_cleanup_policy_scheduled", kind=s["kind"], policy=s["policy"]) == 0
    }
    assert should_run_but_cannot == {("packages", "maven-snapshots-90d"), ("bundles", "rb-manual")}
    assert value(samples, "jfrog_cleanup_policy_last_run_info", kind="bundles", policy="rb-manual",
                 status="failed") == 1
    # Background tasks and GC.
    assert value(samples, "jfrog_gc_running") == 1
    assert value(samples, "jfrog_background_tasks", task_type="BinaryStoreGarbageCollectorJob", state="running") == 1
    assert value(samples, "jfrog_background_tasks", task_type="BinaryStoreGarbageCollectorJob",
                 state="scheduled") == 2
    assert value(samples, "jfrog_background_tasks", task_type="LocalReplicationJob", state="running") == 2
    oldest_replication = min(t.started for t in data.tasks or [] if t.state == "running"
                             and t.type.endswith("LocalReplicationJob") and t.started)
    assert value(samples, "jfrog_background_task_oldest_running_started_timestamp_seconds",
                 task_type="LocalReplicationJob") == pytest.approx(oldest_replication, abs=0.001)
    running = value(samples, "jfrog_background_task_oldest_running_seconds", task_type="LocalReplicationJob")
    assert running is not None and 40 * 60 <= running < 40 * 60 + 60
    # Archive policies: the newest execution of each policy.
    assert value(samples, "jfrog_archive_policy_last_execution_status", policy="archive-old-builds",
                 status="complete_with_errors") == 1
    assert value(samples, "jfrog_archive_policy_last_execution_status", policy="archive-docker",
                 status="in_progress") == 1
    assert value(samples, "jfrog_archive_policy_last_execution_artifacts", policy="archive-old-builds",
                 result="failed") == 20
    assert value(samples, "jfrog_retention_service_enabled") == 1


async def test_pud_never_run_scenario(sim, collect_once) -> None:
    url, _ = await sim.start("maintenance-pud-never-run")
    samples, _ = await collect_once([make_target(url)], only=["maintenance"])
    assert value(samples, "jfrog_exporter_collector_success", collector="maintenance") == 1
    assert value(samples, "jfrog_pud_status", status="never_run") == 1
    assert value(samples, "jfrog_pud_status", status="running") == 0
    assert series(samples, "jfrog_pud_dry_run") == []
    assert series(samples, "jfrog_pud_directories") == []
    assert value(samples, "jfrog_gc_running") == 1


async def test_pud_error_scenario_logs_the_error(sim, collect_once, caplog: pytest.LogCaptureFixture) -> None:
    url, state = await sim.start("maintenance-pud-error")
    pud = area_of(state).pud
    assert pud is not None and pud.error
    with caplog.at_level(logging.WARNING, logger="exporter"):
        samples, _ = await collect_once([make_target(url)], only=["maintenance"])
    assert value(samples, "jfrog_pud_status", status="error") == 1
    assert value(samples, "jfrog_pud_dry_run") == 1
    assert any(pud.error in r.getMessage() for r in caplog.records)
    # The message is logged, never a label.
    assert not any(pud.error in v for s in series(samples, "jfrog_pud_status") for v in s.values())


async def test_editions_without_the_endpoints(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["maintenance"])
    assert value(samples, "jfrog_exporter_collector_success", collector="maintenance") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="maintenance", outcome="unsupported") == 1
    assert series(samples, "jfrog_pud_status") == []
    assert series(samples, "jfrog_gc_running") == []


async def test_versions_without_some_endpoints(sim) -> None:
    url, state = await sim.start("maintenance")
    data = area_of(state)
    # Before 7.104.2 there are no bundle policies; before 7.72 no PUD; Pro has no archive or retention.
    data.bundle_policies = None
    data.pud_supported = False
    data.archive_executions = None
    data.retention_enabled = None
    engine = Engine([make_target(url)], only=["maintenance"])
    try:
        outcome, samples = await run(engine)
    finally:
        await engine.shutdown()
    assert outcome is Outcome.SUCCESS
    assert series(samples, "jfrog_pud_status") == []
    assert series(samples, "jfrog_cleanup_policy_enabled", kind="bundles") == []
    assert len(series(samples, "jfrog_cleanup_policy_enabled", kind="packages")) == 3
    assert series(samples, "jfrog_retention_service_enabled") == []
    assert value(samples, "jfrog_gc_running") == 1


async def test_a_failing_part_keeps_its_data_and_the_others_update(sim) -> None:
    url, state = await sim.start("maintenance")
    data = area_of(state)
    engine = Engine([make_target(url, retries=0)], only=["maintenance"])
    try:
        outcome, _ = await run(engine)
        assert outcome is Outcome.SUCCESS
        # The PUD moves on and GC finishes, but the tasks endpoint now fails.
        assert data.pud is not None and data.tasks is not None
        data.pud.directories_done = 120
        data.tasks = [t for t in data.tasks if t.state != "running"]
        state.faults.append(Fault(route="/artifactory/api/tasks", kind="error_500"))
        outcome, samples = await run(engine)
        assert outcome is Outcome.ERROR
        assert "/artifactory/api/tasks" in engine.store.run("sim", "maintenance").reason
        assert value(samples, "jfrog_pud_directories_processed") == 120
        assert value(samples, "jfrog_gc_running") == 1  # the last good answer stays
        assert value(samples, "jfrog_exporter_collector_success", collector="maintenance") == 0
        state.faults.clear()
        outcome, samples = await run(engine)
        assert outcome is Outcome.SUCCESS
        assert value(samples, "jfrog_gc_running") == 0
    finally:
        await engine.shutdown()


async def test_non_admin_token_is_forbidden(sim, collect_once) -> None:
    url, _ = await sim.start("maintenance")
    samples, _ = await collect_once([make_target(url, token="simulator-reader-token")], only=["maintenance"])
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="maintenance", outcome="forbidden") == 1
    assert series(samples, "jfrog_pud_status") == []


async def test_healthy_scenario_has_a_small_population(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, _ = await collect_once([make_target(url)], only=["maintenance"])
    assert value(samples, "jfrog_pud_status", status="finished") == 1
    assert value(samples, "jfrog_gc_running") == 0
    assert value(samples, "jfrog_cleanup_policy_enabled", kind="packages", policy="docker-keep-last-10") == 1


async def test_exposition_passes_promtool(sim) -> None:
    promtool = ensure_prometheus()
    targets = []
    for scenario in ("maintenance", "maintenance-pud-never-run", "maintenance-pud-error", "workers"):
        url, _ = await sim.start(scenario)
        targets.append(make_target(url, name=scenario, collectors={"workers": {"probe_worker": "exporter-probe"}}))
    engine = Engine(targets, only=["maintenance", "workers"])
    try:
        outcomes = await engine.run_all_once()
        assert engine.store.payload is not None
        text = engine.store.payload.text
    finally:
        await engine.shutdown()
    assert set(outcomes) == {Outcome.SUCCESS}
    check = await asyncio.to_thread(subprocess.run, [str(promtool), "check", "metrics"], input=text,
                                    capture_output=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b"jfrog_pud_status" in text and b"jfrog_worker_executions_total" in text


def endpoint_values(samples: Samples, name: str) -> dict[str, float]:
    return {s["endpoint"]: v for s in series(samples, name, collector="maintenance")
            if (v := value(samples, name, collector="maintenance", endpoint=s["endpoint"])) is not None}


async def test_one_endpoint_fails_the_others_stay_current(sim) -> None:
    url, state = await sim.start("maintenance")
    data = area_of(state)
    engine = Engine([make_target(url, retries=0)], only=["maintenance"])
    try:
        outcome, before = await run(engine)
        assert outcome is Outcome.SUCCESS
        assert value(before, "jfrog_archive_policy_last_execution_status", policy="archive-docker",
                     status="in_progress") == 1
        # The JPD moves on while the archive executions answer JSON of the wrong type.
        assert data.pud is not None
        data.pud.directories_done = 200
        data.retention_enabled = False
        data.archive_executions = []
        state.faults.append(Fault.parse(f"{ARCHIVE_EXECUTIONS}=wrong_type"))
        await asyncio.sleep(0.01)  # the second run's timestamps must differ from the first's
        outcome, after = await run(engine)
    finally:
        await engine.shutdown()
    assert outcome is Outcome.BAD_RESPONSE
    up = endpoint_values(after, "jfrog_exporter_endpoint_up")
    assert up == {PRUNE_STATUS: 1, PACKAGE_POLICIES: 1, BUNDLE_POLICIES: 1, TASKS: 1, ARCHIVE_EXECUTIONS: 0,
                  RETENTION_ENABLED: 1}
    first = endpoint_values(before, "jfrog_exporter_endpoint_last_success_timestamp_seconds")
    second = endpoint_values(after, "jfrog_exporter_endpoint_last_success_timestamp_seconds")
    assert second[ARCHIVE_EXECUTIONS] == first[ARCHIVE_EXECUTIONS]
    assert all(second[e] > first[e] for e in up if e != ARCHIVE_EXECUTIONS)
    # The others are current...
    assert value(after, "jfrog_pud_directories_processed") == 200
    assert value(after, "jfrog_retention_service_enabled") == 0
    # ...and the failed part keeps its last good series.
    assert value(after, "jfrog_archive_policy_last_execution_status", policy="archive-docker",
                 status="in_progress") == 1
    assert value(after, "jfrog_exporter_collector_success", collector="maintenance") == 0
    reason = engine.store.run("sim", "maintenance").reason
    assert ARCHIVE_EXECUTIONS in reason and "unexpected shape" in reason
