"""Replication data a simulated JPD serves (``scenario.areas["replication"]``).

Scenarios without this area answer 404 on the replication endpoints, like an
edition without replication. Timestamps are relative to the start of the
simulator's day, so tests can compute the expected values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "replication"
HOUR = 3600
#: the statuses Artifactory documents for a replication (2.3.1.5)
STATUSES = ("never_run", "incomplete", "error", "warn", "ok", "inconsistent")


@dataclass
class ReplicationTarget:
    url: str  # as configured; may carry user-info, which the exporter must never show
    remote_repo: str
    status: str
    last_completed: float | None
    enabled: bool = True
    event_based: bool = False
    username: str = "replicator"
    password: str = "Repl1cat0r-s3cret"


@dataclass
class ReplicatedRepo:
    key: str
    status: str
    last_completed: float | None
    targets: list[ReplicationTarget]
    pull: bool = False  # a remote repository pulling; push otherwise
    cron: str = "0 0 */2 * * ?"


@dataclass
class ReplicationArea:
    repos: list[ReplicatedRepo] = field(default_factory=list)
    block_push: bool = False
    block_pull: bool = False
    _index: dict[str, ReplicatedRepo] = field(default_factory=dict, init=False, repr=False, compare=False)

    def find(self, key: str) -> ReplicatedRepo | None:
        if len(self._index) != len(self.repos):  # large scenarios: no linear search per request
            self._index = {repo.key: repo for repo in self.repos}
        return self._index.get(key)


def area(scenario: Scenario) -> ReplicationArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, ReplicationArea) else None


def _dr(host: str, repo: str) -> str:
    return f"https://{host}/artifactory/{repo}"


def healthy_area(day: float) -> ReplicationArea:
    """A push replication and a pull replication, both fine."""
    return ReplicationArea(repos=[
        ReplicatedRepo("libs-release-local", "ok", day - 1 * HOUR,
                       [ReplicationTarget(_dr("dr.example.com", "libs-release-local"), "libs-release-local", "ok",
                                          day - 1 * HOUR)]),
        ReplicatedRepo("maven-remote", "ok", day - 2 * HOUR,
                       [ReplicationTarget(_dr("central.example.com", "maven-central"), "maven-central", "ok",
                                          day - 2 * HOUR)], pull=True),
    ])


def populate_replication(scenario: Scenario, day: float) -> None:
    """Every documented status, a multi-push repository with three targets, push replication blocked."""
    scenario.areas[AREA] = ReplicationArea(
        block_push=True,
        repos=[
            ReplicatedRepo("libs-release-local", "error", day - 1 * HOUR, [
                ReplicationTarget(_dr("dr-eu.example.com", "libs-release-local"), "libs-release-local", "ok",
                                  day - 1 * HOUR, event_based=True),
                # A URL with user-info: the exporter must strip it.
                ReplicationTarget("https://deployer:Sup3rS3cret@dr-us.example.com/artifactory/libs-release-local",
                                  "libs-release-local", "error", day - 26 * HOUR),
                ReplicationTarget(_dr("dr-ap.example.com", "libs-release-dr"), "libs-release-dr", "never_run", None,
                                  enabled=False),
            ]),
            ReplicatedRepo("libs-snapshot-local", "ok", day - 2 * HOUR, [
                ReplicationTarget(_dr("dr-eu.example.com", "libs-snapshot-local"), "libs-snapshot-local", "ok",
                                  day - 2 * HOUR, event_based=True)]),
            ReplicatedRepo("docker-local", "never_run", None, [
                ReplicationTarget(_dr("dr-eu.example.com", "docker-local"), "docker-local", "never_run", None)]),
            ReplicatedRepo("npm-local", "incomplete", day - 48 * HOUR, [
                ReplicationTarget(_dr("dr-eu.example.com", "npm-local"), "npm-local", "incomplete",
                                  day - 48 * HOUR)]),
            ReplicatedRepo("generic-local", "inconsistent", day - 5 * HOUR, [
                ReplicationTarget(_dr("dr-eu.example.com", "generic-local"), "generic-local", "inconsistent",
                                  day - 5 * HOUR)]),
            ReplicatedRepo("pypi-local", "warn", day - 3 * HOUR, [
                ReplicationTarget(_dr("dr-eu.example.com", "pypi-local"), "pypi-local", "warn", day - 3 * HOUR)]),
            ReplicatedRepo("maven-remote", "ok", day - 4 * HOUR, [
                ReplicationTarget(_dr("central.example.com", "maven-central"), "maven-central", "ok",
                                  day - 4 * HOUR)], pull=True),
        ],
    )


def populate_large(scenario: Scenario, day: float, count: int = 2000) -> None:
    """``count`` replicated repositories: every tenth pushes to three targets, statuses cycle."""
    candidates = [r for r in scenario.repos if r.repo_type in ("LOCAL", "REMOTE")][:count]
    repos = []
    for i, repo in enumerate(candidates):
        status = STATUSES[i % len(STATUSES)]
        last = None if status == "never_run" else day - (i % 48) * HOUR
        pull = repo.repo_type == "REMOTE"
        hosts = ("dr-eu.example.com", "dr-us.example.com", "dr-ap.example.com") if i % 10 == 0 and not pull \
            else ("dr-eu.example.com",)
        targets = [ReplicationTarget(_dr(host, repo.key), repo.key, status, last) for host in hosts]
        repos.append(ReplicatedRepo(repo.key, status, last, targets, pull=pull))
    scenario.areas[AREA] = ReplicationArea(repos=repos)


def replication_scenario(now: float | None = None) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = "replication"
    scenario.description = "every replication status, a multi-push repository with three targets, push blocked"
    populate_replication(scenario, scenarios.today_midnight(now))
    return scenario
