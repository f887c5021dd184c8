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
from typing import Annotated, Any

from prometheus_client.core import Metric
from pydantic import Field

from exporter.client import ApiResult, CollectionError, JfrogClient, Outcome, one_line
from exporter.collectors.base import Collector, CollectorSettings, Duration, parse_result
from exporter.metrics import DURATION_BUCKETS, Histogram, MetricSet
from exporter.values import parse_count

log = logging.getLogger(__name__)

WORKERS = "/worker/api/v1/workers"
HISTORY = "/worker/api/v1/execution_history"
EXECUTE = "/worker/api/v1/execute/{worker}"

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


class WorkersSettings(CollectorSettings):
    #: key of a GENERIC_EVENT worker to execute each run as a synthetic probe
    probe_worker: str | None = None
    probe_timeout: Duration = 10.0
    #: execution-history calls in flight at once
    history_concurrency: Annotated[int, Field(ge=1, le=64)] = 4


# -- parsing -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Worker:
    key: str
    enabled: bool
    action: str


def _pick(entry: dict[str, Any], camel: str, snake: str) -> Any:
    return entry[camel] if camel in entry else entry.get(snake)


def _action(value: object) -> str:
    # v1 sends a string; newer APIs send {"name": "BEFORE_DOWNLOAD", "application": "artifactory"}.
    if isinstance(value, dict):
        value = value.get("name")
    return str(value or "").strip()


def parse_workers(body: object) -> list[Worker]:
    """{"workers": [...]}; only key, enabled and action are kept (never sourceCode or secrets)."""
    if isinstance(body, dict) and isinstance(body.get("workers"), list):
        entries = body["workers"]
    elif isinstance(body, list):
        entries = body
    else:
        raise ValueError("workers: expected {\"workers\": [...]}")
    workers = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("workers: expected JSON objects")
        key = entry.get("key")
        if not key:
            continue
        enabled = entry.get("enabled")
        if isinstance(enabled, str):
            enabled = enabled.strip().lower() == "true"
        workers.append(Worker(str(key), bool(enabled), _action(entry.get("action"))))
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


def normalise_status(value: object) -> str:
    """"STATUS_SUCCESS" -> "success", "STATUS_FAIL" -> "fail"."""
    text = str(value or "").strip().lower()
    text = text.removeprefix("status_")
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return text or "unknown"


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
        raise ValueError("execution history: expected JSON objects")
    result = _sub(entry, "executionResult")
    started, ended = _seconds(entry.get("startTimeMillis")), _seconds(entry.get("endTimeMillis"))
    stats = _sub(result, "workerStats", "workersStats", "executionMetrics") or _sub(entry, "executionMetrics")
    duration = _seconds(stats.get("executionDurationMillis"))
    if duration is None and started is not None and ended is not None:
        duration = max(0.0, ended - started)
    ident = next((str(entry[k]) for k in _ID_FIELDS if entry.get(k)), None)
    if ident is None:
        # No id field: what identifies a run is who ran when, and how it ended.
        ident = "|".join(str(entry.get(k, "")) for k in
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
        test_run=test_run is True or str(test_run).lower() == "true",
        usage=_usage(entry, result),
    )


def parse_history(body: object) -> list[Execution]:
    """A JSON array of entries (also accepted: an object holding the array)."""
    if isinstance(body, dict):
        body = next((v for k, v in body.items() if isinstance(v, list) and k.lower() in
                     ("entries", "history", "executionhistory", "executions", "items", "data")), body)
    if not isinstance(body, list):
        raise ValueError("execution history: expected a JSON array")
    return [parse_execution(entry) for entry in body]


def parse_execute(body: object) -> bool:
    """The execute answer (workers-execute.txt): success when executionStatus is STATUS_SUCCESS."""
    return isinstance(body, dict) and body.get("executionStatus") == "STATUS_SUCCESS"


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


# -- families ------------------------------------------------------------------------------------
H = {
    "jfrog_worker_enabled": "1 if the worker is enabled (action: the event it is hooked on).",
    "jfrog_worker_executions": "Worker executions by status, each history entry counted once "
                               "(from the first poll on; older entries are not counted).",
    "jfrog_worker_execution_duration_seconds": "Duration of the worker executions counted in "
                                               "jfrog_worker_executions_total.",
    "jfrog_worker_last_execution_timestamp_seconds": "Start of the worker's newest execution in its history.",
    "jfrog_worker_limit_usage_ratio": "The newest execution's use of its limit (resource: cpu, memory, duration), "
                                      "where the JPD reports limits.",
    "jfrog_worker_probe_success": "1 if the synthetic probe execution of the GENERIC_EVENT worker returned "
                                  "STATUS_SUCCESS.",
    "jfrog_worker_probe_duration_seconds": "How long the synthetic probe execution took, as seen by the exporter.",
}
WORKER_FAMILIES = [
    ("jfrog_worker_enabled", "gauge"),
    ("jfrog_worker_executions", "counter"),
    ("jfrog_worker_execution_duration_seconds", "histogram"),
    ("jfrog_worker_last_execution_timestamp_seconds", "gauge"),
    ("jfrog_worker_limit_usage_ratio", "gauge"),
]


