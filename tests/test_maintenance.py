"""Collector `maintenance`: PUD, cleanup policies, background tasks, archive policies, retention.

Parsers run on the documented samples (jfrog-rest-apis.txt, made well-formed,
in tests/payloads/maintenance); the collector runs over HTTP against the
simulator's maintenance scenarios.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.client import ApiResult, CollectionError, Outcome
from exporter.collectors.maintenance import (
    NEVER_RUN,
    PRUNE_STATUS,
    is_never_run,
    merge_policy_detail,
    parse_archive_executions,
    parse_background_tasks,
    parse_cleanup_policies,
    parse_cleanup_policy,
    parse_progress,
    parse_pud_status,
    parse_retention_enabled,
    pud_families,
    pud_from_result,
    task_families,
)
from exporter.metrics import MetricSet
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from exporter.simulator.maintenance_data import MaintenanceArea
from tests.conftest import make_target
from tests.support import REPO, Samples, ensure_prometheus, parse_exposition, series, value

PAYLOADS = REPO / "tests" / "payloads" / "maintenance"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def family_samples(metrics: MetricSet) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in metrics.families() for s in f.samples}


# -- PUD (2.3.3.2, line 3170) ---------------------------------------------------------------------
def test_pud_documented_running_sample() -> None:
    # jfrog-rest-apis.txt lines 3198-3230: "Here is a sample response, if the PUD process ran at least once".
    pud = parse_pud_status(load("pud-status-running.json"))
    assert pud.status == "running"
    assert pud.dry_run is True
    assert pud.started == pytest.approx(1692862063.727)
    assert pud.last_updated == pytest.approx(1692862349.131)
    assert pud.duration == pytest.approx(285.404)
    assert (pud.directories_processed, pud.directories) == (2, 256)
    assert (pud.binaries_processed, pud.binaries_cleaned, pud.bytes_cleaned) == (2, 0, 0)
    assert pud.error is None
    assert pud.last_directory is not None
    assert pud.last_directory.name == "01"
    assert pud.last_directory.status == "finished"
    assert pud.last_directory.binaries_processed == 1
    assert pud.last_directory.started == pytest.approx(1692862347.041)


def test_pud_412_means_never_run() -> None:
    # Lines 3186-3194: HTTP/1.1 412 Precondition Failed {"info": "No Prune task found"}.
    body = load("pud-status-never-run.json")
    assert is_never_run(body)
    assert pud_from_result(ApiResult(PRUNE_STATUS, Outcome.SUCCESS, 412, body)) == NEVER_RUN
    # The same words as plain text (a JSON body was expected): still never run.
    text = ApiResult(PRUNE_STATUS, Outcome.BAD_RESPONSE, 412, "No Prune task found", "expected JSON")
    assert pud_from_result(text) == NEVER_RUN


def test_pud_other_412_is_a_bad_response() -> None:
    other = ApiResult(PRUNE_STATUS, Outcome.SUCCESS, 412, {"info": "Pruning Unreferenced Data task cannot be started"})
    with pytest.raises(CollectionError) as caught:
        pud_from_result(other)
    assert caught.value.outcome is Outcome.BAD_RESPONSE
    assert "412" in caught.value.reason


def test_pud_absent_endpoint_is_unsupported_not_never_run() -> None:
    assert pud_from_result(ApiResult(PRUNE_STATUS, Outcome.UNSUPPORTED, 404, "")) is None


def test_pud_error_element() -> None:
    pud = parse_pud_status({"status": "error", "dryRun": False, "error": "Failed to read directory 0b"})
    assert pud.status == "error"
    assert pud.error == "Failed to read directory 0b"
    nested = parse_pud_status({"status": "error", "error": {"message": "Access Denied"}})
    assert nested.error == "Access Denied"


def test_pud_without_times_prefers_nothing_over_guesses() -> None:
    pud = parse_pud_status({"status": "finished", "progress": "256 of 256"})
    assert pud.started is None and pud.last_updated is None and pud.dry_run is None
    assert pud.binaries_processed is None


def test_pud_iso_times_are_read_when_millis_are_missing() -> None:
    pud = parse_pud_status({"status": "stopped", "timing": {"startedAt": "2023-08-24T10:27:43"}})
    assert pud.started == datetime(2023, 8, 24, 10, 27, 43, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("text", "expected"), [
    ("2 of 256", (2, 256)),
    ("1,024 of 4,096", (1024, 4096)),
    ("7/256", (7, 256)),
    ("", (None, None)),
    ("halfway", (None, None)),
    (None, (None, None)),
])
def test_progress(text: object, expected: tuple[float | None, float | None]) -> None:
    assert parse_progress(text) == expected


def test_pud_unknown_status_is_reported_as_unknown() -> None:
    metrics = MetricSet("t")
    pud_families(parse_pud_status({"status": "paused"}), metrics)
    samples = family_samples(metrics)
    assert samples[("jfrog_pud_status", frozenset({("target", "t"), ("status", "unknown")}))] == 1
    assert samples[("jfrog_pud_status", frozenset({("target", "t"), ("status", "running")}))] == 0


@pytest.mark.parametrize("body", ["unexpected", [], {"info": "no status"}])
def test_pud_wrong_shape(body: object) -> None:
    with pytest.raises(ValueError):
        parse_pud_status(body)


# -- cleanup policies (2.7.1.4 line 9928, 2.7.2.4 line 10554) ----------------------------------------
def test_package_policies_documented_sample() -> None:
    # 2.7.1.4 sample response (lines 9950-10020), trailing commas removed.
    policies = {p.key: p for p in parse_cleanup_policies(load("package-policies.json"), "packages")}
    assert set(policies) == {"key1", "key2"}
    key1, key2 = policies["key1"], policies["key2"]
    assert key1.kind == "packages"
    assert key1.enabled is False
    assert key1.cron == "0 15 10 * * ? 2024"
    assert key1.max_duration == 150 * 60
    assert key1.scheduled
    # key2 has no cronExp: it only runs when triggered by hand.
    assert key2.cron is None and not key2.scheduled
    assert key2.max_duration == 150 * 60


def test_bundle_policies_documented_sample() -> None:
    # 2.7.2.4 sample response (lines 10576-10606): {"policies": [...]}, keyed by policyKey.
    policies = {p.key: p for p in parse_cleanup_policies(load("bundle-policies.json"), "bundles")}
    assert set(policies) == {"key1", "key2", "test"}
    assert policies["key2"].enabled is False
    assert policies["key2"].next_run == 1736849700.0
    assert policies["key2"].scheduled
    test = policies["test"]
    assert test.enabled is True
    assert not test.scheduled  # no next run time: nothing will start it
    assert test.last_run_status == "completed"
    assert test.last_run_time == pytest.approx(1736760175.046)
    assert test.last_run_items == 0
    assert test.last_run_dry_run is False
    # The list carries no duration: the single policy is needed for it.
    assert not policies["key1"].detailed and policies["key1"].max_duration is None


def test_single_bundle_policy_fills_in_duration_and_schedule() -> None:
    # 2.7.2.5 sample response (lines 10662-10685).
    listed = {p.key: p for p in parse_cleanup_policies(load("bundle-policies.json"), "bundles")}["key1"]
    detail = parse_cleanup_policy(load("bundle-policy.json"), "bundles")
    assert detail is not None
    merged = merge_policy_detail(listed, detail)
    assert merged.max_duration == 150 * 60
    assert merged.cron == "0 15 10 * * ? 2025"
    assert merged.next_run == 1736849700.0
    assert merged.enabled is True


def test_cleanup_policies_wrong_shape() -> None:
    with pytest.raises(ValueError):
        parse_cleanup_policies("unexpected", "packages")
    with pytest.raises(ValueError):
        parse_cleanup_policies([1, 2], "packages")


def test_cleanup_policy_zero_duration_means_unlimited() -> None:
    [policy] = parse_cleanup_policies([{"key": "k", "enabled": "true", "durationInMinutes": 0}], "packages")
    assert policy.enabled is True
    assert policy.max_duration is None


# -- background tasks (2.3.32, line 4544) ----------------------------------------------------------
def test_background_tasks_documented_sample() -> None:
    # Lines 4558-4585, with the missing comma and braces restored.
    tasks = parse_background_tasks(load("tasks.json"))
    assert [(t.task_type, t.state) for t in tasks] == [
        ("GemsVirtualIndexHandler$UpdateIndicesJob", "scheduled"),
        ("VirtualCacheCleanupJob", "scheduled"),
        ("BinaryStoreGarbageCollectorJob", "running"),
    ]
    gc = tasks[2]
    assert gc.is_gc and gc.node_id == "artifactory-primary"
    assert gc.started == datetime(2015, 5, 15, 13, 39, 37, 566000, tzinfo=UTC).timestamp()
    assert tasks[0].started is None


def test_background_task_families() -> None:
    tasks = parse_background_tasks(load("tasks.json"))
    started = datetime(2015, 5, 15, 13, 39, 37, 566000, tzinfo=UTC).timestamp()
    metrics = MetricSet("t")
    task_families(tasks, metrics, now=started + 90)
    samples = family_samples(metrics)

    def get(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset({("target", "t"), *labels.items()})))

    assert get("jfrog_background_tasks", task_type="BinaryStoreGarbageCollectorJob", state="running") == 1
    assert get("jfrog_background_tasks", task_type="BinaryStoreGarbageCollectorJob", state="scheduled") == 0
    assert get("jfrog_background_tasks", task_type="VirtualCacheCleanupJob", state="scheduled") == 1
    assert get("jfrog_gc_running") == 1
    assert get("jfrog_background_task_oldest_running_seconds",
               task_type="BinaryStoreGarbageCollectorJob") == pytest.approx(90)
    assert get("jfrog_background_task_oldest_running_started_timestamp_seconds",
               task_type="BinaryStoreGarbageCollectorJob") == pytest.approx(started)
    assert get("jfrog_background_task_oldest_running_seconds", task_type="VirtualCacheCleanupJob") is None


def test_no_gc_running_when_gc_is_only_scheduled() -> None:
    tasks = parse_background_tasks({"tasks": [{"type": "a.b.BinaryStoreGarbageCollectorJob", "state": "scheduled"}]})
    metrics = MetricSet("t")
    task_families(tasks, metrics, now=0)
    assert family_samples(metrics)[("jfrog_gc_running", frozenset({("target", "t")}))] == 0


def test_background_tasks_wrong_shape() -> None:
    with pytest.raises(ValueError):
        parse_background_tasks("unexpected")
    with pytest.raises(ValueError):
        parse_background_tasks({"tasks": ["x"]})


# -- archive policies (2.6.17, line 9539) and retention (2.16.1, line 17746) -------------------------
def test_archive_documented_sample() -> None:
    # Lines 9580-9610, made well-formed. The sample has no policyKey; both entries belong to the same
    # (unnamed) policy, and the newer start wins.
    [latest] = parse_archive_executions(load("archive-executions.json"))
    assert latest.policy == ""
    assert latest.state == "complete"
    assert latest.started == pytest.approx(1623767238.129)
    assert latest.finished == pytest.approx(1623767238.985)
    assert latest.bytes_total == 884964 and latest.bytes_failed == 0
    assert latest.progress_ratio == 1.0
    assert latest.artifacts_total is None  # that entry counts workflows, not artifacts


def test_archive_field_spellings_and_latest_per_policy() -> None:
    executions = parse_archive_executions([
        {"policyKey": "p1", "lastRunStatus": "FAILED", "startTime": 2000, "completedNumberofArtifacts": 3,
         "failedNumberOfArtifacts": 2, "totalNumberOfArtifacts": 5},
        {"policyKey": "p1", "state": "COMPLETE", "startTime": 1000},
        {"policyKey": "p2", "state": "IN_PROGRESS", "startTime": 1500, "progressPercentage": 40},
    ])
    by_policy = {e.policy: e for e in executions}
    assert by_policy["p1"].state == "failed"
    assert (by_policy["p1"].artifacts_completed, by_policy["p1"].artifacts_failed) == (3, 2)
    assert by_policy["p2"].progress_ratio == pytest.approx(0.4)


def test_retention_sample() -> None:
    # Line 17764: {"enable": true|false}.
    assert parse_retention_enabled(load("retention-enable.json")) is True
    assert parse_retention_enabled({"enable": False}) is False
    with pytest.raises(ValueError):
        parse_retention_enabled("unexpected")


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
