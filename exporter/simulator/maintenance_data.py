"""Maintenance data a simulated JPD serves (``scenario.areas["maintenance"]``).

PUD status, cleanup policies, background tasks, archive policy executions
and the retention service. A scenario without this area answers 404 on all
of these endpoints (OSS, JCR); a part set to ``None`` answers 404 on its own
endpoint, like a version or edition without it. Times are relative to the
moment the scenario is built, so tests can compute the expected values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "maintenance"
MINUTE = 60
HOUR = 3600
DAY = 86400
GB = 1024**3

GC_JOB = "org.artifactory.storage.binstore.service.BinaryStoreGarbageCollectorJob"
GEMS_JOB = "org.artifactory.addon.gems.index.GemsVirtualIndexHandler$UpdateIndicesJob"
VIRTUAL_CACHE_JOB = "org.artifactory.repo.cleanup.VirtualCacheCleanupJob"
ARTIFACT_CLEANUP_JOB = "org.artifactory.repo.cleanup.ArtifactCleanupJob"
REPLICATION_JOB = "org.artifactory.addon.replication.core.job.LocalReplicationJob"


@dataclass
class PudDirectory:
    name: str
    status: str
    binaries_processed: int
    binaries_cleaned: int
    bytes_cleaned: int
    started: float
    last_updated: float


@dataclass
class PudRun:
    status: str  # running, stopped, finished, error
    dry_run: bool
    started: float
    last_updated: float
    directories_done: int
    binaries_processed: int
    binaries_cleaned: int
    bytes_cleaned: int
    directories_total: int = 256
    last_directory: PudDirectory | None = None
    error: str | None = None


@dataclass
class CleanupPolicy:
    key: str
    enabled: bool
    cron: str | None
    duration_minutes: int | None
    description: str = ""
    project_key: str = ""
    package_types: list[str] = field(default_factory=lambda: ["docker"])
    created_before_months: int | None = 12
    keep_last: int | None = None
    next_run: float | None = None
    last_run_status: str | None = None
    last_run_time: float | None = None
    last_run_items: int = 0
    last_run_id: int = 1


@dataclass
class BackgroundTask:
    id: str
    type: str  # full class name, as Artifactory reports it
    state: str  # scheduled, running, stopped, cancelled
    started: float | None = None
    description: str = ""
    node_id: str = "art1"


@dataclass
class ArchiveExecution:
    policy_key: str
    state: str  # PENDING, IN_PROGRESS, IN_PROGRESS_WITH_ERRORS, COMPLETE, COMPLETE_WITH_ERRORS, FAILED
    started: float
    finished: float | None
    completed: int
    failed: int
    total_bytes: int
    failed_bytes: int = 0


@dataclass
class MaintenanceArea:
    #: None: PUD never ran (412 "No Prune task found")
    pud: PudRun | None = None
    #: False: no PUD endpoint (before 7.72)
    pud_supported: bool = True
    #: None: the endpoint is absent (before 7.98.2 / 7.104.2)
    package_policies: list[CleanupPolicy] | None = None
    bundle_policies: list[CleanupPolicy] | None = None
    tasks: list[BackgroundTask] | None = None
    #: None: no archive (Cold Storage) feature, i.e. not Enterprise
    archive_executions: list[ArchiveExecution] | None = None
    #: None: no retention service endpoint
    retention_enabled: bool | None = None


def area(scenario: Scenario) -> MaintenanceArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, MaintenanceArea) else None


def _now(now: float | None) -> float:
    # Whole seconds keep the millisecond fields exact for tests.
    return float(int(time.time() if now is None else now))


def _scheduled_tasks(nodes: tuple[str, ...]) -> list[BackgroundTask]:
    tasks = []
    for i, node in enumerate(nodes):
        tasks += [
            BackgroundTask(f"artifactory.UpdateIndicesJob#d7321feb-6fd9-4e27-8f0e-95413{i:07d}", GEMS_JOB,
                           "scheduled", description="Gems Virtual Repositories Index Calculator", node_id=node),
            BackgroundTask(f"artifactory.VirtualCacheCleanupJob#82bb1514-ea34-4a71-940d-78a61{i:07d}",
                           VIRTUAL_CACHE_JOB, "scheduled", node_id=node),
            BackgroundTask(f"artifactory.BinaryStoreGarbageCollectorJob#039664ac-990d-4a32-85e1-decd0{i:07d}",
                           GC_JOB, "scheduled", description="Binaries Garbage Collector", node_id=node),
        ]
    return tasks


def running_gc(started: float) -> BackgroundTask:
    """The binaries garbage collection, running since ``started``."""
    return BackgroundTask("artifactory.BinaryStoreGarbageCollectorJob#5f1e2c3a-1b2c-4d5e-8f90-0a1b2c3d4e5f",
                          GC_JOB, "running", started=started, description="Binaries Garbage Collector")


def healthy_area(now: float | None = None) -> MaintenanceArea:
    """A finished PUD, a scheduled package policy, no GC running, one complete archive run."""
    t = _now(now)
    return MaintenanceArea(
        pud=PudRun("finished", False, t - 7 * DAY, t - 7 * DAY + 3 * HOUR, 256, 2_431_220, 1_204, 3 * GB),
        package_policies=[
            CleanupPolicy("docker-keep-last-10", True, "0 0 2 * * ?", 120, keep_last=10, created_before_months=None,
                          description="keep the last 10 tags"),
        ],
        bundle_policies=[],
        tasks=_scheduled_tasks(("art1", "art2")),
        archive_executions=[
            ArchiveExecution("archive-old-builds", "COMPLETE", t - 2 * DAY, t - 2 * DAY + 600, 120, 0, 40 * GB),
        ],
        retention_enabled=True,
    )


def populate_maintenance(scenario: Scenario, now: float | None = None, pud: str = "running") -> None:
    """PUD running (87 of 256), never run or in error; cleanup policies of both kinds; GC running."""
    t = _now(now)
    runs = {
        "running": PudRun(
            "running", False, t - 2 * HOUR, t - 30, 87, 1_203_114, 4_210, int(12.5 * GB),
            last_directory=PudDirectory("56", "running", 9_812, 31, 87_654_321, t - 95, t - 30),
        ),
        "error": PudRun(
            "error", True, t - 5 * HOUR, t - 4 * HOUR, 12, 150_020, 0, 0,
            last_directory=PudDirectory("0b", "error", 3, 0, 0, t - 4 * HOUR - 60, t - 4 * HOUR),
            error="Failed to list binaries of directory 0b: Access Denied (Service: S3, Status Code: 403)",
        ),
        "never_run": None,
    }
    scenario.areas[AREA] = MaintenanceArea(
        pud=runs[pud],
        package_policies=[
            CleanupPolicy("docker-keep-last-10", True, "0 0 2 * * ?", 120, keep_last=10, created_before_months=None,
                          description="keep the last 10 tags", package_types=["docker"]),
            # Enabled but without a schedule: it never runs unless triggered by hand.
            CleanupPolicy("maven-snapshots-90d", True, None, 60, package_types=["maven"], created_before_months=3),
            CleanupPolicy("npm-old", False, "0 30 3 ? * SUN", None, package_types=["npm"], project_key="web"),
        ],
        bundle_policies=[
            CleanupPolicy("rb-older-than-2y", True, "0 0 2 * * ?", 60, created_before_months=24,
                          next_run=t + 5 * HOUR, last_run_status="COMPLETED", last_run_time=t - 19 * HOUR,
                          last_run_items=14, last_run_id=7),
            CleanupPolicy("rb-project-x", False, "0 15 10 * * ?", 30, project_key="projx", next_run=t + 9 * HOUR),
            CleanupPolicy("rb-manual", True, None, None, last_run_status="FAILED", last_run_time=t - 3 * DAY,
                          last_run_id=3),
        ],
        tasks=[
            *_scheduled_tasks(("art1", "art2")),
            running_gc(t - 25 * MINUTE),
            BackgroundTask("artifactory.LocalReplicationJob#a1", REPLICATION_JOB, "running", started=t - 3 * MINUTE),
            BackgroundTask("artifactory.LocalReplicationJob#a2", REPLICATION_JOB, "running", started=t - 40 * MINUTE,
                           node_id="art2"),
            BackgroundTask("artifactory.ArtifactCleanupJob#c1", ARTIFACT_CLEANUP_JOB, "cancelled"),
        ],
        archive_executions=[
            # Latest first, as the documents say.
            ArchiveExecution("archive-docker", "IN_PROGRESS", t - 20 * MINUTE, None, 310, 0, 9 * GB),
            ArchiveExecution("archive-old-builds", "COMPLETE_WITH_ERRORS", t - 26 * HOUR, t - 25 * HOUR, 1_180, 20,
                             40 * GB, failed_bytes=GB),
            ArchiveExecution("archive-old-builds", "COMPLETE", t - 50 * HOUR, t - 49 * HOUR, 900, 0, 30 * GB),
        ],
        retention_enabled=True,
    )


def _scenario(name: str, description: str, now: float | None, pud: str) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = name
    scenario.description = description
    populate_maintenance(scenario, now, pud=pud)
    return scenario


def maintenance_scenario(now: float | None = None) -> Scenario:
    return _scenario("maintenance", "PUD running (87 of 256), cleanup policies of both kinds, GC running", now,
                     "running")


def pud_never_run_scenario(now: float | None = None) -> Scenario:
    return _scenario("maintenance-pud-never-run", "PUD never ran (412 \"No Prune task found\"), GC running", now,
                     "never_run")


def pud_error_scenario(now: float | None = None) -> Scenario:
    return _scenario("maintenance-pud-error", "PUD stopped with an error, GC running", now, "error")
