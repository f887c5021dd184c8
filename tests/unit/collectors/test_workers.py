"""Collector `workers`: parsers on the documented samples, exactly-once counting of the execution history
across polls and restarts, the families built from it, and the history calls over a mock transport."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest

from exporter.client import JfrogClient
from exporter.collectors.base import Run
from exporter.collectors.workers import (
    HISTORY,
    MAX_SEEN,
    WORKERS,
    Execution,
    ProbeResult,
    Worker,
    WorkerHistory,
    WorkersCollector,
    WorkersSettings,
    history_families,
    normalise_status,
    parse_execute,
    parse_execution,
    parse_history,
    parse_workers,
    probe_families,
    worker_families,
)
from exporter.families import Emitter
from exporter.outcomes import Outcome
from tests.conftest import make_target
from tests.support import Samples, documented, emitted


def load(name: str) -> Any:
    return documented("workers", name)


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({("target", "t"), *labels.items()})))


# -- parsers ---------------------------------------------------------------------------------------
def test_workers_list_camel_case_as_the_server_sends_it() -> None:
    workers = parse_workers(load("workers-camel.json"))
    assert [(w.key, w.enabled, w.action) for w in workers] == [
        ("block-risky-downloads", True, "BEFORE_DOWNLOAD"),
        ("my-worker", False, "GENERIC_EVENT"),  # action as {"name": ...}
    ]
    # Only key, enabled and action are kept: no source code, no secret.
    assert "camel-S3cret-value" not in repr(workers) and "camel-Src-t0ken" not in repr(workers)


def test_workers_list_snake_case_as_the_openapi_text_spells_it() -> None:
    # workers-rest-api.openapi.txt, components.schemas.Worker.
    [worker] = parse_workers(load("workers-snake.json"))
    assert (worker.key, worker.enabled, worker.action) == ("tag-uploads", True, "BEFORE_UPLOAD")
    assert "snake-S3cret-value" not in repr(worker) and "snake-Src-t0ken" not in repr(worker)


def test_workers_list_wrong_shape() -> None:
    with pytest.raises(ValueError):
        parse_workers("unexpected")
    with pytest.raises(ValueError):
        parse_workers({"workers": ["x"]})


def test_history_entry_from_the_rerun_parameter_table() -> None:
    # workers-rerun-and-history.txt, "Response Parameters": workerKey, workerType, executionStatus,
    # executionPayload, executionResult.{result,logs,workerStats.*}, startTimeMillis, endTimeMillis, triggeredBy.
    entry = load("history-entry.json")
    run = parse_execution(entry)
    assert run.status == "success"
    assert run.started == pytest.approx(1736760170.0)
    assert run.ended == pytest.approx(1736760175.538)
    assert run.duration == pytest.approx(5.538)
    assert run.order == run.ended
    assert run.usage == {}  # no executionLimits in this entry
    assert not run.test_run
    # Without an id field the identity is stable and depends on when and how the run went.
    assert parse_execution(dict(entry)).id == run.id
    assert parse_execution({**entry, "endTimeMillis": 1736760175539}).id != run.id


def test_rerun_response_sample_reports_limits() -> None:
    # workers-rerun-and-history.txt "Sample Response": executionMetrics next to executionLimits.
    run = parse_execution(load("rerun-response.json"))
    assert run.id == "A038f4199-11e3-4757-9189-6801d5c85fd3"
    assert run.status == "success"
    assert run.duration == pytest.approx(5.538)
    assert run.usage == pytest.approx({"cpu": 20 / 1000, "memory": 19169280 / 125829120, "duration": 5538 / 6000})


def test_limits_inside_the_execution_result_and_the_documented_typo() -> None:
    # The table spells one field "executionResult.workersStats.topMemoryUsageBytes".
    run = parse_execution({
        "id": "e1", "executionStatus": "STATUS_FAIL", "startTimeMillis": 1000, "endTimeMillis": 3000,
        "executionResult": {"workersStats": {"topMemoryUsageBytes": 50, "cpuTimeMillis": 10},
                            "executionLimits": {"maxMemoryUsageBytes": 200, "maxCpuTimeMillis": 0}},
    })
    assert run.status == "fail"
    assert run.usage == {"memory": 0.25}  # a zero limit is no limit
    assert run.duration == pytest.approx(2.0)


def test_history_shapes() -> None:
    entry = load("history-entry.json")
    assert len(parse_history([entry, entry])) == 2
    assert len(parse_history({"entries": [entry]})) == 1
    with pytest.raises(ValueError):
        parse_history("unexpected")
    with pytest.raises(ValueError):
        parse_history([1])


def test_execute_samples() -> None:
    # workers-execute.txt, Sample Response 1 and 2.
    assert parse_execute(load("execute-response-1.json"))
    assert parse_execute(load("execute-response-2.json"))
    assert not parse_execute({"executionStatus": "STATUS_FAIL"})
    assert not parse_execute("unexpected")


@pytest.mark.parametrize(("raw", "expected"), [
    ("STATUS_SUCCESS", "success"), ("STATUS_FAIL", "fail"), ("STATUS_STOP", "stop"), ("status_ok", "ok"),
    # Undocumented statuses share one series: a JPD inventing one per entry cannot grow the exposition.
    ("Timeout", "unknown"), ("STATUS_NEW_4711", "unknown"), ("", "unknown"), (None, "unknown"),
])
def test_status_label(raw: object, expected: str) -> None:
    assert normalise_status(raw) == expected


# -- exactly-once counting, pure ---------------------------------------------------------------------
def run_at(ident: str, end: float, status: str = "success", test_run: bool = False) -> Execution:
    return Execution(ident, status, end - 0.1, end, 0.1, test_run=test_run)


def test_first_sight_counts_nothing_then_each_new_entry_once() -> None:
    history = WorkerHistory()
    window1 = [run_at(f"e{i}", 100.0 + i) for i in range(5)]
    assert history.observe(window1) == []
    assert sum(history.counts.values()) == 0
    # Overlapping window: e3, e4 again plus two new.
    window2 = [*window1[3:], run_at("e5", 105.0), run_at("e6", 106.0, "fail")]
    assert [e.id for e in history.observe(window2)] == ["e5", "e6"]
    # The same window again counts nothing.
    assert history.observe(window2) == []
    assert history.counts == {"success": 1, "fail": 1}
    assert history.durations.cumulative()[-1] == 2


def test_old_entries_never_count_even_if_they_reappear() -> None:
    history = WorkerHistory()
    history.observe([run_at("a", 10.0), run_at("b", 20.0)])
    history.observe([run_at("b", 20.0), run_at("c", 30.0)])
    assert history.counts["success"] == 1
    # The window moves on; "a" (before the floor) and "c" (remembered) come back: neither counts.
    assert history.observe([run_at("a", 10.0), run_at("c", 30.0), run_at("d", 40.0)]) == [run_at("d", 40.0)]
    assert history.counts["success"] == 2


def test_run_that_ends_after_the_newest_is_counted_even_if_it_started_earlier() -> None:
    history = WorkerHistory()
    history.observe([run_at("short", 50.0)])
    long_run = Execution("long", "success", 10.0, 55.0, 45.0)
    assert history.observe([run_at("short", 50.0), long_run]) == [long_run]


def test_test_runs_are_not_counted() -> None:
    history = WorkerHistory()
    history.observe([run_at("a", 1.0)])
    assert history.observe([run_at("a", 1.0), run_at("t", 2.0, test_run=True)]) == []


def test_empty_first_window_counts_everything_later() -> None:
    history = WorkerHistory()
    history.observe([])
    assert len(history.observe([run_at("a", 1.0), run_at("b", 2.0)])) == 2


def test_memory_is_bounded() -> None:
    history = WorkerHistory()
    history.observe([])
    for start in range(0, 30_000, 1000):
        history.observe([run_at(f"e{i}", float(i)) for i in range(start, start + 1000)])
    assert len(history.seen) <= 1000
    # Entries without any time cannot be pruned by the floor, but are capped.
    untimed = [Execution(f"u{i}", "success", None, None, None) for i in range(MAX_SEEN + 50)]
    history.observe(untimed)
    assert len(history.seen) <= MAX_SEEN


# -- families ------------------------------------------------------------------------------------------
def test_worker_families() -> None:
    out = Emitter("t")
    worker_families([Worker("a", True, "BEFORE_DOWNLOAD"), Worker("b", False, "GENERIC_EVENT")], out)
    samples = emitted(out)
    assert get(samples, "jfrog_worker_enabled", worker="a", action="BEFORE_DOWNLOAD") == 1
    assert get(samples, "jfrog_worker_enabled", worker="b", action="GENERIC_EVENT") == 0


def test_history_families_only_for_listed_workers_seen_before() -> None:
    seen = WorkerHistory()
    seen.observe([run_at("a1", 10.0)])
    seen.observe([run_at("a1", 10.0), run_at("a2", 12.0, "fail"), run_at("a3", 13.0, "timeout")])
    deleted = WorkerHistory()
    deleted.observe([])
    histories = {"a": seen, "b": WorkerHistory(), "gone": deleted}
    out = Emitter("t")
    history_families([Worker("a", True, "GENERIC_EVENT"), Worker("b", True, "GENERIC_EVENT")], histories, out)
    samples = emitted(out)
    # Every counter starts with success and fail, so rate() sees their first increase.
    assert get(samples, "jfrog_worker_executions_total", worker="a", status="success") == 0
    assert get(samples, "jfrog_worker_executions_total", worker="a", status="fail") == 1
    assert get(samples, "jfrog_worker_executions_total", worker="a", status="timeout") == 1
    assert get(samples, "jfrog_worker_execution_duration_seconds_count", worker="a") == 2
    assert get(samples, "jfrog_worker_execution_duration_seconds_bucket", worker="a", le="0.1") == 2
    assert get(samples, "jfrog_worker_last_execution_timestamp_seconds", worker="a") == pytest.approx(12.9)
    # Not read yet, or no longer listed: no series.
    assert not [k for k in samples if dict(k[1]).get("worker") in ("b", "gone")]
    # The families show their HELP even without samples.
    assert {f.name for f in out.families()} == {"jfrog_worker_executions", "jfrog_worker_execution_duration_seconds",
                                                "jfrog_worker_last_execution_timestamp_seconds",
                                                "jfrog_worker_limit_usage_ratio"}


def test_limit_usage_of_the_newest_entry() -> None:
    rerun = parse_execution(load("rerun-response.json"))
    older = replace(rerun, id="older", ended=1.0, usage={"cpu": 0.5})
    history = WorkerHistory()
    # The rerun answer carries no times; as entries of a history they have them.
    history.observe([replace(rerun, ended=2.0), older])
    out = Emitter("t")
    history_families([Worker("my-worker", True, "GENERIC_EVENT")], {"my-worker": history}, out)
    samples = emitted(out)
    assert get(samples, "jfrog_worker_limit_usage_ratio", worker="my-worker", resource="cpu") == pytest.approx(0.02)
    assert get(samples, "jfrog_worker_limit_usage_ratio", worker="my-worker",
               resource="duration") == pytest.approx(5538 / 6000)
    assert get(samples, "jfrog_worker_last_execution_timestamp_seconds", worker="my-worker") == 2.0


def test_probe_families() -> None:
    out = Emitter("t")
    probe_families(ProbeResult("probe", False, 0.25, "executionStatus 'STATUS_FAIL'"), out)
    samples = emitted(out)
    assert get(samples, "jfrog_worker_probe_success", worker="probe") == 0
    assert get(samples, "jfrog_worker_probe_duration_seconds", worker="probe") == 0.25


# -- history calls over a mock transport -----------------------------------------------------------------
def workers_jpd(keys: list[str], failing: set[str], in_flight: list[int]) -> httpx.MockTransport:
    """A JPD listing ``keys``; the history of ``failing`` answers 500. ``in_flight``: history calls now, at most."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == WORKERS:
            return httpx.Response(200, json={"workers": [{"key": k, "enabled": True, "action": "GENERIC_EVENT"}
                                                         for k in keys]})
        assert request.url.path == HISTORY
        key = request.url.params["workerKey"]
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            await asyncio.sleep(0.01)
        finally:
            in_flight[0] -= 1
        if key in failing:
            return httpx.Response(500, json={"errors": [{"status": 500, "message": "boom"}]})
        return httpx.Response(200, json=[{"id": f"{key}-1", "executionStatus": "STATUS_SUCCESS",
                                          "startTimeMillis": 1000, "endTimeMillis": 2000}])

    return httpx.MockTransport(handler)


