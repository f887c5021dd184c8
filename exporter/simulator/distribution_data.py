"""JFrog Distribution data a simulated JPD serves (``scenario.areas["distribution"]``).

Scenarios without this area (OSS, JCR, Cloud here) answer 404 on every
/distribution route, like a JPD without Distribution. Times are relative to
the moment the scenario is built, so tests can compute ages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "distribution"
MINUTE = 60
HOUR = 3600
#: the statuses Distribution documents for a distribution and each of its sites (5.6.4), as it spells them
NOT_DISTRIBUTED, IN_PROGRESS, COMPLETED, FAILED = "Not distributed", "In progress", "Completed", "Failed"
STATUSES = (NOT_DISTRIBUTED, IN_PROGRESS, COMPLETED, FAILED)
EDGES = ("edge-eu", "edge-us", "edge-ap")


@dataclass
class SiteStatus:
    name: str
    status: str
    error: str = ""


@dataclass
class Distribution:
    ident: int
    bundle: str
    version: str
    status: str
    started: float
    finished: float | None
    sites: list[SiteStatus]
    kind: str = "distribute"


@dataclass
class ReceivedBundle:
    name: str
    latest_version: str
    versions: int
    received: float


@dataclass
class DistributionArea:
    version: str = "2.28.1"
    #: False: the ping answers 500 (a service Distribution needs is down) and system info says UNSTABLE
    healthy: bool = True
    distributions: list[Distribution] = field(default_factory=list)
    received: list[ReceivedBundle] = field(default_factory=list)
    #: the whole status list, encoded once: at scale it is megabytes, and the data does not change
    encoded: bytes | None = field(default=None, repr=False, compare=False)


def area(scenario: Scenario) -> DistributionArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, DistributionArea) else None


def _done(ident: int, bundle: str, version: str, started: float, sites: tuple[str, ...] = EDGES[:2]) -> Distribution:
    return Distribution(ident, bundle, version, COMPLETED, started, started + 2 * MINUTE,
                        [SiteStatus(site, COMPLETED) for site in sites])


def healthy_area(now: float | None = None) -> DistributionArea:
    """Everything distributed; one distribution in progress for a few minutes; three bundles received."""
    now = time.time() if now is None else now
    return DistributionArea(
        distributions=[
            _done(1, "web-app", "1.0.0", now - 48 * HOUR),
            _done(2, "web-app", "1.1.0", now - 24 * HOUR),
            _done(3, "payments", "2.3.0", now - 6 * HOUR, EDGES),
            _done(4, "payments", "2.4.0", now - 2 * HOUR, EDGES),
            Distribution(5, "web-app", "1.2.0", IN_PROGRESS, now - 5 * MINUTE, None,
                         [SiteStatus("edge-eu", COMPLETED), SiteStatus("edge-us", IN_PROGRESS)]),
        ],
        received=[ReceivedBundle("rb-base", "3.0.2", 3, now - 30 * HOUR),
                  ReceivedBundle("rb-tools", "1.3.0", 2, now - 10 * HOUR),
                  ReceivedBundle("rb-runtime", "0.9.1", 1, now - 1 * HOUR)],
    )


def failures_area(now: float | None = None) -> DistributionArea:
    """Failed distributions (one retried successfully since), one stuck in progress for three hours."""
    now = time.time() if now is None else now
    data = healthy_area(now)
    data.distributions = [
        _done(1, "web-app", "1.0.0", now - 48 * HOUR),
        # Failed to edge-us, then retried there and completed: no current failure.
        Distribution(2, "web-app", "1.1.0", FAILED, now - 26 * HOUR, now - 26 * HOUR + 90,
                     [SiteStatus("edge-eu", COMPLETED), SiteStatus("edge-us", FAILED, "Connection refused")]),
        Distribution(3, "web-app", "1.1.0", COMPLETED, now - 25 * HOUR, now - 25 * HOUR + 60,
                     [SiteStatus("edge-us", COMPLETED)]),
        # Failed to two sites, 30 minutes ago.
        Distribution(4, "payments", "2.4.0", FAILED, now - 35 * MINUTE, now - 30 * MINUTE,
                     [SiteStatus("edge-eu", COMPLETED), SiteStatus("edge-us", FAILED, "Target repository missing"),
                      SiteStatus("edge-ap", FAILED, "Timeout")]),
        # Stuck: started three hours ago, still in progress.
        Distribution(5, "web-app", "1.2.0", IN_PROGRESS, now - 3 * HOUR, None,
                     [SiteStatus("edge-eu", COMPLETED), SiteStatus("edge-us", IN_PROGRESS)]),
        Distribution(6, "web-app", "1.3.0", NOT_DISTRIBUTED, now - 10 * MINUTE, None,
                     [SiteStatus("edge-eu", NOT_DISTRIBUTED)]),
    ]
    return data


def populate_large(scenario: Scenario, now: float | None = None, count: int = 10_000) -> None:
    """``count`` distributions of ``count // 4`` bundle versions; statuses cycle, every tenth failed to a site."""
    now = time.time() if now is None else now
    distributions = []
    for i in range(count):
        status = FAILED if i % 10 == 3 else IN_PROGRESS if i % 50 == 7 else COMPLETED
        started = now - (count - i) * MINUTE
        site_status = [status if site == EDGES[i % 3] else COMPLETED for site in EDGES]
        distributions.append(Distribution(i + 1, f"bundle-{i // 4:05d}", f"{i % 4}.0.0", status, started,
                                          None if status == IN_PROGRESS else started + 60,
                                          [SiteStatus(site, s) for site, s in zip(EDGES, site_status, strict=True)]))
    data = healthy_area(now)
    data.distributions = distributions
    data.received = [ReceivedBundle(f"rb-{i:04d}", "1.0.0", 1 + i % 3, now - i * MINUTE) for i in range(count // 10)]
    scenario.areas[AREA] = data


def distribution_scenario(now: float | None = None) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = "distribution"
    scenario.description = "failed Release Bundle distributions, one retried, one stuck in progress for 3 hours"
    scenario.areas[AREA] = failures_area(now)
    return scenario
