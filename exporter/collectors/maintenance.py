"""Collector `maintenance`: PUD, cleanup policies, background tasks (GC), archive policies, retention.

Each part lives on its own endpoint and appears in a different version or
edition, so every part is optional: an endpoint the JPD does not have
(404/405/501) is left out silently. When one part fails the others are still
reported (the failed part keeps its last good data).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric

from exporter.client import ApiResult, CollectionError, JfrogClient, Outcome, one_line
from exporter.collectors.base import Collector, parse_result
from exporter.metrics import MetricSet
from exporter.values import is_unavailable, lower_or_empty, parse_count, parse_iso_timestamp

log = logging.getLogger(__name__)

PRUNE_STATUS = "/artifactory/api/system/storage/prune/status"
PACKAGE_POLICIES = "/artifactory/api/cleanup/packages/policies"
BUNDLE_POLICIES = "/artifactory/api/cleanup/bundles/policies"
BUNDLE_POLICY = "/artifactory/api/cleanup/bundles/policies/{policy}"
TASKS = "/artifactory/api/tasks"
ARCHIVE_EXECUTIONS = "/artifactory/api/retention/archive/executions"
RETENTION_ENABLED = "/artifactory/api/v1/bundle/retention/config/enable"

#: PUD states documented in 2.3.3.2, plus never_run for the 412 "No Prune task found" answer
PUD_STATES = ("never_run", "running", "stopped", "finished", "error")
#: background task states documented in 2.3.32
TASK_STATES = ("scheduled", "running", "stopped", "cancelled")
#: archive policy run states documented in 2.6.17 (lastRunStatus)
ARCHIVE_STATES = ("pending", "in_progress", "in_progress_with_errors", "complete", "complete_with_errors", "failed")
#: cleanup policy kinds and the endpoint that lists them
CLEANUP_KINDS = {"packages": PACKAGE_POLICIES, "bundles": BUNDLE_POLICIES}

_PROGRESS_RE = re.compile(r"^\s*([\d,]+)\s*(?:of|/)\s*([\d,]+)\s*$", re.I)
_NO_PRUNE_TASK = "no prune task found"


# -- PUD -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PudDirectory:
    name: str
    status: str
    binaries_processed: float | None
    binaries_cleaned: float | None
    bytes_cleaned: float | None
    started: float | None
    last_updated: float | None


@dataclass(frozen=True, slots=True)
class PudStatus:
    status: str
    dry_run: bool | None = None
    started: float | None = None
    last_updated: float | None = None
    duration: float | None = None
    directories_processed: float | None = None
    directories: float | None = None
    binaries_processed: float | None = None
    binaries_cleaned: float | None = None
    bytes_cleaned: float | None = None
    last_directory: PudDirectory | None = None
    error: str | None = None


NEVER_RUN = PudStatus(status="never_run")


def _millis_or_iso(timing: dict[str, Any], key: str) -> float | None:
    """``...Millis`` (epoch ms) wins; the ISO form carries no offset and is read as UTC."""
    millis = parse_count(timing.get(key + "Millis"))
    if millis is not None:
        return millis / 1000.0
    return parse_iso_timestamp(timing.get(key))


def _timing(body: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    timing = body.get("timing")
    if not isinstance(timing, dict):
        return None, None, None
    duration = parse_count(timing.get("durationMillis"))
    return (_millis_or_iso(timing, "startedAt"), _millis_or_iso(timing, "lastUpdated"),
            duration / 1000.0 if duration is not None else None)


def parse_progress(value: object) -> tuple[float | None, float | None]:
    """"2 of 256" -> (2, 256); anything else -> (None, None)."""
    if isinstance(value, str):
        match = _PROGRESS_RE.match(value)
        if match:
            return float(match.group(1).replace(",", "")), float(match.group(2).replace(",", ""))
    return None, None


def _error_text(value: object) -> str | None:
    if value is None or value in ("", {}):
        return None
    if isinstance(value, dict):
        message = value.get("message") or value.get("error") or value.get("info")
        text = str(message) if message else json.dumps(value, sort_keys=True)
    else:
        text = str(value)
    return one_line(text, 300)


def parse_pud_status(body: object) -> PudStatus:
    """The 200 answer of GET .../storage/prune/status (2.3.3.2)."""
    if not isinstance(body, dict):
        raise ValueError("PUD status: expected a JSON object")
    if "status" not in body:
        raise ValueError("PUD status: no 'status' field")
    started, last_updated, duration = _timing(body)
    done, total = parse_progress(body.get("progress"))
    report = body.get("report") if isinstance(body.get("report"), dict) else {}
    last_dir = None
    directory = body.get("lastHandledDirectory")
    if isinstance(directory, dict):
        dir_started, dir_updated, _ = _timing(directory)
        last_dir = PudDirectory(
            name=str(directory.get("name") or ""),
            status=lower_or_empty(directory.get("status")),
            binaries_processed=parse_count(directory.get("binariesProcessed")),
            binaries_cleaned=parse_count(directory.get("binariesCleaned")),
            bytes_cleaned=parse_count(directory.get("bytesCleaned")),
            started=dir_started,
            last_updated=dir_updated,
        )
    dry_run = body.get("dryRun")
    return PudStatus(
        status=lower_or_empty(body.get("status")) or "unknown",
        dry_run=_as_bool(dry_run) if dry_run is not None else None,
        started=started,
        last_updated=last_updated,
        duration=duration,
        directories_processed=done,
        directories=total,
        binaries_processed=parse_count(report.get("totalBinariesProcessed")),
        binaries_cleaned=parse_count(report.get("totalBinariesCleaned")),
        bytes_cleaned=parse_count(report.get("totalBytesCleaned")),
        last_directory=last_dir,
        error=_error_text(body.get("error")),
    )


def is_never_run(body: object) -> bool:
    """The 412 answer {"info": "No Prune task found"}: PUD never ran on this filestore."""
    text = body if isinstance(body, str) else json.dumps(body) if body is not None else ""
    return _NO_PRUNE_TASK in text.lower()


def pud_from_result(result: ApiResult) -> PudStatus | None:
    """The PUD state from one call; ``None`` where the JPD has no PUD (before 7.72, editions without it)."""
    if result.unsupported:
        return None
    if result.status == 412 and result.outcome in (Outcome.SUCCESS, Outcome.BAD_RESPONSE):
        if is_never_run(result.body):
            return NEVER_RUN
        text = result.body if isinstance(result.body, str) else json.dumps(result.body)
        raise CollectionError(Outcome.BAD_RESPONSE, f"{result.endpoint}: HTTP 412: {one_line(text or 'empty')}")
    return parse_result(parse_pud_status, result)


# -- cleanup policies ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CleanupPolicy:
    kind: str
    key: str
    enabled: bool
    cron: str | None = None
    max_duration: float | None = None
    next_run: float | None = None
    last_run_status: str | None = None
    last_run_time: float | None = None
    last_run_items: float | None = None
    last_run_dry_run: bool | None = None
    #: whether the entry carried the schedule fields (the bundles list leaves them out)
    detailed: bool = True

    @property
    def scheduled(self) -> bool:
        """A cron expression (or a next run time computed from one): the policy runs by itself."""
        return bool(self.cron) or self.next_run is not None


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def parse_cleanup_policy(entry: object, kind: str) -> CleanupPolicy | None:
    """One policy object of either list (packages: ``key``; bundles: ``policyKey``)."""
    if not isinstance(entry, dict):
        raise ValueError("cleanup policy: expected JSON objects")
    key = entry.get("key") or entry.get("policyKey")
    if not key:
        return None
    minutes = parse_count(entry.get("durationInMinutes"))
    cron = entry.get("cronExp")
    last = entry.get("lastRunData") if isinstance(entry.get("lastRunData"), dict) else {}
    dry_run = last.get("dryRun")
    return CleanupPolicy(
        kind=kind,
        key=str(key),
        enabled=_as_bool(entry.get("enabled")),
        cron=(cron.strip() or None) if isinstance(cron, str) else None,
        max_duration=minutes * 60.0 if minutes is not None and minutes > 0 else None,
        next_run=parse_iso_timestamp(entry.get("nextRunTime")),
        last_run_status=lower_or_empty(last.get("status")) or None,
        last_run_time=parse_iso_timestamp(last.get("lastRunTime")),
        last_run_items=parse_count(last.get("totalItems")),
        last_run_dry_run=_as_bool(dry_run) if dry_run is not None else None,
        detailed="cronExp" in entry or "durationInMinutes" in entry,
    )


def parse_cleanup_policies(body: object, kind: str) -> list[CleanupPolicy]:
    """The packages list is a JSON array (2.7.1.4); the bundles list is {"policies": [...]} (2.7.2.4)."""
    if isinstance(body, dict) and isinstance(body.get("policies"), list):
        entries = body["policies"]
    elif isinstance(body, list):
        entries = body
    else:
        raise ValueError("cleanup policies: expected a JSON array or {\"policies\": [...]}")
    policies = [parse_cleanup_policy(entry, kind) for entry in entries]
    return [p for p in policies if p is not None]


def merge_policy_detail(listed: CleanupPolicy, detail: CleanupPolicy) -> CleanupPolicy:
    """The single-policy answer carries the schedule and duration the bundles list leaves out."""
    return dataclasses.replace(
        listed,
        cron=listed.cron or detail.cron,
        max_duration=listed.max_duration if listed.max_duration is not None else detail.max_duration,
        next_run=listed.next_run if listed.next_run is not None else detail.next_run,
        detailed=True,
    )


# -- background tasks ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BackgroundTask:
    task_type: str  # short class name
    state: str
    started: float | None
    node_id: str

    @property
    def is_gc(self) -> bool:
        return "garbagecollector" in self.task_type.lower()


def short_type(value: object) -> str:
    """"org.artifactory.storage.binstore.service.BinaryStoreGarbageCollectorJob" -> the class name."""
    text = str(value or "").strip()
    return text.rsplit(".", 1)[-1] if text else "unknown"


def parse_background_tasks(body: object) -> list[BackgroundTask]:
    """GET /api/tasks (2.3.32): {"tasks": [...]}; running tasks carry "started" (older: "start_time")."""
    if isinstance(body, dict) and isinstance(body.get("tasks"), list):
        entries = body["tasks"]
    elif isinstance(body, list):
        entries = body
    else:
        raise ValueError("background tasks: expected {\"tasks\": [...]}")
    tasks = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("background tasks: expected JSON objects")
        started = entry.get("started")
        if is_unavailable(started):
            started = entry.get("start_time")
        tasks.append(BackgroundTask(
            task_type=short_type(entry.get("type")),
            state=lower_or_empty(entry.get("state")) or "unknown",
            started=parse_iso_timestamp(started),
            node_id=str(entry.get("nodeId") or ""),
        ))
    return tasks


# -- archive policies and retention ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ArchiveExecution:
    policy: str
    state: str | None
    started: float | None
    finished: float | None
    artifacts_total: float | None
    artifacts_completed: float | None
    artifacts_failed: float | None
    bytes_total: float | None
    bytes_completed: float | None
    bytes_failed: float | None
    progress_ratio: float | None


def _folded(entry: dict[str, Any]) -> dict[str, Any]:
    # The documents spell the same field "completedNumberofArtifacts" and "completedNumberOfArtifacts".
    return {str(k).lower(): v for k, v in entry.items()}


def parse_archive_executions(body: object) -> list[ArchiveExecution]:
    """Last execution per policy (2.6.17). The list shows the latest first; the newest start wins."""
    if isinstance(body, dict):
        found = next((v for k, v in body.items() if isinstance(v, list) and k.lower() in
                      ("executions", "items", "data", "results")), None)
        if found is None:
            raise ValueError("archive executions: expected a JSON array")
        body = found
    if not isinstance(body, list):
        raise ValueError("archive executions: expected a JSON array")
    latest: dict[str, ArchiveExecution] = {}
    for raw in body:
        if not isinstance(raw, dict):
            raise ValueError("archive executions: expected JSON objects")
        entry = _folded(raw)
        progress = parse_count(entry.get("progresspercentage"))
        execution = ArchiveExecution(
            policy=str(entry.get("policykey") or entry.get("policyname") or entry.get("key") or ""),
            state=lower_or_empty(entry.get("lastrunstatus") or entry.get("state") or entry.get("status")) or None,
            started=parse_iso_timestamp(entry.get("starttime")),
            finished=parse_iso_timestamp(entry.get("finishtime")),
            artifacts_total=parse_count(entry.get("totalnumberofartifacts")),
            artifacts_completed=parse_count(entry.get("completednumberofartifacts")),
            artifacts_failed=parse_count(entry.get("failednumberofartifacts")),
            bytes_total=parse_count(entry.get("totalbytesize")),
            bytes_completed=parse_count(entry.get("successbytesize")),
            bytes_failed=parse_count(entry.get("failurebytesize")),
            progress_ratio=progress / 100.0 if progress is not None else None,
        )
        known = latest.get(execution.policy)
        if known is None or (execution.started or 0) > (known.started or 0):
            latest[execution.policy] = execution
    return list(latest.values())


def parse_retention_enabled(body: object) -> bool:
    """GET /api/v1/bundle/retention/config/enable (2.16.1): {"enable": true|false}."""
    if not isinstance(body, dict) or "enable" not in body:
        raise ValueError("retention status: expected {\"enable\": true|false}")
    return _as_bool(body["enable"])


# -- families ------------------------------------------------------------------------------------
H = {
    "jfrog_pud_status": "State of the Pruning Unreferenced Data (PUD) process; never_run until it first ran.",
    "jfrog_pud_dry_run": "1 if the current or last PUD run is a dry run (deletes nothing).",
    "jfrog_pud_started_timestamp_seconds": "When the current or last PUD run started.",
    "jfrog_pud_last_updated_timestamp_seconds": "When the PUD process last reported progress.",
    "jfrog_pud_duration_seconds": "How long the current or last PUD run has taken, as reported by the JPD.",
    "jfrog_pud_directories_processed": "Filestore directories the PUD run has processed (\"2 of 256\": 2).",
    "jfrog_pud_directories": "Filestore directories the PUD run has to process (\"2 of 256\": 256).",
    "jfrog_pud_binaries_processed": "Binaries the PUD run has processed so far.",
    "jfrog_pud_binaries_cleaned": "Unreferenced binaries the PUD run has removed so far.",
    "jfrog_pud_cleaned_bytes": "Bytes the PUD run has reclaimed so far.",
    "jfrog_pud_last_directory_binaries_processed":
        "Binaries processed in the last handled directory (the startFromBinary position to resume from).",
    "jfrog_cleanup_policy_enabled": "1 if the cleanup policy is enabled (may run).",
    "jfrog_cleanup_policy_max_duration_seconds": "Maximum run time of the cleanup policy; absent when unlimited.",
    "jfrog_cleanup_policy_scheduled":
        "1 if the cleanup policy has a schedule (cron); an enabled policy without one only runs when triggered.",
    "jfrog_cleanup_policy_next_run_timestamp_seconds": "Next scheduled run of the cleanup policy, where reported.",
    "jfrog_cleanup_policy_last_run_timestamp_seconds": "Last run of the cleanup policy, where reported.",
    "jfrog_cleanup_policy_last_run_info": "Status of the last run of the cleanup policy (lower case), where reported.",
    "jfrog_cleanup_policy_last_run_items": "Items the last run of the cleanup policy handled, where reported.",
    "jfrog_background_tasks": "Background tasks by short task type and state (GET /api/tasks).",
    "jfrog_gc_running": "1 while a garbage-collection task runs.",
    "jfrog_background_task_oldest_running_started_timestamp_seconds":
        "Start of the oldest running task of this type.",
    "jfrog_background_task_oldest_running_seconds":
        "How long the oldest running task of this type had been running when last collected.",
    "jfrog_archive_policy_last_execution_status": "State of the last execution of the archive policy.",
    "jfrog_archive_policy_last_execution_started_timestamp_seconds": "Start of the last archive policy execution.",
    "jfrog_archive_policy_last_execution_finished_timestamp_seconds": "End of the last archive policy execution.",
    "jfrog_archive_policy_last_execution_artifacts":
        "Artifacts of the last archive policy execution (result: total, completed, failed).",
    "jfrog_archive_policy_last_execution_bytes":
        "Bytes of the last archive policy execution (result: total, completed, failed).",
    "jfrog_archive_policy_last_execution_progress_ratio": "Progress of the last archive policy execution (0..1).",
    "jfrog_retention_service_enabled": "1 if the release bundle retention service is enabled.",
}

PUD_FAMILIES = [n for n in H if n.startswith("jfrog_pud_")]
CLEANUP_FAMILIES = [n for n in H if n.startswith("jfrog_cleanup_")]
TASK_FAMILIES = ["jfrog_background_tasks", "jfrog_gc_running",
                 "jfrog_background_task_oldest_running_started_timestamp_seconds",
                 "jfrog_background_task_oldest_running_seconds"]
ARCHIVE_FAMILIES = [n for n in H if n.startswith("jfrog_archive_")]


def _declare(metrics: MetricSet, names: list[str]) -> None:
    for name in names:
        metrics.declare(name, H[name])


def _gauge(metrics: MetricSet, name: str, value: float | bool | None, **labels: str) -> None:
    metrics.gauge(name, H[name], None if value is None else float(value), **labels)


def pud_families(pud: PudStatus, metrics: MetricSet) -> None:
    _declare(metrics, PUD_FAMILIES)
    metrics.state_set("jfrog_pud_status", H["jfrog_pud_status"], PUD_STATES, pud.status)
    _gauge(metrics, "jfrog_pud_dry_run", pud.dry_run)
    _gauge(metrics, "jfrog_pud_started_timestamp_seconds", pud.started)
    _gauge(metrics, "jfrog_pud_last_updated_timestamp_seconds", pud.last_updated)
    _gauge(metrics, "jfrog_pud_duration_seconds", pud.duration)
    _gauge(metrics, "jfrog_pud_directories_processed", pud.directories_processed)
    _gauge(metrics, "jfrog_pud_directories", pud.directories)
    _gauge(metrics, "jfrog_pud_binaries_processed", pud.binaries_processed)
    _gauge(metrics, "jfrog_pud_binaries_cleaned", pud.binaries_cleaned)
    _gauge(metrics, "jfrog_pud_cleaned_bytes", pud.bytes_cleaned)
    if pud.last_directory is not None:
        _gauge(metrics, "jfrog_pud_last_directory_binaries_processed", pud.last_directory.binaries_processed)


def cleanup_families(policies: list[CleanupPolicy], metrics: MetricSet) -> None:
    _declare(metrics, CLEANUP_FAMILIES)
    for p in policies:
        labels = {"kind": p.kind, "policy": p.key}
        _gauge(metrics, "jfrog_cleanup_policy_enabled", p.enabled, **labels)
        _gauge(metrics, "jfrog_cleanup_policy_max_duration_seconds", p.max_duration, **labels)
        _gauge(metrics, "jfrog_cleanup_policy_scheduled", p.scheduled, **labels)
        _gauge(metrics, "jfrog_cleanup_policy_next_run_timestamp_seconds", p.next_run, **labels)
        _gauge(metrics, "jfrog_cleanup_policy_last_run_timestamp_seconds", p.last_run_time, **labels)
        if p.last_run_status:
            metrics.info("jfrog_cleanup_policy_last_run_info", H["jfrog_cleanup_policy_last_run_info"],
                         status=p.last_run_status, **labels)
        _gauge(metrics, "jfrog_cleanup_policy_last_run_items", p.last_run_items, **labels)


def task_families(tasks: list[BackgroundTask], metrics: MetricSet, now: float) -> None:
    _declare(metrics, TASK_FAMILIES)
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, float] = {}
    for task in tasks:
        states = counts.setdefault(task.task_type, dict.fromkeys(TASK_STATES, 0))
        states[task.state] = states.get(task.state, 0) + 1
        if task.state == "running" and task.started is not None:
            oldest[task.task_type] = min(oldest.get(task.task_type, task.started), task.started)
    for task_type, states in sorted(counts.items()):
        for state, count in states.items():
            _gauge(metrics, "jfrog_background_tasks", count, task_type=task_type, state=state)
    _gauge(metrics, "jfrog_gc_running", any(t.is_gc and t.state == "running" for t in tasks))
    for task_type, started in sorted(oldest.items()):
        _gauge(metrics, "jfrog_background_task_oldest_running_started_timestamp_seconds", started,
               task_type=task_type)
        _gauge(metrics, "jfrog_background_task_oldest_running_seconds", max(0.0, now - started),
               task_type=task_type)


def archive_families(executions: list[ArchiveExecution], metrics: MetricSet) -> None:
    _declare(metrics, ARCHIVE_FAMILIES)
    for e in executions:
        labels = {"policy": e.policy}
        metrics.state_set("jfrog_archive_policy_last_execution_status",
                          H["jfrog_archive_policy_last_execution_status"], ARCHIVE_STATES, e.state, **labels)
        _gauge(metrics, "jfrog_archive_policy_last_execution_started_timestamp_seconds", e.started, **labels)
        _gauge(metrics, "jfrog_archive_policy_last_execution_finished_timestamp_seconds", e.finished, **labels)
        for result, artifacts, size in (("total", e.artifacts_total, e.bytes_total),
                                        ("completed", e.artifacts_completed, e.bytes_completed),
                                        ("failed", e.artifacts_failed, e.bytes_failed)):
            _gauge(metrics, "jfrog_archive_policy_last_execution_artifacts", artifacts, result=result, **labels)
            _gauge(metrics, "jfrog_archive_policy_last_execution_bytes", size, result=result, **labels)
        _gauge(metrics, "jfrog_archive_policy_last_execution_progress_ratio", e.progress_ratio, **labels)


# -- collector -----------------------------------------------------------------------------------
@dataclass
class _Parts:
    """What one run gathered: families of the parts that answered, failures of the others."""

    families: list[Metric] = field(default_factory=list)
    failures: list[CollectionError] = field(default_factory=list)
    supported: int = 0


class MaintenanceCollector(Collector):
    name = "maintenance"
    default_interval = 300.0
    description = "PUD, cleanup policies, background tasks and GC, archive policies, retention service"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Log what the PUD reports when it changes, not every run.
        self._pud_status: str | None = None
        self._pud_error: str | None = None

    async def collect(self, client: JfrogClient) -> list[Metric]:
        parts = _Parts()
        fills = (self._pud, self._cleanup, self._tasks, self._archive, self._retention)
        # Results in a fixed order: the reason of a failed run must not change with timing.
        for outcome in await asyncio.gather(*(self._part(fill, client) for fill in fills)):
            if isinstance(outcome, CollectionError):
                parts.failures.append(outcome)
            elif outcome is not None:
                parts.supported += 1
                parts.families.extend(outcome)
        if parts.failures:
            first = parts.failures[0]
            reason = "; ".join(f.reason for f in parts.failures)
            raise CollectionError(first.outcome, reason, partial=parts.families or None)
        if not parts.supported:
            raise CollectionError(Outcome.UNSUPPORTED, "no maintenance endpoint on this JPD")
        return parts.families

    async def _part(self, fill: Callable[[JfrogClient, MetricSet], Awaitable[bool]],
                    client: JfrogClient) -> list[Metric] | CollectionError | None:
        """Run one part into its own set, so a failed part never replaces another's families."""
        metrics = MetricSet(self.target.name)
        try:
            supported = await fill(client, metrics)
        except CollectionError as exc:
            return exc
        return metrics.families() if supported else None

    async def _pud(self, client: JfrogClient, metrics: MetricSet) -> bool:
        pud = pud_from_result(await client.get(PRUNE_STATUS, accept=frozenset({200, 412})))
        if pud is None:
            return False
        self._log_pud(pud)
        pud_families(pud, metrics)
        return True

    def _log_pud(self, pud: PudStatus) -> None:
        if pud.error and pud.error != self._pud_error:
            log.warning("target=%s: the PUD process reports an error: %s", self.target.name, pud.error)
        if self._pud_status is not None and pud.status != self._pud_status:
            where = f" (last directory {pud.last_directory.name}: {pud.last_directory.status})" \
                if pud.last_directory and pud.last_directory.name else ""
            log.info("target=%s: PUD %s -> %s%s", self.target.name, self._pud_status, pud.status, where)
        self._pud_status, self._pud_error = pud.status, pud.error

    async def _cleanup(self, client: JfrogClient, metrics: MetricSet) -> bool:
        results = await asyncio.gather(*(client.get(endpoint) for endpoint in CLEANUP_KINDS.values()))
        policies: list[CleanupPolicy] = []
        supported = False
        for kind, result in zip(CLEANUP_KINDS, results, strict=True):
            if result.unsupported:
                continue
            supported = True
            policies.extend(parse_result(lambda body, k=kind: parse_cleanup_policies(body, k), result))
        if not supported:
            return False
        policies = list(await asyncio.gather(*(self._detail(client, p) for p in policies)))
        cleanup_families(policies, metrics)
        return True

    async def _detail(self, client: JfrogClient, policy: CleanupPolicy) -> CleanupPolicy:
        """The bundles list omits schedule and duration: ask for the single policy then."""
        if policy.detailed or policy.kind != "bundles":
            return policy
        result = await client.get(BUNDLE_POLICY, path={"policy": policy.key})
        if result.unsupported:  # removed since the list was read
            return policy
        detail = parse_result(lambda body: parse_cleanup_policy(body, policy.kind), result)
        return merge_policy_detail(policy, detail) if detail is not None else policy

    async def _tasks(self, client: JfrogClient, metrics: MetricSet) -> bool:
        result = await client.get(TASKS)
        if result.unsupported:
            return False
        task_families(parse_result(parse_background_tasks, result), metrics, time.time())
        return True

    async def _archive(self, client: JfrogClient, metrics: MetricSet) -> bool:
        result = await client.get(ARCHIVE_EXECUTIONS)
        if result.unsupported:
            return False
        archive_families(parse_result(parse_archive_executions, result), metrics)
        return True

    async def _retention(self, client: JfrogClient, metrics: MetricSet) -> bool:
        result = await client.get(RETENTION_ENABLED)
        if result.unsupported:
            return False
        enabled = parse_result(parse_retention_enabled, result)
        _gauge(metrics, "jfrog_retention_service_enabled", enabled)
        return True
