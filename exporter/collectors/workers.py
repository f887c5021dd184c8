"""Collector `workers`: JFrog Workers, their execution history and an optional synthetic probe.

``jfrog_worker_executions_total`` is built from the execution history, which
the JPD serves as a window of recent entries. Every entry is counted once:

* on first sight of a worker (also after the exporter restarts) nothing is
  counted; the newest entry's end time becomes the floor, so an old backlog
  never arrives as a burst;
* afterwards an entry counts when it ends at or after the floor and its id
  has not been seen; overlapping windows therefore never count twice;
* the floor then moves up to the oldest entry of the current window, and ids
  below it are forgotten: the memory stays bounded, and anything below the
  floor is ignored forever, so a forgotten id cannot be counted again.

Source code, secrets, payloads and logs of workers are never read into the
exporter's state.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from pydantic import Field

from exporter.client import ApiResult, one_line
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result, run_bounded
from exporter.collectors.refresh import Refresh
from exporter.families import DURATION_BUCKETS, UNKNOWN_STATE, Declarations, Emitter, Histogram, Permission
from exporter.outcomes import CollectionError, Outcome, combine
from exporter.validation import Interval, Timeout
from exporter.values import UnexpectedShape, parse_count, scalar_text

log = logging.getLogger(__name__)

F = Declarations("workers")
WORKERS = F.endpoint("/worker/api/v1/workers", Permission.ADMIN)
HISTORY = F.endpoint("/worker/api/v1/execution_history", Permission.ADMIN)
EXECUTE = F.endpoint("/worker/api/v1/execute/{worker}", Permission.ADMIN)

#: statuses every worker's counter shows from the start (so rate() sees the first increase)
BASE_STATUSES = ("success", "fail")
RESOURCES = ("cpu", "memory", "duration")
#: (stat field, limit field) per resource, as in the rerun document's sample
_USAGE_FIELDS = {
    "cpu": ("cpuTimeMillis", "maxCpuTimeMillis"),
    "memory": ("topMemoryUsageBytes", "maxMemoryUsageBytes"),
    "duration": ("executionDurationMillis", "maxExecutionDurationMillis"),
}
_ID_FIELDS = ("id", "historyEntryId", "executionId", "entryId", "traceId")
#: ids remembered per worker at most, whatever the history looks like
MAX_SEEN = 10_000

ENABLED = F.gauge("jfrog_worker_enabled", "1 if the worker is enabled (action: the event it is hooked on).",
                  "worker", "action")
EXECUTIONS = F.counter("jfrog_worker_executions", "Worker executions by status, each history entry counted once "
                                                  "(from the first poll on; older entries are not counted).",
                       "worker", "status")
EXECUTION_DURATION = F.histogram("jfrog_worker_execution_duration_seconds",
                                 "Duration of the worker executions counted in jfrog_worker_executions_total.",
                                 "worker")
LAST_EXECUTION = F.gauge("jfrog_worker_last_execution_timestamp_seconds",
                         "Start of the worker's newest execution in its history.", "worker")
LIMIT_USAGE = F.gauge("jfrog_worker_limit_usage_ratio",
                      "The newest execution's use of its limit (resource: cpu, memory, duration), "
                      "where the JPD reports limits.", "worker", "resource")
PROBE_SUCCESS = F.gauge("jfrog_worker_probe_success",
                        "1 if the synthetic probe execution of the GENERIC_EVENT worker returned STATUS_SUCCESS.",
                        "worker")
PROBE_DURATION = F.gauge("jfrog_worker_probe_duration_seconds",
                         "How long the synthetic probe execution took, as seen by the exporter.", "worker")


class WorkersSettings(CollectorSettings):
    #: key of a GENERIC_EVENT worker to execute each run as a synthetic probe
    probe_worker: str | None = None
    probe_timeout: Timeout = 10.0
    #: execution-history calls in flight at once
    history_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    #: a worker's history is read at least this often; busy workers as often as every run
    history_max_interval: Interval = 600.0


class WorkersCollector(Collector[WorkersSettings]):
    name = "workers"
    default_interval = 120.0
    description = "JFrog Workers: enabled, executions from the history, limits, optional synthetic probe"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.histories: dict[str, WorkerHistory] = {}
        self._probe_ok: bool | None = None
        #: per worker, how long its history window lasts at its pace (halved): the gap between two reads
        self._gaps: Refresh[str, float] = Refresh()

    async def collect(self, run: Run) -> None:
        # The probe first: its own execution then shows in this run's history.
        if self.settings.probe_worker:
            await run.part(EXECUTE, self._probe, self.settings.probe_worker)
        workers = await run.part(WORKERS, self._workers)
        if workers is None:
            run.skip(HISTORY, needs=WORKERS)
        else:
            await run.part(HISTORY, self._histories, workers)

    @staticmethod
    async def _workers(part: Part) -> list[Worker]:
        workers = parse_result(parse_workers, await part.get())
        worker_families(workers, part.out)
        return workers

    async def _histories(self, part: Part, workers: list[Worker]) -> None:
        keys = [w.key for w in workers]
        for gone in set(self.histories) - set(keys):
            del self.histories[gone]
        gaps = self._gaps

        def wanted(key: str) -> bool:
            return key in gaps.values() and gaps.waited(key, part.now, self.interval, gaps.values()[key])

        due = gaps.plan(keys, part.now, self.interval, self.settings.history_max_interval, wanted)
        jobs = [partial(self._history, part, key) for key in due]
        # history_concurrency, not the target's max_concurrency: hundreds of workers must not hold every
        # connection the other collectors of this JPD share (the client's limit still applies on top).
        failures = [f for f in await run_bounded(jobs, self.settings.history_concurrency) if f is not None]
        # Counters live in the exporter: those of a worker whose history failed are still true, only not
        # advanced, and the other workers are current.
        history_families(workers, self.histories, part.out)
        part.oldest_read = gaps.oldest()
        part.current_on_failure = True
        error = combine(failures, len(due))
        if error is not None:
            raise error

    async def _history(self, part: Part, key: str) -> tuple[str, Outcome, str] | None:
        """Count one worker's new entries; the failure, if its history could not be read."""
        result = await part.get(params={"workerKey": key})
        if result.unsupported:
            # Deleted since the list was read, or no history kept for it.
            self._gaps.update({key: self.settings.history_max_interval}, part.now)
            return None
        try:
            executions = parse_result(parse_history, result)
        except CollectionError as exc:
            return f"worker {key}", exc.outcome, exc.reason
        state = self.histories.setdefault(key, WorkerHistory())
        counted_before = len(state.seen)
        new = state.observe(executions)
        overflow = bool(new) and len(new) == len(executions) >= 2 and counted_before > 0
        if overflow and not state.window_overflow_warned:
            state.window_overflow_warned = True
            log.warning("worker=%s: every entry of the execution history was new; runs between two "
                        "polls may have been missed (collect workers more often)", key)
        gap = self.interval if overflow else read_gap(executions, self.interval, self.settings.history_max_interval)
        self._gaps.update({key: gap}, part.now)
        return None

    async def _probe(self, part: Part, key: str) -> None:
        # A failing probe is a measurement, not a failed part.
        probe_families(await self._execute(part, key), part.out)

    async def _execute(self, part: Part, key: str) -> ProbeResult:
        payload = {"source": "jfrog-exporter", "target": self.target.name, "sentAtMillis": int(time.time() * 1000)}
        timeout = self.settings.probe_timeout
        started = time.perf_counter()
        reason = ""
        try:
            result: ApiResult = await asyncio.wait_for(
                part.client.request("POST", EXECUTE, path={"worker": key}, json_body=payload), timeout=timeout)
            success = result.ok and parse_execute(result.body)
            if not result.ok:
                reason = result.reason
            elif not success:
                status = result.body.get("executionStatus") if isinstance(result.body, dict) else None
                reason = f"executionStatus {status!r}"
        except TimeoutError:
            success, reason = False, f"no answer within {timeout:g}s"
        duration = time.perf_counter() - started
        if success != self._probe_ok:
            if success:
                log.info("probe worker %s succeeds", key)
            else:
                log.warning("probe worker %s does not succeed: %s", key, one_line(reason))
            self._probe_ok = success
        return ProbeResult(key, success, duration, reason)


