"""Platform services a simulated JPD runs besides Artifactory (``scenario.areas["services"]``): JFConnect and
Access, with Access Federation's targets.

A scenario without this area runs Access (every Artifactory 7 does) but neither JFConnect nor Access
Federation: their endpoints answer 404, like a JPD installed without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "services"


@dataclass
class FederationTarget:
    """One Access Federation target (4.7.7.1)."""

    name: str
    url: str  # as configured; may carry user-info, which the exporter must never show
    entities: list[str] = field(default_factory=lambda: ["users", "groups", "permissions"])
    include_patterns: list[str] = field(default_factory=list)
    exclude_patterns: list[str] = field(default_factory=list)
    active: bool = True


@dataclass
class ServicesArea:
    #: None: JFConnect is not installed (disabled, or an edition without it)
    jfconnect_up: bool | None = True
    jfconnect_ready: bool = True
    access_up: bool = True
    #: None: the edition has no Access Federation
    federation_targets: list[FederationTarget] | None = field(default_factory=list)


def area(scenario: Scenario) -> ServicesArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, ServicesArea) else None


def healthy_area() -> ServicesArea:
    return ServicesArea(federation_targets=[
        FederationTarget("access-eu", "https://access-eu.acme.example/access/",
                         include_patterns=["team_a_*"], exclude_patterns=["local_*"]),
        # Configured with user-info and a query: neither may reach a label.
        FederationTarget("access-dr", "https://federation:Fed3rat10n-s3cret@dr.acme.example/access?token=s3cret-q",
                         entities=["users", "groups"], active=False),
    ])


def oss_area() -> ServicesArea:
    """Artifactory OSS and JCR: Access, without JFConnect or Access Federation (tests/field/services.yaml)."""
    return ServicesArea(jfconnect_up=None, federation_targets=None)
