"""Named scenarios: the data a simulated JPD serves.

Values are deterministic (dates relative to the simulator's start day) so
tests can assert numbers. Each API area keeps its data in its own field; an
area whose field is ``None`` is absent on that edition and its routes answer
404 like the real server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.simulator import (
    distribution_data,
    federation_data,
    maintenance_data,
    replication_data,
    security_data,
    services_data,
    webhooks_data,
    workers_data,
)

GB = 1024**3
MB = 1024**2
DAY = 86400


def today_midnight(now: float | None = None) -> float:
    now = time.time() if now is None else now
    return now - now % DAY


@dataclass
class Repo:
    key: str
    repo_type: str  # LOCAL, REMOTE, VIRTUAL, FEDERATED (as Artifactory spells them)
    package_type: str  # Maven, Docker, ... (as Artifactory spells them)
    used_bytes: int
    files: int
    folders: int


@dataclass
class Service:
    service_id: str
    node_id: str
    state: str = "HEALTHY"
    message: str = "OK"


@dataclass
class License:
    type: str
    valid_through: float | str  # a timestamp, or a literal such as "N/R"
    licensed_to: str
    node_id: str | None = None
    node_url: str | None = None
    license_hash: str = "0" * 40


@dataclass
class Storage:
    binaries_count: int
    binaries_size: int
    artifacts_size: int
    artifacts_count: int
    items_count: int
    optimization_pct: float
    storage_type: str = "filesystem"
    storage_dir: str = "/var/opt/jfrog/artifactory/data/filestore"
    total_space: int | None = None  # None: not reported (Cloud)
    used_space: int | None = None
    free_space: int | None = None


@dataclass
class Scenario:
    name: str
    description: str
    version: str = "7.104.3"
    revision: str = "77403900"
    edition: str = "enterprise"
    #: answered by /api/system/licenses (HA list); None: 404
    ha_licenses: list[License] | None = None
    #: answered by /api/system/license and, on JCR, as one object by /licenses; None: 404
    license: License | None = None
    licenses_as_object: bool = False
    router_nodes: list[str] = field(default_factory=lambda: ["art1"])
    services: list[Service] = field(default_factory=list)
    ready: bool = True
    storage: Storage | None = None
    repos: list[Repo] = field(default_factory=list)
    #: further API areas keep their data here, keyed by area name
    areas: dict[str, Any] = field(default_factory=dict)

    def node_id(self) -> str:
        return self.router_nodes[0]


def _services(nodes: list[str]) -> list[Service]:
    out = []
    for i, node in enumerate(nodes):
        for svc in ("jfrt", "jfac", "jfmd", "jfevt", "jffe", "jfob"):
            out.append(Service(f"{svc}@01h{i:02d}node{node}", node))
    return out


_STANDARD_REPOS = [
    Repo("libs-release-local", "LOCAL", "Maven", int(12.5 * GB), 48_213, 9_120),
    Repo("libs-snapshot-local", "LOCAL", "Maven", int(3.25 * GB), 20_004, 4_410),
    Repo("docker-local", "LOCAL", "Docker", int(38.75 * GB), 15_780, 2_301),
    Repo("npm-local", "LOCAL", "Npm", int(512 * MB), 3_311, 870),
    Repo("generic-local", "LOCAL", "Generic", int(1.5 * GB), 120, 12),
    Repo("pypi-local", "LOCAL", "Pypi", int(768 * MB), 2_044, 400),
    Repo("maven-remote", "REMOTE", "Maven", int(2.75 * GB), 30_552, 7_780),
    Repo("docker-remote", "REMOTE", "Docker", int(0.25 * GB), 220, 41),
    Repo("npm-remote", "REMOTE", "Npm", 0, 0, 0),
    Repo("libs-release", "VIRTUAL", "Maven", 0, 0, 0),
    Repo("docker", "VIRTUAL", "Docker", 0, 0, 0),
    Repo("libs-federated", "FEDERATED", "Maven", int(4 * GB), 5_003, 1_002),
]


def _storage(total: int = int(204.28 * GB), used: int = int(32.22 * GB)) -> Storage:
    # The documented sample's figures, so tests compare against the documents.
    return Storage(
        binaries_count=125_726,
        binaries_size=int(3.48 * GB),
        artifacts_size=int(59.77 * GB),
        artifacts_count=2_084_408,
        items_count=2_176_580,
        optimization_pct=5.82,
        total_space=total,
        used_space=used,
        free_space=total - used,
    )


def healthy(now: float | None = None) -> Scenario:
    day = today_midnight(now)
    nodes = ["art1", "art2"]
    return Scenario(
        name="healthy",
        description="Enterprise HA pair, everything healthy",
        ha_licenses=[
            License("Enterprise", day + 400 * DAY, "Acme Corp", "art1", "http://10.0.0.1:8091/artifactory",
                    "179b7ea384d0c4655a00dfac7285a21d986a17923"),
            License("Enterprise", day + 200 * DAY, "Acme Corp", "art2", "http://10.0.0.2:8091/artifactory",
                    "e10b8aa1d1dc5107439ce43debc6e65dfab71af3"),
        ],
        license=License("Enterprise", day + 400 * DAY, "Acme Corp"),
        router_nodes=nodes,
        services=_services(nodes),
        storage=_storage(),
        repos=list(_STANDARD_REPOS),
        areas={replication_data.AREA: replication_data.healthy_area(day),
               federation_data.AREA: federation_data.healthy_area(),
               maintenance_data.AREA: maintenance_data.healthy_area(now),
               workers_data.AREA: workers_data.healthy_area(now),
               services_data.AREA: services_data.healthy_area(),
               distribution_data.AREA: distribution_data.healthy_area(now),
               webhooks_data.AREA: webhooks_data.healthy_area(now),
               **security_data.healthy_areas(day, _STANDARD_REPOS)},
    )


def oss(now: float | None = None) -> Scenario:
    return Scenario(
        name="oss",
        description="Artifactory OSS: no license, Pro-only endpoints answer 404",
        version="7.77.5",
        revision="77705900",
        edition="oss",
        services=[Service("jfrt@01hoss", "art1"), Service("jfac@01hoss", "art1")],
        storage=_storage(),
        repos=[r for r in _STANDARD_REPOS if r.repo_type != "FEDERATED"],
        areas={**security_data.oss_areas(today_midnight(now), _STANDARD_REPOS),
               services_data.AREA: services_data.oss_area()},
    )


def jcr(now: float | None = None) -> Scenario:
    """The free JFrog Container Registry: /api/system/licenses answers a single object."""
    scenario = oss(now)
    scenario.name = "jcr"
    scenario.description = "JFrog Container Registry: single license object, no Pro features"
    scenario.edition = "jcr"
    scenario.license = License("JCR Edition", "N/A", "Acme Corp")
    scenario.licenses_as_object = True
    scenario.repos = [r for r in _STANDARD_REPOS if r.package_type in ("Docker", "Generic")]
    return scenario


def cloud(now: float | None = None) -> Scenario:
    storage = _storage()
    storage.storage_type = "cluster-s3-storage-v3"
    storage.storage_dir = "acme-artifactory/filestore"
    storage.total_space = storage.free_space = None
    storage.used_space = None
    return Scenario(
        name="cloud",
        description="JFrog Cloud: license \"N/R\", filestore sizes not reported",
        version="7.117.7",
        revision="81700900",
        edition="cloud",
        license=License("Enterprise+", "N/R", "Acme Corp"),
        services=_services(["cloud-node-1"]),
        router_nodes=["cloud-node-1"],
        storage=storage,
        repos=list(_STANDARD_REPOS),
        areas={**security_data.healthy_areas(today_midnight(now), _STANDARD_REPOS),
               services_data.AREA: services_data.ServicesArea(),
               webhooks_data.AREA: webhooks_data.healthy_area(now)},
    )


def degraded(now: float | None = None) -> Scenario:
    day = today_midnight(now)
    scenario = healthy(now)
    scenario.name = "degraded"
    scenario.description = ("a router service UNHEALTHY, readiness failing, JFConnect not ready, filestore 96 % full, "
                            "license expiring, garbage collection running, a certificate expired, a token expiring in "
                            "3 days, Release Bundle distributions failed and one stuck, webhook deliveries failing")
    scenario.ready = False
    services = services_data.area(scenario)
    assert services is not None
    services.jfconnect_ready = False
    scenario.areas[security_data.AREA] = security_data.degraded_security(day)
    scenario.areas[distribution_data.AREA] = distribution_data.failures_area(now)
    scenario.ha_licenses = [
        License("Enterprise", day + 5 * DAY, "Acme Corp", "art1", "http://10.0.0.1:8091/artifactory"),
        License("Enterprise", day + 20 * DAY, "Acme Corp", "art2", "http://10.0.0.2:8091/artifactory"),
    ]
    for svc in scenario.services:
        if svc.node_id == "art1" and svc.service_id.startswith("jffe"):
            svc.state = "UNHEALTHY"
            svc.message = "Get http://localhost:3000/health: dial tcp 127.0.0.1:3000: connect: connection refused"
        elif svc.node_id == "art1" and svc.service_id.startswith("jfrt"):
            svc.state = "UNHEALTHY_PEER"
            svc.message = "Service is healthy; there is at least one unhealthy service"
    total = int(204.28 * GB)
    scenario.storage = _storage(total=total, used=int(total * 0.96))
    webhooks_data.degrade(scenario)
    # Freeing space: a garbage collection started 10 minutes before the simulator (past 2 hours it runs long).
    maintenance = maintenance_data.area(scenario)
    assert maintenance is not None and maintenance.tasks is not None
    maintenance.tasks.append(maintenance_data.running_gc(float(int(time.time() if now is None else now)) - 600))
    return scenario


_PACKAGES = ("Maven", "Docker", "Npm", "Pypi", "Generic", "Go", "Helm", "Nuget")


def large_repos(count: int) -> list[Repo]:
    """``count`` repositories with deterministic sizes; every tenth is remote, every 20th federated."""
    repos = []
    for i in range(count):
        package = _PACKAGES[i % len(_PACKAGES)]
        kind = "FEDERATED" if i % 20 == 7 else "REMOTE" if i % 10 == 3 else "LOCAL"
        files = (i * 7919) % 50_000
        repos.append(
            Repo(f"{package.lower()}-{kind.lower()}-{i:05d}", kind, package, files * 13_107 + (i % 97) * MB,
                 files, files // 10)
        )
    return repos


def large(now: float | None = None, repos: int = 10_000) -> Scenario:
    scenario = healthy(now)
    scenario.name = "large"
    scenario.description = f"{repos:,} repositories"
    scenario.repos = large_repos(repos)
    # Everything grows with the repositories (at 10,000: 2,000 replicated, 500 federated, 200 workers,
    # 1,000 webhook subscriptions),
    # so the benchmarks can show how cost scales.
    replication_data.populate_large(scenario, today_midnight(now), count=repos // 5)
    federation_data.populate_large(scenario, count=max(1, repos // 20))
    workers_data.populate_large(scenario, now, count=max(2, repos // 50))
    security_data.populate_large(scenario, today_midnight(now), users=repos // 2, tokens=repos * 3 // 10)
    distribution_data.populate_large(scenario, now, count=repos)
    webhooks_data.populate_large(scenario, now, count=max(4, repos // 10))
    return scenario


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "healthy": healthy,
    "oss": oss,
    "jcr": jcr,
    "cloud": cloud,
    "degraded": degraded,
    "large": large,
    "replication": replication_data.replication_scenario,
    "federation-rtfs": federation_data.rtfs_scenario,
    "federation-legacy": federation_data.legacy_scenario,
    "maintenance": maintenance_data.maintenance_scenario,
    "maintenance-pud-never-run": maintenance_data.pud_never_run_scenario,
    "maintenance-pud-error": maintenance_data.pud_error_scenario,
    "workers": workers_data.workers_scenario,
    "distribution": distribution_data.distribution_scenario,
}


def build(name: str, now: float | None = None, scale: int | None = None) -> Scenario:
    """The named scenario; ``scale`` sets the number of repositories of ``large``."""
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    if scale is not None:
        if name != "large":
            raise ValueError("--scale applies to the large scenario only")
        return large(now, repos=scale)
    return factory(now)