def read_gap(executions: list[Execution], interval: float, longest: float) -> float:
    """How long until a worker's history should be read again: half the time its window spans.

    The JPD keeps a window of recent entries; a worker that filled it in an hour can wait half an hour
    without an entry being missed. A quiet worker waits ``longest``, a busy one a run.
    """
    times = [e.order for e in executions if e.order is not None and not e.test_run]
    if len(times) < 2:
        return longest
    return min(longest, max(interval, (max(times) - min(times)) / 2))


def worker_families(workers: list[Worker], out: Emitter) -> None:
    out.touch(ENABLED)
    for worker in workers:
        out.gauge(ENABLED, worker.enabled, worker=worker.key, action=worker.action)


def history_families(workers: list[Worker], histories: dict[str, WorkerHistory], out: Emitter) -> None:
    """What the exporter counted for each listed worker; nothing for a worker not read yet."""
    out.touch(EXECUTIONS, EXECUTION_DURATION, LAST_EXECUTION, LIMIT_USAGE)
    for worker in workers:
        state = histories.get(worker.key)
        if state is None or not state.initialised:
            continue
        for status, count in sorted(state.counts.items()):
            out.counter(EXECUTIONS, count, worker=worker.key, status=status)
        hist = state.durations
        out.histogram(EXECUTION_DURATION, hist.buckets, hist.cumulative(), hist.total, worker=worker.key)
        out.gauge(LAST_EXECUTION, state.last_execution, worker=worker.key)
        for resource in RESOURCES:
            if resource in state.usage:
                out.gauge(LIMIT_USAGE, state.usage[resource], worker=worker.key, resource=resource)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    worker: str
    success: bool
    duration: float
    reason: str = ""