async def collect(keys: list[str], failing: set[str], **settings: Any) -> tuple[Run, list[int]]:
    target = make_target("http://jpd.invalid", name="t", retries=0, max_concurrency=8)
    in_flight = [0, 0]
    client = JfrogClient(target, transport=workers_jpd(keys, failing, in_flight))
    collector = WorkersCollector(target, WorkersSettings(**settings))
    run = Run(target, client, "workers")
    try:
        await collector.collect(run)
    finally:
        await client.aclose()
    return run, in_flight


async def test_history_concurrency_bounds_the_history_calls() -> None:
    run, in_flight = await collect([f"w{i}" for i in range(10)], set(), history_concurrency=2)
    assert in_flight[1] == 2  # below the target's max_concurrency of 8
    assert [(e, p.outcome) for e, p in run.parts.items()] == [(WORKERS, Outcome.SUCCESS), (HISTORY, Outcome.SUCCESS)]


async def test_a_failing_history_fails_the_part_by_the_one_rule_and_keeps_the_others_current() -> None:
    run, _ = await collect(["a", "b", "c"], {"b"})
    result = run.parts[HISTORY]
    assert result.outcome is Outcome.ERROR
    assert result.reason.startswith("1 of 3 calls failed; first: worker b: /worker/api/v1/execution_history: HTTP 500")
    # The counters are the exporter's own: still true, so they are published rather than the last run's.
    assert result.families is not None
    workers = {s.labels["worker"] for f in result.families for s in f.samples}
    assert workers == {"a", "c"}  # b was never read: nothing to show for it yet
