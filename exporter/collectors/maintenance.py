"""Collector `maintenance`: PUD, cleanup policies, background tasks (GC), archive policies, retention.

Each part lives on its own endpoint and appears in a different version or
edition, so every part is optional: an endpoint the JPD does not have
(404/405/501) is left out silently. When one part fails the others are still
reported (the failed part keeps its last good data).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from exporter.client import ApiResult, one_line
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.values import (
    UnexpectedShape,
    is_unavailable,
    json_text,
    lower_or_empty,
    parse_count,
    parse_iso_timestamp,
    scalar_text,
)

log = logging.getLogger(__name__)

F = Declarations("maintenance")
PRUNE_STATUS = F.endpoint("/artifactory/api/system/storage/prune/status", Permission.ADMIN)
PACKAGE_POLICIES = F.endpoint("/artifactory/api/cleanup/packages/policies", Permission.ADMIN)
BUNDLE_POLICIES = F.endpoint("/artifactory/api/cleanup/bundles/policies", Permission.ADMIN)
BUNDLE_POLICY = F.endpoint("/artifactory/api/cleanup/bundles/policies/{policy}", Permission.ADMIN)
TASKS = F.endpoint("/artifactory/api/tasks", Permission.ADMIN)
ARCHIVE_EXECUTIONS = F.endpoint("/artifactory/api/retention/archive/executions", Permission.ADMIN)
RETENTION_ENABLED = F.endpoint("/artifactory/api/v1/bundle/retention/config/enable", Permission.ADMIN)

#: PUD states documented in 2.3.3.2, plus never_run for the 412 "No Prune task found" answer
PUD_STATES = ("never_run", "running", "stopped", "finished", "error")
#: background task states documented in 2.3.32
TASK_STATES = ("scheduled", "running", "stopped", "cancelled")
#: archive policy run states documented in 2.6.17 (lastRunStatus)
ARCHIVE_STATES = ("pending", "in_progress", "in_progress_with_errors", "complete", "complete_with_errors", "failed")

PUD_STATUS = F.state_set("jfrog_pud_status",
                         "State of the Pruning Unreferenced Data (PUD) process; never_run until it first ran.",
                         PUD_STATES)
PUD_DRY_RUN = F.gauge("jfrog_pud_dry_run", "1 if the current or last PUD run is a dry run (deletes nothing).")
PUD_STARTED = F.gauge("jfrog_pud_started_timestamp_seconds", "When the current or last PUD run started.")
PUD_LAST_UPDATED = F.gauge("jfrog_pud_last_updated_timestamp_seconds",
                           "When the PUD process last reported progress.")
PUD_DURATION = F.gauge("jfrog_pud_duration_seconds",
                       "How long the current or last PUD run has taken, as reported by the JPD.")
PUD_DIRECTORIES_PROCESSED = F.gauge("jfrog_pud_directories_processed",
                                    "Filestore directories the PUD run has processed (\"2 of 256\": 2).")
PUD_DIRECTORIES = F.gauge("jfrog_pud_directories",
                          "Filestore directories the PUD run has to process (\"2 of 256\": 256).")
PUD_BINARIES_PROCESSED = F.gauge("jfrog_pud_binaries_processed", "Binaries the PUD run has processed so far.")
PUD_BINARIES_CLEANED = F.gauge("jfrog_pud_binaries_cleaned",
                               "Unreferenced binaries the PUD run has removed so far.")
PUD_CLEANED_BYTES = F.gauge("jfrog_pud_cleaned_bytes", "Bytes the PUD run has reclaimed so far.")
PUD_LAST_DIRECTORY_BINARIES = F.gauge(
    "jfrog_pud_last_directory_binaries_processed",
    "Binaries processed in the last handled directory (the startFromBinary position to resume from).")
PUD_FAMILIES = (PUD_STATUS, PUD_DRY_RUN, PUD_STARTED, PUD_LAST_UPDATED, PUD_DURATION, PUD_DIRECTORIES_PROCESSED,
                PUD_DIRECTORIES, PUD_BINARIES_PROCESSED, PUD_BINARIES_CLEANED, PUD_CLEANED_BYTES,
                PUD_LAST_DIRECTORY_BINARIES)

# kind is one of two constants: the policy identifies the series.
_POLICY = ("kind", "policy")
_BY_POLICY = ("policy",)
CLEANUP_ENABLED = F.gauge("jfrog_cleanup_policy_enabled", "1 if the cleanup policy is enabled (may run).", *_POLICY,
                          key=_BY_POLICY)
CLEANUP_MAX_DURATION = F.gauge("jfrog_cleanup_policy_max_duration_seconds",
                               "Maximum run time of the cleanup policy; absent when unlimited.", *_POLICY,
                               key=_BY_POLICY)
CLEANUP_SCHEDULED = F.gauge(
    "jfrog_cleanup_policy_scheduled",
    "1 if the cleanup policy has a schedule (cron); an enabled policy without one only runs when triggered.",
    *_POLICY, key=_BY_POLICY)
CLEANUP_NEXT_RUN = F.gauge("jfrog_cleanup_policy_next_run_timestamp_seconds",
                           "Next scheduled run of the cleanup policy, where reported.", *_POLICY, key=_BY_POLICY)
CLEANUP_LAST_RUN = F.gauge("jfrog_cleanup_policy_last_run_timestamp_seconds",
                           "Last run of the cleanup policy, where reported.", *_POLICY, key=_BY_POLICY)
CLEANUP_LAST_RUN_INFO = F.info("jfrog_cleanup_policy_last_run_info",
                               "Status of the last run of the cleanup policy (lower case), where reported.",
                               *_POLICY, "status", key=(*_BY_POLICY, "status"))
CLEANUP_LAST_RUN_ITEMS = F.gauge("jfrog_cleanup_policy_last_run_items",
                                 "Items the last run of the cleanup policy handled, where reported.", *_POLICY,
                                 key=_BY_POLICY)
CLEANUP_FAMILIES = (CLEANUP_ENABLED, CLEANUP_MAX_DURATION, CLEANUP_SCHEDULED, CLEANUP_NEXT_RUN, CLEANUP_LAST_RUN,
                    CLEANUP_LAST_RUN_INFO, CLEANUP_LAST_RUN_ITEMS)

BACKGROUND_TASKS = F.gauge("jfrog_background_tasks",
                           "Background tasks by short task type and state (GET /api/tasks).", "task_type", "state")
GC_RUNNING = F.gauge("jfrog_gc_running", "1 while a garbage-collection task runs.")
TASK_OLDEST_STARTED = F.gauge("jfrog_background_task_oldest_running_started_timestamp_seconds",
                              "Start of the oldest running task of this type.", "task_type")
TASK_OLDEST_RUNNING = F.gauge("jfrog_background_task_oldest_running_seconds",
                              "How long the oldest running task of this type had been running when last collected.",
                              "task_type")
TASK_FAMILIES = (BACKGROUND_TASKS, GC_RUNNING, TASK_OLDEST_STARTED, TASK_OLDEST_RUNNING)

ARCHIVE_STATUS = F.state_set("jfrog_archive_policy_last_execution_status",
                             "State of the last execution of the archive policy.", ARCHIVE_STATES, "policy")
ARCHIVE_STARTED = F.gauge("jfrog_archive_policy_last_execution_started_timestamp_seconds",
                          "Start of the last archive policy execution.", "policy")
ARCHIVE_FINISHED = F.gauge("jfrog_archive_policy_last_execution_finished_timestamp_seconds",
                           "End of the last archive policy execution.", "policy")
ARCHIVE_ARTIFACTS = F.gauge("jfrog_archive_policy_last_execution_artifacts",
                            "Artifacts of the last archive policy execution (result: total, completed, failed).",
                            "policy", "result")
ARCHIVE_BYTES = F.gauge("jfrog_archive_policy_last_execution_bytes",
                        "Bytes of the last archive policy execution (result: total, completed, failed).",
                        "policy", "result")
ARCHIVE_PROGRESS = F.gauge("jfrog_archive_policy_last_execution_progress_ratio",
                           "Progress of the last archive policy execution (0..1).", "policy")
ARCHIVE_FAMILIES = (ARCHIVE_STATUS, ARCHIVE_STARTED, ARCHIVE_FINISHED, ARCHIVE_ARTIFACTS, ARCHIVE_BYTES,
                    ARCHIVE_PROGRESS)

RETENTION = F.gauge("jfrog_retention_service_enabled", "1 if the release bundle retention service is enabled.")

_PROGRESS_RE = re.compile(r"^\s*(\d[\d,]*)\s*(?:of|/)\s*(\d[\d,]*)\s*$", re.I)
_NO_PRUNE_TASK = "no prune task found"


class MaintenanceCollector(Collector[CollectorSettings]):
    name = "maintenance"
    default_interval = 300.0
    description = "PUD, cleanup policies, background tasks and GC, archive policies, retention service"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Log what the PUD reports when it changes, not every run.
        self._pud_status: str | None = None
        self._pud_error: str | None = None

    async def collect(self, run: Run) -> None:
        await asyncio.gather(
            run.part(PRUNE_STATUS, self._pud),
            run.part(PACKAGE_POLICIES, self._package_policies),
            run.part(BUNDLE_POLICIES, self._bundle_policies),
            run.part(TASKS, self._tasks),
            run.part(ARCHIVE_EXECUTIONS, self._archive),
            run.part(RETENTION_ENABLED, self._retention),
        )

    async def _pud(self, part: Part) -> None:
        result = await part.get(accept=frozenset({200, 412}))
        pud = pud_from_result(result)
        if pud is None:
            raise CollectionError(Outcome.UNSUPPORTED, f"{result.endpoint}: {result.reason}")
        self._log_pud(pud)
        pud_families(pud, part.out)

    def _log_pud(self, pud: PudStatus) -> None:
        if pud.error and pud.error != self._pud_error:
            log.warning("the PUD process reports an error: %s", pud.error)
        if self._pud_status is not None and pud.status != self._pud_status:
            where = f" (last directory {pud.last_directory.name}: {pud.last_directory.status})" \
                if pud.last_directory and pud.last_directory.name else ""
            log.info("PUD %s -> %s%s", self._pud_status, pud.status, where)
        self._pud_status, self._pud_error = pud.status, pud.error

    @staticmethod
    async def _package_policies(part: Part) -> None:
        policies = parse_result(lambda body: parse_cleanup_policies(body, "packages"), await part.get())
        cleanup_families(policies, part.out)

    @staticmethod
    async def _bundle_policies(part: Part) -> None:
        policies = parse_result(lambda body: parse_cleanup_policies(body, "bundles"), await part.get())
        # The bundles list omits schedule and duration: the single policy carries them.
        missing = [p.key for p in policies if not p.detailed]
        details = await part.get_each(missing, path=lambda key: {"policy": key}, endpoint=BUNDLE_POLICY)
        cleanup_families([with_detail(p, details.get(p.key)) for p in policies], part.out)

    @staticmethod
    async def _tasks(part: Part) -> None:
        task_families(parse_result(parse_background_tasks, await part.get()), part.out, time.time())

    @staticmethod
    async def _archive(part: Part) -> None:
        archive_families(parse_result(parse_archive_executions, await part.get()), part.out)

    @staticmethod
    async def _retention(part: Part) -> None:
        part.out.gauge(RETENTION, parse_result(parse_retention_enabled, await part.get()))


def with_detail(listed: CleanupPolicy, result: ApiResult | None) -> CleanupPolicy:
    """The listed policy completed by its single-policy answer; as listed when there is none (removed since)."""
    if result is None:
        return listed
    detail = parse_result(lambda body: parse_cleanup_policy(body, listed.kind), result)
    return merge_policy_detail(listed, detail) if detail is not None else listed


def pud_families(pud: PudStatus, out: Emitter) -> None:
    out.touch(*PUD_FAMILIES)
    out.state(PUD_STATUS, pud.status)
    out.gauge(PUD_DRY_RUN, pud.dry_run)
    out.gauge(PUD_STARTED, pud.started)
    out.gauge(PUD_LAST_UPDATED, pud.last_updated)
    out.gauge(PUD_DURATION, pud.duration)
    out.gauge(PUD_DIRECTORIES_PROCESSED, pud.directories_processed)
    out.gauge(PUD_DIRECTORIES, pud.directories)
    out.gauge(PUD_BINARIES_PROCESSED, pud.binaries_processed)
    out.gauge(PUD_BINARIES_CLEANED, pud.binaries_cleaned)
    out.gauge(PUD_CLEANED_BYTES, pud.bytes_cleaned)
    if pud.last_directory is not None:
        out.gauge(PUD_LAST_DIRECTORY_BINARIES, pud.last_directory.binaries_processed)


def cleanup_families(policies: list[CleanupPolicy], out: Emitter) -> None:
    out.touch(*CLEANUP_FAMILIES)
    for p in policies:
        labels = {"kind": p.kind, "policy": p.key}
        out.gauge(CLEANUP_ENABLED, p.enabled, **labels)
        out.gauge(CLEANUP_MAX_DURATION, p.max_duration, **labels)
        out.gauge(CLEANUP_SCHEDULED, p.scheduled, **labels)
        out.gauge(CLEANUP_NEXT_RUN, p.next_run, **labels)
        out.gauge(CLEANUP_LAST_RUN, p.last_run_time, **labels)
        if p.last_run_status:
            out.info(CLEANUP_LAST_RUN_INFO, status=p.last_run_status, **labels)
        out.gauge(CLEANUP_LAST_RUN_ITEMS, p.last_run_items, **labels)


def task_families(tasks: list[BackgroundTask], out: Emitter, now: float) -> None:
    out.touch(*TASK_FAMILIES)
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, float] = {}
    for task in tasks:
        states = counts.setdefault(task.task_type, dict.fromkeys(TASK_STATES, 0))
        states[task.state] = states.get(task.state, 0) + 1
        if task.state == "running" and task.started is not None:
            oldest[task.task_type] = min(oldest.get(task.task_type, task.started), task.started)
    for task_type, states in sorted(counts.items()):
        for state, count in states.items():
            out.gauge(BACKGROUND_TASKS, count, task_type=task_type, state=state)
    out.gauge(GC_RUNNING, any(t.is_gc and t.state == "running" for t in tasks))
    for task_type, started in sorted(oldest.items()):
        out.gauge(TASK_OLDEST_STARTED, started, task_type=task_type)
        out.gauge(TASK_OLDEST_RUNNING, max(0.0, now - started), task_type=task_type)


def archive_families(executions: list[ArchiveExecution], out: Emitter) -> None:
    out.touch(*ARCHIVE_FAMILIES)
    for e in executions:
        out.state(ARCHIVE_STATUS, e.state, policy=e.policy)
        out.gauge(ARCHIVE_STARTED, e.started, policy=e.policy)
        out.gauge(ARCHIVE_FINISHED, e.finished, policy=e.policy)
        for result, artifacts, size in (("total", e.artifacts_total, e.bytes_total),
                                        ("completed", e.artifacts_completed, e.bytes_completed),
                                        ("failed", e.artifacts_failed, e.bytes_failed)):
            out.gauge(ARCHIVE_ARTIFACTS, artifacts, policy=e.policy, result=result)
            out.gauge(ARCHIVE_BYTES, size, policy=e.policy, result=result)
        out.gauge(ARCHIVE_PROGRESS, e.progress_ratio, policy=e.policy)


# -- parsers -----------------------------------------------------------------------------------


# PUD
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
        value = value.get("message") or value.get("error") or value.get("info") or value
    return one_line(value if isinstance(value, str) else json_text(value), 300)


def _last_directory(directory: object) -> PudDirectory | None:
    if not isinstance(directory, dict):
        return None
    started, last_updated, _ = _timing(directory)
    return PudDirectory(
        name=scalar_text(directory.get("name")),
        status=lower_or_empty(directory.get("status")),
        binaries_processed=parse_count(directory.get("binariesProcessed")),
        binaries_cleaned=parse_count(directory.get("binariesCleaned")),
        bytes_cleaned=parse_count(directory.get("bytesCleaned")),
        started=started,
        last_updated=last_updated,
    )


def parse_pud_status(body: object) -> PudStatus:
    """The 200 answer of GET .../storage/prune/status (2.3.3.2)."""
    if not isinstance(body, dict) or "status" not in body:
        raise UnexpectedShape("PUD status", "an object with 'status'", body)
    started, last_updated, duration = _timing(body)
    done, total = parse_progress(body.get("progress"))
    report = body.get("report")
    if not isinstance(report, dict):
        report = {}
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
        last_directory=_last_directory(body.get("lastHandledDirectory")),
        error=_error_text(body.get("error")),
    )


def is_never_run(body: object) -> bool:
    """The 412 answer {"info": "No Prune task found"}: PUD never ran on this filestore."""
    text = body if isinstance(body, str) else json_text(body) if body is not None else ""
    return _NO_PRUNE_TASK in text.lower()


def pud_from_result(result: ApiResult) -> PudStatus | None:
    """The PUD state from one call; ``None`` where the JPD has no PUD (before 7.72, editions without it)."""
    if result.unsupported:
        return None
    if result.status == 412 and result.outcome in (Outcome.SUCCESS, Outcome.BAD_RESPONSE):
        if is_never_run(result.body):
            return NEVER_RUN
        text = result.body if isinstance(result.body, str) else json_text(result.body)
        raise CollectionError(Outcome.BAD_RESPONSE, f"{result.endpoint}: HTTP 412: {one_line(text or 'empty')}")
    return parse_result(parse_pud_status, result)


# cleanup policies
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
        raise UnexpectedShape("cleanup policy", "a JSON object", entry)
    key = scalar_text(entry.get("key") or entry.get("policyKey"))
    if not key:
        return None
    minutes = parse_count(entry.get("durationInMinutes"))
    cron = entry.get("cronExp")
    last = entry.get("lastRunData")
    if not isinstance(last, dict):
        last = {}
    dry_run = last.get("dryRun")
    return CleanupPolicy(
        kind=kind,
        key=key,
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
        raise UnexpectedShape("cleanup policies", "a JSON array or {\"policies\": [...]}", body)
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


# background tasks
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
    text = scalar_text(value).strip()
    return text.rsplit(".", 1)[-1] if text else "unknown"


def parse_background_tasks(body: object) -> list[BackgroundTask]:
    """GET /api/tasks (2.3.32): {"tasks": [...]}; running tasks carry "started" (older: "start_time")."""
    if isinstance(body, dict) and isinstance(body.get("tasks"), list):
        entries = body["tasks"]
    elif isinstance(body, list):
        entries = body
    else:
        raise UnexpectedShape("background tasks", "{\"tasks\": [...]}", body)
    tasks = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise UnexpectedShape("background tasks", "JSON objects", entry)
        started = entry.get("started")
        if is_unavailable(started):
            started = entry.get("start_time")
        tasks.append(BackgroundTask(
            task_type=short_type(entry.get("type")),
            state=lower_or_empty(entry.get("state")) or "unknown",
            started=parse_iso_timestamp(started),
            node_id=scalar_text(entry.get("nodeId")),
        ))
    return tasks


# archive policies and retention
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


def _archive_entries(body: object) -> list[Any]:
    if isinstance(body, dict):
        found = next((v for k, v in body.items() if isinstance(v, list) and k.lower() in
                      ("executions", "items", "data", "results")), None)
        if found is None:
            raise UnexpectedShape("archive executions", "a JSON array", body)
        body = found
    if not isinstance(body, list):
        raise UnexpectedShape("archive executions", "a JSON array", body)
    return body


def parse_archive_execution(raw: object) -> ArchiveExecution:
    if not isinstance(raw, dict):
        raise UnexpectedShape("archive executions", "JSON objects", raw)
    entry = _folded(raw)
    progress = parse_count(entry.get("progresspercentage"))
    return ArchiveExecution(
        policy=scalar_text(entry.get("policykey") or entry.get("policyname") or entry.get("key")),
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


def parse_archive_executions(body: object) -> list[ArchiveExecution]:
    """Last execution per policy (2.6.17). The list shows the latest first; the newest start wins."""
    latest: dict[str, ArchiveExecution] = {}
    for raw in _archive_entries(body):
        execution = parse_archive_execution(raw)
        known = latest.get(execution.policy)
        if known is None or (execution.started or 0) > (known.started or 0):
            latest[execution.policy] = execution
    return list(latest.values())


def parse_retention_enabled(body: object) -> bool:
    """GET /api/v1/bundle/retention/config/enable (2.16.1): {"enable": true|false}."""
    if not isinstance(body, dict) or "enable" not in body:
        raise UnexpectedShape("retention status", "{\"enable\": true|false}", body)
    return _as_bool(body["enable"])