def probe_families(probe: ProbeResult, out: Emitter) -> None:
    out.gauge(PROBE_SUCCESS, probe.success, worker=probe.worker)
    out.gauge(PROBE_DURATION, probe.duration, worker=probe.worker)


# -- counting ------------------------------------------------------------------------------------


@dataclass
class WorkerHistory:
    """What the exporter remembers of one worker's history between polls."""

    #: entries ending before this (epoch seconds) are never counted; None: nothing seen yet
    floor: float | None = None
    initialised: bool = False
    #: ids handled (counted, or present at first sight), with their order time
    seen: dict[str, float | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BASE_STATUSES, 0))
    durations: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    last_execution: float | None = None
    usage: dict[str, float] = field(default_factory=dict)
    usage_time: float | None = None
    window_overflow_warned: bool = False

    def observe(self, executions: Iterable[Execution]) -> list[Execution]:
        """Take one poll's window; returns the entries counted now."""
        runs = [e for e in executions if not e.test_run]
        self._track_last(runs)
        if not self.initialised:
            # First sight (or a restarted exporter): the backlog is history, not news.
            self.initialised = True
            orders = [e.order for e in runs if e.order is not None]
            self.floor = max(orders) if orders else None
            for e in runs:
                self.seen[e.id] = e.order
            self._prune(runs)
            return []
        new = [e for e in runs if e.id not in self.seen and
               (self.floor is None or e.order is None or e.order >= self.floor)]
        for e in new:
            self.seen[e.id] = e.order
            self.counts[e.status] = self.counts.get(e.status, 0) + 1
            if e.duration is not None:
                self.durations.observe(e.duration)
        self._prune(runs)
        return new

    def _track_last(self, runs: list[Execution]) -> None:
        timed = [e for e in runs if e.order is not None]
        if not timed:
            return
        newest = max(timed, key=lambda e: e.order or 0.0)
        when = newest.started if newest.started is not None else newest.order
        if when is not None and (self.last_execution is None or when > self.last_execution):
            self.last_execution = when
        with_usage = [e for e in timed if e.usage]
        if with_usage:
            latest = max(with_usage, key=lambda e: e.order or 0.0)
            if self.usage_time is None or (latest.order or 0.0) >= self.usage_time:
                self.usage, self.usage_time = dict(latest.usage), latest.order

    def _prune(self, runs: list[Execution]) -> None:
        """Raise the floor to the oldest entry of the window and forget ids below it."""
        orders = [e.order for e in runs if e.order is not None]
        if orders:
            oldest = min(orders)
            if self.floor is None or oldest > self.floor:
                self.floor = oldest
        if self.floor is not None:
            floor = self.floor
            self.seen = {k: v for k, v in self.seen.items() if v is None or v >= floor}
        while len(self.seen) > MAX_SEEN:
            # Entries without any time cannot be pruned by the floor; drop the oldest remembered.
            self.seen.pop(next(iter(self.seen)))


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Worker:
    key: str
    enabled: bool
    action: str


def _action(value: object) -> str:
    # v1 sends a string; newer APIs send {"name": "BEFORE_DOWNLOAD", "application": "artifactory"}.
    if isinstance(value, dict):
        value = value.get("name")
    return scalar_text(value).strip()


