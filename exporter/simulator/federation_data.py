"""Federation data a simulated JPD serves (``scenario.areas["federation"]``).

``mode`` says which federation service the JPD runs: "rtfs" (the standalone
Federation service) answers the RTFS monitoring endpoints and refuses the
legacy ones with a plain-text message; "legacy" answers the legacy endpoints
and 404 on the RTFS ones. Member states are spelled the way the active
service spells them (RTFS: HEALTHY, DELAYED, PENDING_FS, FULL_SYNC_RUNNING,
ERROR, DISABLED, N/A; legacy v2: HEALTHY, PENDING_FS, FS_RUNNING,
OUT_OF_SYNC, EXHAUSTED, DISABLED). Scenarios without the area answer 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "federation"
RTFS = "rtfs"
LEGACY = "legacy"

#: the most severe member state decides a Federation's state in stateSummary
SEVERITY = ("ERROR", "DISABLED", "N/A", "PENDING_FS", "FULL_SYNC_RUNNING", "DELAYED", "HEALTHY")
SUMMARY_NAME = {"N/A": "NOT_AVAILABLE"}


@dataclass
class FederationMember:
    url: str
    repo_key: str
    state: str
    lag_ms: int = 0
    queued_events: int = 0
    in_lag: bool = False
    supported: bool = True


@dataclass
class FederatedRepo:
    key: str
    members: list[FederationMember]
    failed_binary_tasks: int = 0
    inconsistent: bool = False
    #: legacy federation/state status: SYNCING, FULL_SYNC_RUNNING, OUT_OF_SYNC, DISABLED
    legacy_state: str = "SYNCING"
    priority: str = "STANDARD"

    def summary_state(self) -> str:
        states = {m.state for m in self.members} or {"HEALTHY"}
        worst = next((s for s in SEVERITY if s in states), "HEALTHY")
        return SUMMARY_NAME.get(worst, worst)


@dataclass
class FederationArea:
    mode: str
    local_url: str
    repos: list[FederatedRepo] = field(default_factory=list)
    _index: dict[str, FederatedRepo] = field(default_factory=dict, init=False, repr=False, compare=False)

    def find(self, key: str) -> FederatedRepo | None:
        if len(self._index) != len(self.repos):
            self._index = {repo.key: repo for repo in self.repos}
        return self._index.get(key)


def area(scenario: Scenario) -> FederationArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, FederationArea) else None


LOCAL_URL = "https://art-eu.example.com/artifactory"
US = "https://art-us.example.com/artifactory"
AP = "https://art-ap.example.com/artifactory"


def _ensure_repos(scenario: Scenario, repos: list[FederatedRepo]) -> None:
    """Federated repositories are repositories too (storage summary, repository list)."""
    from exporter.simulator.scenarios import MB, Repo

    known = {r.key for r in scenario.repos}
    for i, repo in enumerate(repos):
        if repo.key not in known:
            scenario.repos.append(Repo(repo.key, "FEDERATED", "Generic", (i + 1) * 64 * MB, 100 * (i + 1), 10))


def healthy_area() -> FederationArea:
    """One healthy Federation on the Federation service (its repository, libs-federated, is a standard one)."""
    return FederationArea(RTFS, LOCAL_URL, [
        FederatedRepo("libs-federated", [FederationMember(US, "libs-federated", "HEALTHY", lag_ms=250),
                                         FederationMember(AP, "libs-federated", "HEALTHY", lag_ms=400)]),
    ])


def populate_rtfs(scenario: Scenario) -> None:
    """Every RTFS state, lag, queued events, inconsistent repositories, failed binary tasks over pages."""
    repos = [
        FederatedRepo("fed-maven-eu", [
            FederationMember(US, "fed-maven-us", "HEALTHY", lag_ms=120),
            FederationMember(AP, "fed-maven-ap", "DELAYED", lag_ms=95_000, queued_events=42, in_lag=True),
        ], failed_binary_tasks=3),
        FederatedRepo("fed-docker", [
            FederationMember(US, "fed-docker", "PENDING_FS", lag_ms=0, in_lag=True),
            FederationMember(AP, "fed-docker", "HEALTHY", lag_ms=900, queued_events=1),
        ], inconsistent=True),
        FederatedRepo("fed-npm", [FederationMember(US, "fed-npm", "FULL_SYNC_RUNNING", lag_ms=4_000,
                                                   queued_events=7)]),
        FederatedRepo("fed-generic", [
            FederationMember(US, "fed-generic", "ERROR", lag_ms=3_600_000, queued_events=1_234, in_lag=True),
            FederationMember(AP, "fed-generic", "DISABLED", supported=False),
        ], failed_binary_tasks=2_500),
        FederatedRepo("fed-pypi", [FederationMember(US, "fed-pypi", "N/A", supported=False)]),
        FederatedRepo("fed-helm", [FederationMember(US, "fed-helm", "DISABLED")], priority="HIGH"),
        FederatedRepo("libs-federated", [FederationMember(US, "libs-federated", "HEALTHY", lag_ms=250),
                                         FederationMember(AP, "libs-federated", "HEALTHY", lag_ms=400)],
                      inconsistent=True),
        FederatedRepo("fed-go", [FederationMember(US, "fed-go", "HEALTHY", lag_ms=10)]),
    ]
    scenario.areas[AREA] = FederationArea(RTFS, LOCAL_URL, repos)
    _ensure_repos(scenario, repos)


def populate_legacy(scenario: Scenario) -> None:
    """The legacy federation: v2 member states, mirrors lag, federation sync states."""
    repos = [
        FederatedRepo("fed-maven-eu", [
            FederationMember(US, "fed-maven-us", "HEALTHY", lag_ms=1_500, queued_events=3),
            FederationMember(AP, "fed-maven-ap", "OUT_OF_SYNC", lag_ms=5_200, queued_events=40),
        ], failed_binary_tasks=3, legacy_state="OUT_OF_SYNC"),
        FederatedRepo("fed-docker", [FederationMember(US, "fed-docker", "PENDING_FS")], legacy_state="OUT_OF_SYNC",
                      inconsistent=True),
        FederatedRepo("fed-npm", [FederationMember(US, "fed-npm", "FS_RUNNING", lag_ms=800)],
                      legacy_state="FULL_SYNC_RUNNING"),
        FederatedRepo("fed-generic", [FederationMember(US, "fed-generic", "EXHAUSTED", lag_ms=7_200_000,
                                                       queued_events=900)],
                      failed_binary_tasks=2_500, legacy_state="OUT_OF_SYNC"),
        FederatedRepo("fed-helm", [FederationMember(US, "fed-helm", "DISABLED")], legacy_state="DISABLED"),
        FederatedRepo("libs-federated", [FederationMember(US, "libs-federated", "HEALTHY", lag_ms=250)],
                      inconsistent=True),
    ]
    scenario.areas[AREA] = FederationArea(LEGACY, LOCAL_URL, repos)
    _ensure_repos(scenario, repos)


_LARGE_STATES = ("HEALTHY", "HEALTHY", "HEALTHY", "DELAYED", "HEALTHY", "PENDING_FS", "HEALTHY", "ERROR",
                 "HEALTHY", "FULL_SYNC_RUNNING", "HEALTHY", "N/A", "HEALTHY", "DISABLED")


def populate_large(scenario: Scenario, count: int = 500, members: int = 3) -> None:
    """``count`` federated repositories with ``members`` remote members each, on the Federation service.

    One repository has more failed binary tasks than the collector reads by default (a bounded count).
    """
    keys = [r.key for r in scenario.repos if r.repo_type == "FEDERATED"][:count]
    keys += [f"fed-large-{i:05d}" for i in range(len(keys), count)]
    hosts = [f"https://jpd-{chr(ord('a') + m)}.example.com/artifactory" for m in range(members)]
    repos = []
    for i, key in enumerate(keys):
        member_list = []
        for m, host in enumerate(hosts):
            state = _LARGE_STATES[(i * members + m) % len(_LARGE_STATES)]
            member_list.append(FederationMember(host, key, state, lag_ms=(i * 37 + m * 1000) % 120_000,
                                                queued_events=(i + m) % 11, in_lag=state == "DELAYED",
                                                supported=state != "N/A"))
        failed = 25_000 if i == 0 else 1_500 if i % 50 == 25 else i % 7
        repos.append(FederatedRepo(key, member_list, failed_binary_tasks=failed, inconsistent=i % 100 == 1))
    scenario.areas[AREA] = FederationArea(RTFS, LOCAL_URL, repos)
    _ensure_repos(scenario, repos)


def rtfs_scenario(now: float | None = None) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = "federation-rtfs"
    scenario.description = "Federation service (RTFS): every member state; the legacy endpoints refuse"
    populate_rtfs(scenario)
    return scenario


def legacy_scenario(now: float | None = None) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = "federation-legacy"
    scenario.description = "legacy federation service: v2 member states, mirrors lag; RTFS endpoints absent"
    scenario.version, scenario.revision = "7.111.4", "81104900"
    populate_legacy(scenario)
    return scenario