def worker_families(workers: list[Worker], histories: dict[str, WorkerHistory], metrics: MetricSet) -> None:
    for name, typ in WORKER_FAMILIES:
        metrics.declare(name, H[name], typ)
    for worker in workers:
        labels = {"worker": worker.key}
        metrics.gauge("jfrog_worker_enabled", H["jfrog_worker_enabled"], 1.0 if worker.enabled else 0.0,
                      action=worker.action, **labels)
        state = histories.get(worker.key)
        if state is None or not state.initialised:
            continue
        for status, count in sorted(state.counts.items()):
            metrics.counter("jfrog_worker_executions", H["jfrog_worker_executions"], count, status=status, **labels)
        hist = state.durations
        metrics.histogram("jfrog_worker_execution_duration_seconds", H["jfrog_worker_execution_duration_seconds"],
                          hist.buckets, hist.cumulative(), hist.total, **labels)
        metrics.gauge("jfrog_worker_last_execution_timestamp_seconds",
                      H["jfrog_worker_last_execution_timestamp_seconds"], state.last_execution, **labels)
        for resource in RESOURCES:
            if resource in state.usage:
                metrics.gauge("jfrog_worker_limit_usage_ratio", H["jfrog_worker_limit_usage_ratio"],
                              state.usage[resource], resource=resource, **labels)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    worker: str
    success: bool
    duration: float
    reason: str = ""


def probe_families(probe: ProbeResult, metrics: MetricSet) -> None:
    metrics.gauge("jfrog_worker_probe_success", H["jfrog_worker_probe_success"], 1.0 if probe.success else 0.0,
                  worker=probe.worker)
    metrics.gauge("jfrog_worker_probe_duration_seconds", H["jfrog_worker_probe_duration_seconds"], probe.duration,
                  worker=probe.worker)


# -- collector -----------------------------------------------------------------------------------
class WorkersCollector(Collector):
    name = "workers"
    default_interval = 120.0
    description = "JFrog Workers: enabled, executions from the history, limits, optional synthetic probe"
    settings_model = WorkersSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.histories: dict[str, WorkerHistory] = {}
        self._probe_ok: bool | None = None

    @property
    def _settings(self) -> WorkersSettings:
        settings = self.settings
        return settings if isinstance(settings, WorkersSettings) else WorkersSettings()

    async def collect(self, client: JfrogClient) -> list[Metric]:
        metrics = MetricSet(self.target.name)
        # The probe first: its own execution then shows in this run's history.
        if self._settings.probe_worker:
            probe_families(await self._probe(client, self._settings.probe_worker), metrics)
        listing = await client.get(WORKERS)
        if listing.unsupported:
            raise CollectionError(Outcome.UNSUPPORTED, f"{WORKERS}: {listing.reason}")
        if not listing.ok:
            raise CollectionError(listing.outcome, f"{WORKERS}: {listing.reason}", partial=metrics.families() or None)
        workers = parse_result(parse_workers, listing)
        keys = {w.key for w in workers}
        for gone in set(self.histories) - keys:
            del self.histories[gone]
        limit = asyncio.Semaphore(self._settings.history_concurrency)
        failures = [f for f in await asyncio.gather(*(self._history(client, w.key, limit) for w in workers)) if f]
        worker_families(workers, self.histories, metrics)
        if failures:
            # The others are current; the failed ones keep what they had. Report the run as failed.
            first = failures[0]
            more = f" (and {len(failures) - 1} more workers)" if len(failures) > 1 else ""
            raise CollectionError(first.outcome, first.reason + more, partial=metrics.families())
        return metrics.families()

    async def _history(self, client: JfrogClient, key: str, limit: asyncio.Semaphore) -> CollectionError | None:
        async with limit:
            result = await client.get(HISTORY, params={"workerKey": key})
        if result.unsupported:
            # Deleted since the list was read, or no history kept for it.
            return None
        try:
            executions = parse_result(parse_history, result)
        except CollectionError as exc:
            return CollectionError(exc.outcome, f"worker {key}: {exc.reason}")
        state = self.histories.setdefault(key, WorkerHistory())
        counted_before = len(state.seen)
        new = state.observe(executions)
        if new and len(new) == len(executions) >= 2 and counted_before and not state.window_overflow_warned:
            state.window_overflow_warned = True
            log.warning("target=%s worker=%s: every entry of the execution history was new; runs between two "
                        "polls may have been missed (collect workers more often)", self.target.name, key)
        return None

    async def _probe(self, client: JfrogClient, key: str) -> ProbeResult:
        payload = {"source": "jfrog-exporter", "target": self.target.name, "sentAtMillis": int(time.time() * 1000)}
        started = time.perf_counter()
        reason = ""
        try:
            result: ApiResult = await asyncio.wait_for(
                client.request("POST", EXECUTE, path={"worker": key}, json_body=payload),
                timeout=self._settings.probe_timeout,
            )
            success = result.ok and parse_execute(result.body)
            if not result.ok:
                reason = result.reason
            elif not success:
                status = result.body.get("executionStatus") if isinstance(result.body, dict) else None
                reason = f"executionStatus {status!r}"
        except TimeoutError:
            success, reason = False, f"no answer within {self._settings.probe_timeout:g}s"
        duration = time.perf_counter() - started
        if success != self._probe_ok:
            if success:
                log.info("target=%s: probe worker %s succeeds", self.target.name, key)
            else:
                log.warning("target=%s: probe worker %s does not succeed: %s", self.target.name, key,
                            one_line(reason))
            self._probe_ok = success
        return ProbeResult(key, success, duration, reason)