def parse_workers(body: object) -> list[Worker]:
    """{"workers": [...]}; only key, enabled and action are kept (never sourceCode or secrets)."""
    if isinstance(body, dict) and isinstance(body.get("workers"), list):
        entries = body["workers"]
    elif isinstance(body, list):
        entries = body
    else:
        raise UnexpectedShape("workers", "{\"workers\": [...]}", body)
    workers = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise UnexpectedShape("workers", "JSON objects", entry)
        key = scalar_text(entry.get("key"))
        if not key:
            continue
        enabled = entry.get("enabled")
        if isinstance(enabled, str):
            enabled = enabled.strip().lower() == "true"
        workers.append(Worker(key, bool(enabled), _action(entry.get("action"))))
    return workers


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    status: str
    started: float | None  # epoch seconds
    ended: float | None
    duration: float | None  # seconds
    test_run: bool = False
    #: resource -> use over limit, where the entry reports both
    usage: dict[str, float] = field(default_factory=dict)

    @property
    def order(self) -> float | None:
        """When the entry entered the history: its end (entries are recorded when a run ends)."""
        if self.ended is not None:
            return self.ended
        if self.started is not None and self.duration is not None:
            return self.started + self.duration
        return self.started


#: the execution statuses the documents name (execute: STATUS_SUCCESS, STATUS_FAIL; test: STATUS_OK,
#: STATUS_STOP, STATUS_ERROR); any other is counted as "unknown", so a JPD cannot grow the series without bound
STATUSES = ("success", "fail", "ok", "stop", "error")
_warned_statuses: set[str] = set()


def normalise_status(value: object) -> str:
    """"STATUS_SUCCESS" -> "success", "STATUS_FAIL" -> "fail"; an undocumented status -> "unknown"."""
    text = scalar_text(value).strip().lower()
    text = text.removeprefix("status_")
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    if text in STATUSES:
        return text
    if text and not _warned_statuses:
        # Once per process: a JPD inventing statuses would otherwise fill the log as it fills the series.
        _warned_statuses.add(text)
        log.warning("worker execution status %r is not documented: counted as status=\"%s\"", value, UNKNOWN_STATE)
    return UNKNOWN_STATE


def _sub(entry: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, dict):
            return value
    return {}


def _usage(entry: dict[str, Any], result: dict[str, Any]) -> dict[str, float]:
    stats = _sub(result, "workerStats", "workersStats", "executionMetrics") or _sub(entry, "executionMetrics",
                                                                                      "workerStats")
    limits = _sub(result, "executionLimits") or _sub(entry, "executionLimits")
    usage = {}
    for resource, (stat_key, limit_key) in _USAGE_FIELDS.items():
        used, limit = parse_count(stats.get(stat_key)), parse_count(limits.get(limit_key))
        if used is not None and limit:
            usage[resource] = used / limit
    return usage


def _seconds(millis: object) -> float | None:
    value = parse_count(millis)
    return value / 1000.0 if value is not None else None


def parse_execution(entry: object) -> Execution:
    """One history entry (response-parameter table of workers-rerun-and-history.txt)."""
    if not isinstance(entry, dict):
        raise UnexpectedShape("execution history", "JSON objects", entry)
    result = _sub(entry, "executionResult")
    started, ended = _seconds(entry.get("startTimeMillis")), _seconds(entry.get("endTimeMillis"))
    stats = _sub(result, "workerStats", "workersStats", "executionMetrics") or _sub(entry, "executionMetrics")
    duration = _seconds(stats.get("executionDurationMillis"))
    if duration is None and started is not None and ended is not None:
        duration = max(0.0, ended - started)
    ident = next((text for text in (scalar_text(entry.get(k)) for k in _ID_FIELDS) if text), None)
    if ident is None:
        # No id field: what identifies a run is who ran when, and how it ended.
        ident = "|".join(scalar_text(entry.get(k)) for k in
                         ("workerKey", "startTimeMillis", "endTimeMillis", "executionStatus", "triggeredBy"))
    test_run = entry.get("testRun")
    status = entry.get("executionStatus")
    if status is None:
        # A rerun answer carries it inside its result.
        status = _sub(entry, "result").get("executionStatus") or _sub(result, "result").get("executionStatus")
    return Execution(
        id=ident,
        status=normalise_status(status),
        started=started,
        ended=ended,
        duration=duration,
        test_run=test_run is True or (isinstance(test_run, str) and test_run.lower() == "true"),
        usage=_usage(entry, result),
    )


def parse_history(body: object) -> list[Execution]:
    """A JSON array of entries (also accepted: an object holding the array)."""
    if isinstance(body, dict):
        body = next((v for k, v in body.items() if isinstance(v, list) and k.lower() in
                     ("entries", "history", "executionhistory", "executions", "items", "data")), body)
    if not isinstance(body, list):
        raise UnexpectedShape("execution history", "a JSON array", body)
    return [parse_execution(entry) for entry in body]


def parse_execute(body: object) -> bool:
    """The execute answer (workers-execute.txt): success when executionStatus is STATUS_SUCCESS."""
    return isinstance(body, dict) and body.get("executionStatus") == "STATUS_SUCCESS"
