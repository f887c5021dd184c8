"""Collector `maintenance`: parsers on the documented samples (jfrog-rest-apis.txt, made well-formed, in
tests/payloads/maintenance), the families built from them, and the bundle-policy chain over a mock transport."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from exporter.client import ApiResult, JfrogClient
from exporter.collectors.base import Run
from exporter.collectors.maintenance import (
    BUNDLE_POLICIES,
    NEVER_RUN,
    PRUNE_STATUS,
    MaintenanceCollector,
    archive_families,
    cleanup_families,
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
    with_detail,
)
from exporter.families import Emitter
from exporter.outcomes import CollectionError, Outcome
from tests.conftest import make_target
from tests.support import Samples, documented, emitted, jfrog_platform


def load(name: str) -> Any:
    return documented("maintenance", name)


def getter(samples: Samples) -> Callable[..., float | None]:
    def get(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset({("target", "t"), *labels.items()})))

    return get


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
    (", of ,", (None, None)),  # separators without digits: no progress, not a failed part
])
def test_progress(text: object, expected: tuple[float | None, float | None]) -> None:
    assert parse_progress(text) == expected


def test_pud_unknown_status_is_reported_as_unknown() -> None:
    out = Emitter("t")
    pud_families(parse_pud_status({"status": "paused"}), out)
    samples = emitted(out)
    assert samples[("jfrog_pud_status", frozenset({("target", "t"), ("status", "unknown")}))] == 1
    assert samples[("jfrog_pud_status", frozenset({("target", "t"), ("status", "running")}))] == 0


def test_pud_families_of_the_documented_sample() -> None:
    out = Emitter("t")
    pud_families(parse_pud_status(load("pud-status-running.json")), out)
    get = getter(emitted(out))
    assert get("jfrog_pud_status", status="running") == 1
    assert get("jfrog_pud_status", status="never_run") == 0
    assert get("jfrog_pud_dry_run") == 1
    assert get("jfrog_pud_directories_processed") == 2
    assert get("jfrog_pud_directories") == 256
    assert get("jfrog_pud_duration_seconds") == pytest.approx(285.404)
    assert get("jfrog_pud_last_directory_binaries_processed") == 1


def test_never_run_has_only_the_state_and_keeps_the_help() -> None:
    out = Emitter("t")
    pud_families(NEVER_RUN, out)
    families = {f.name: f for f in out.families()}
    assert [s.labels["status"] for s in families["jfrog_pud_status"].samples if s.value == 1] == ["never_run"]
    # No value, no series; the family still shows its HELP.
    assert families["jfrog_pud_dry_run"].samples == []
    assert families["jfrog_pud_directories"].documentation


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


def test_with_detail_keeps_the_listed_policy_without_an_answer() -> None:
    listed = {p.key: p for p in parse_cleanup_policies(load("bundle-policies.json"), "bundles")}["key1"]
    assert with_detail(listed, None) is listed
    answer = ApiResult("/artifactory/api/cleanup/bundles/policies/{policy}", Outcome.SUCCESS, 200,
                       load("bundle-policy.json"))
    assert with_detail(listed, answer).max_duration == 150 * 60
    with pytest.raises(CollectionError) as caught:
        with_detail(listed, ApiResult(answer.endpoint, Outcome.SUCCESS, 200, "unexpected"))
    assert caught.value.outcome is Outcome.BAD_RESPONSE


def test_cleanup_policies_wrong_shape() -> None:
    with pytest.raises(ValueError):
        parse_cleanup_policies("unexpected", "packages")
    with pytest.raises(ValueError):
        parse_cleanup_policies([1, 2], "packages")


def test_cleanup_policy_zero_duration_means_unlimited() -> None:
    [policy] = parse_cleanup_policies([{"key": "k", "enabled": "true", "durationInMinutes": 0}], "packages")
    assert policy.enabled is True
    assert policy.max_duration is None


def test_cleanup_families() -> None:
    out = Emitter("t")
    cleanup_families(parse_cleanup_policies(load("bundle-policies.json"), "bundles"), out)
    get = getter(emitted(out))
    assert get("jfrog_cleanup_policy_enabled", kind="bundles", policy="test") == 1
    assert get("jfrog_cleanup_policy_enabled", kind="bundles", policy="key2") == 0
    assert get("jfrog_cleanup_policy_scheduled", kind="bundles", policy="test") == 0
    assert get("jfrog_cleanup_policy_next_run_timestamp_seconds", kind="bundles", policy="key2") == 1736849700.0
    assert get("jfrog_cleanup_policy_last_run_info", kind="bundles", policy="test", status="completed") == 1
    assert get("jfrog_cleanup_policy_last_run_items", kind="bundles", policy="test") == 0
    # Unlimited (or not reported): no series rather than a zero.
    assert get("jfrog_cleanup_policy_max_duration_seconds", kind="bundles", policy="key1") is None


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
    out = Emitter("t")
    task_families(tasks, out, now=started + 90)
    get = getter(emitted(out))
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
    out = Emitter("t")
    task_families(tasks, out, now=0)
    assert emitted(out)[("jfrog_gc_running", frozenset({("target", "t")}))] == 0


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


def test_archive_families() -> None:
    out = Emitter("t")
    archive_families(parse_archive_executions([
        {"policyKey": "p1", "lastRunStatus": "FAILED", "startTime": 2000, "completedNumberofArtifacts": 3,
         "failedNumberOfArtifacts": 2, "totalNumberOfArtifacts": 5},
        {"policyKey": "p2", "state": "PAUSED"},
    ]), out)
    get = getter(emitted(out))
    assert get("jfrog_archive_policy_last_execution_status", policy="p1", status="failed") == 1
    assert get("jfrog_archive_policy_last_execution_status", policy="p1", status="complete") == 0
    assert get("jfrog_archive_policy_last_execution_artifacts", policy="p1", result="failed") == 2
    assert get("jfrog_archive_policy_last_execution_artifacts", policy="p1", result="total") == 5
    assert get("jfrog_archive_policy_last_execution_bytes", policy="p1", result="total") is None
    # An undocumented state is reported, as unknown.
    assert get("jfrog_archive_policy_last_execution_status", policy="p2", status="unknown") == 1


def test_archive_executions_wrong_shape() -> None:
    with pytest.raises(ValueError):
        parse_archive_executions("unexpected")
    with pytest.raises(ValueError):
        parse_archive_executions({"other": 1})
    with pytest.raises(ValueError):
        parse_archive_executions([1])


def test_retention_sample() -> None:
    # Line 17764: {"enable": true|false}.
    assert parse_retention_enabled(load("retention-enable.json")) is True
    assert parse_retention_enabled({"enable": False}) is False
    with pytest.raises(ValueError):
        parse_retention_enabled("unexpected")


# -- the bundle policies chain over a mock transport ----------------------------------------------------
def bundles_jpd(detail_status: dict[str, int], in_flight: list[int]) -> httpx.MockTransport:
    """A JPD with 12 bundle policies listed without details, and none of the other maintenance endpoints.

    Each detail answers ``detail_status`` (or 200); ``in_flight`` holds the detail calls in flight now
    and at most.
    """
    keys = [f"rb-{i}" for i in range(12)]

    async def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == BUNDLE_POLICIES:
            return httpx.Response(200, json={"policies": [{"policyKey": k, "enabled": True} for k in keys]})
        if not path.startswith(BUNDLE_POLICIES + "/"):
            return httpx.Response(404, json={"errors": [{"status": 404, "message": "File not found."}]})
        key = path.rsplit("/", 1)[-1]
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            await asyncio.sleep(0.01)
        finally:
            in_flight[0] -= 1
        status = detail_status.get(key, 200)
        if status != 200:
            return httpx.Response(status, json={"errors": [{"status": status, "message": "no"}]})
        return httpx.Response(200, json={"key": key, "cronExp": "0 0 1 * * ?", "durationInMinutes": 10,
                                         "enabled": True})

    return jfrog_platform(handler)


async def run_bundles(detail_status: dict[str, int]) -> tuple[Run, list[int]]:
    target = make_target("http://jpd.invalid", name="t", retries=0, max_concurrency=3)
    in_flight = [0, 0]
    client = JfrogClient(target, transport=bundles_jpd(detail_status, in_flight))
    collector = MaintenanceCollector(target, target.collector_settings("maintenance"))
    run = Run(target, client, "maintenance")
    try:
        await collector.collect(run)
    finally:
        await client.aclose()
    return run, in_flight


async def test_bundle_policy_details_are_read_with_the_target_concurrency() -> None:
    # rb-3 was deleted since the list was read: kept as listed.
    run, in_flight = await run_bundles({"rb-3": 404})
    result = run.parts[BUNDLE_POLICIES]
    assert result.outcome is Outcome.SUCCESS
    assert 1 < in_flight[1] <= 3  # read side by side, within the target's max_concurrency
    assert result.families is not None
    get = getter({(s.name, frozenset(s.labels.items())): s.value for f in result.families for s in f.samples})
    assert get("jfrog_cleanup_policy_max_duration_seconds", kind="bundles", policy="rb-0") == 600
    assert get("jfrog_cleanup_policy_scheduled", kind="bundles", policy="rb-11") == 1
    assert get("jfrog_cleanup_policy_scheduled", kind="bundles", policy="rb-3") == 0
    assert get("jfrog_cleanup_policy_enabled", kind="bundles", policy="rb-3") == 1
    # The other endpoints are missing on this JPD: unsupported, not failed.
    assert {p.outcome for e, p in run.parts.items() if e != BUNDLE_POLICIES} == {Outcome.UNSUPPORTED}


async def test_failed_bundle_policy_details_fail_the_part_by_the_one_rule() -> None:
    run, _ = await run_bundles({"rb-2": 500, "rb-7": 403})
    result = run.parts[BUNDLE_POLICIES]
    assert result.outcome is Outcome.FORBIDDEN  # the worst of the two
    assert result.families is None  # the last good data stays
    assert result.reason.startswith("2 of 12 calls failed; first: ")
    assert "/artifactory/api/cleanup/bundles/policies/{policy} for rb-7" in result.reason
