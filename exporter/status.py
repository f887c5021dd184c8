"""What the landing page says about a JPD: the few gauges it reads, and the state they add up to.

The JPD's own state (up, ready, router services, license, filestore) comes
from the collected data; the exporter's side (a URL that leads elsewhere,
credentials rejected, parts failing) from its self-observation. A target is
down, degraded, in trouble on the exporter's side, or healthy, and its card
says why in a line or two. Pure functions: the store keeps the readings, the
page renders the verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from exporter.collectors.health import (
    ARTIFACTORY_INFO,
    LICENSE_EXPIRY,
    READY,
    ROUTER_SERVICE,
    SERVICE_READY,
    SERVICE_UP,
    UP,
)
from exporter.collectors.storage import FILESTORE_SIZE, FILESTORE_USED
from exporter.selfmetrics import CREDENTIALS_ACCEPTED, MISCONFIGURED, TARGET_INFO

if TYPE_CHECKING:
    from exporter.snapshot import RunRecord

#: the families whose samples the store keeps for the page (a few per target, never per repository)
PAGE_FAMILIES = frozenset(family.name for family in (
    UP, READY, ROUTER_SERVICE, ARTIFACTORY_INFO, LICENSE_EXPIRY, FILESTORE_SIZE, FILESTORE_USED,
    CREDENTIALS_ACCEPTED, MISCONFIGURED, TARGET_INFO, SERVICE_UP, SERVICE_READY,
))
#: how the page names the platform's services (jfrog_service_up's `service` label)
_SERVICE_NAMES = {"access": "Access", "jfconnect": "JFConnect"}

#: the warning levels of the alerting rules: a card turns degraded when the alerts start to warn
LICENSE_WARNING_DAYS = 30.0
FILESTORE_WARNING_RATIO = 0.85
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a page family, as collected."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, name: str) -> str:
        return next((value for key, value in self.labels if key == name), "")


def readings_of(families: Iterable[Metric]) -> tuple[Reading, ...]:
    """The samples of the page families among ``families``; the others are skipped by family, not by sample."""
    return tuple(Reading(s.name, tuple(sorted(s.labels.items())), s.value)
                 for family in families if family.name in PAGE_FAMILIES for s in family.samples)


class State(StrEnum):
    """A card's verdict, worst first."""

    DOWN = "down"
    DEGRADED = "degraded"
    #: the exporter cannot see the JPD as it should: its URL, its credentials or parts of collection fail
    EXPORTER = "exporter"
    PENDING = "pending"
    HEALTHY = "healthy"


STATE_ORDER = tuple(State)


@dataclass(frozen=True, slots=True)
class Failure:
    """Parts that failed the same way: one line on a card however many parts share it."""

    outcome: str
    reason: str
    #: "collector endpoint" of each part
    where: tuple[str, ...]
    #: the oldest data these parts keep; None when one of them never succeeded
    data_from: float | None


@dataclass(frozen=True, slots=True)
class License:
    days_left: float
    license_type: str
    node_id: str


@dataclass(frozen=True, slots=True)
class Filestore:
    used_ratio: float
    size_bytes: float
    storage_dir: str


@dataclass(frozen=True, slots=True)
class TargetStatus:
    name: str
    url: str
    auth: str
    state: State
    #: why the card has its state, one short phrase each
    why: tuple[str, ...]
    up: bool | None
    ready: bool | None
    services: int
    unhealthy_services: tuple[str, ...]
    #: the platform's services (Access, JFConnect) that are down or not ready, e.g. "JFConnect not ready"
    service_problems: tuple[str, ...]
    license: License | None
    filestore: Filestore | None
    version: str
    credentials_accepted: bool | None
    misconfigured: bool
    failures: tuple[Failure, ...]
    #: the oldest and newest data of the target's parts (None: nothing collected yet)
    oldest_data: float | None
    newest_data: float | None


def _gauge(readings: Iterable[Reading], name: str) -> bool | None:
    values = [r.value for r in readings if r.name == name]
    return bool(values[0]) if values else None


def _license(readings: Iterable[Reading], now: float) -> License | None:
    """The license that expires first (one per node in HA)."""
    found = [License((r.value - now) / DAY, r.label("license_type"), r.label("node_id"))
             for r in readings if r.name == LICENSE_EXPIRY.name]
    return min(found, key=lambda lic: lic.days_left, default=None)


def _filestore(readings: Iterable[Reading]) -> Filestore | None:
    """The fullest filestore the storage summary lists."""
    sizes = {r.label("storage_dir"): r.value for r in readings if r.name == FILESTORE_SIZE.name}
    found = [Filestore(r.value / sizes[r.label("storage_dir")], sizes[r.label("storage_dir")], r.label("storage_dir"))
             for r in readings if r.name == FILESTORE_USED.name and sizes.get(r.label("storage_dir"))]
    return max(found, key=lambda store: store.used_ratio, default=None)


def _unhealthy(readings: Iterable[Reading]) -> tuple[str, ...]:
    return tuple(sorted(f"{r.label('node_id')}/{r.label('service_id')}".lstrip("/")
                        for r in readings if r.name == ROUTER_SERVICE.name and not r.value))


def _service_problems(readings: Iterable[Reading]) -> tuple[str, ...]:
    """A service that is down is not also said to be not ready."""
    down = {r.label("service") for r in readings if r.name == SERVICE_UP.name and not r.value}
    not_ready = {r.label("service") for r in readings if r.name == SERVICE_READY.name and not r.value} - down
    return tuple([f"{_SERVICE_NAMES.get(s, s)} down" for s in sorted(down)]
                 + [f"{_SERVICE_NAMES.get(s, s)} not ready" for s in sorted(not_ready)])


def _failures(runs: Mapping[str, RunRecord]) -> tuple[Failure, ...]:
    """Failed parts grouped by outcome and reason, in the order of the first collector that has them."""
    groups: dict[tuple[str, str], list[tuple[str, float | None]]] = {}
    for collector, run in sorted(runs.items()):
        for part in run.failed_parts:
            reason = part.reason.removeprefix(f"{part.endpoint}: ")
            groups.setdefault((part.outcome.value, reason), []).append(
                (f"{collector} {part.endpoint}", part.last_success))
        if run.outcome is not None and not run.succeeded and not run.failed_parts:  # failed outside any part
            groups.setdefault((run.outcome.value, run.reason), []).append((collector, run.last_success))
    return tuple(
        Failure(outcome, reason, tuple(where for where, _ in parts),
                None if any(ts is None for _, ts in parts) else min(ts for _, ts in parts if ts is not None))
        for (outcome, reason), parts in groups.items()
    )


def _jpd_problems(status: TargetStatus) -> list[str]:
    """What the JPD itself reports wrong, as the alerting rules would warn about it."""
    problems = []
    if status.ready is False:
        problems.append("not ready")
    if status.unhealthy_services:
        problems.append(f"{len(status.unhealthy_services)} of {status.services} router services unhealthy")
    problems.extend(status.service_problems)
    if status.license is not None and status.license.days_left < LICENSE_WARNING_DAYS:
        problems.append(license_text(status.license))
    if status.filestore is not None and status.filestore.used_ratio >= FILESTORE_WARNING_RATIO:
        problems.append(f"filestore {status.filestore.used_ratio:.0%} full")
    return problems


def license_text(lic: License) -> str:
    if lic.days_left < 0:
        return "license expired"
    return f"license expires in {lic.days_left:.0f} days" if lic.days_left >= 2 else \
        f"license expires in {lic.days_left * 24:.0f} hours"


def _verdict(status: TargetStatus, ran: bool) -> tuple[State, tuple[str, ...]]:
    if not ran:
        return State.PENDING, ("first collection running",)
    if status.misconfigured:
        return State.EXPORTER, ("the URL does not lead to a JFrog Platform",)
    if status.up is False:
        return State.DOWN, ("the JPD does not answer its ping",)
    problems = _jpd_problems(status)
    if problems:
        return State.DEGRADED, tuple(problems)
    trouble = _exporter_trouble(status)
    return (State.EXPORTER, trouble) if trouble else (State.HEALTHY, ())


def _exporter_trouble(status: TargetStatus) -> tuple[str, ...]:
    """Why the exporter cannot see all of a JPD that looks well: its credentials, or parts that fail."""
    if status.credentials_accepted is False:
        return ("the JPD rejects the exporter's credentials",)
    parts = sum(len(f.where) for f in status.failures)
    return (f"{parts} part{'s' if parts != 1 else ''} of collection failing",) if parts else ()


def judge(target: str, readings: tuple[Reading, ...], runs: Mapping[str, RunRecord], now: float) -> TargetStatus:
    """The card of ``target`` from its readings and its collectors' run records."""
    info = next((r for r in readings if r.name == TARGET_INFO.name), None)
    version = next((r.label("version") for r in readings if r.name == ARTIFACTORY_INFO.name), "")
    successes = [p.last_success for run in runs.values() for p in run.parts if p.last_success is not None]
    status = TargetStatus(
        name=target,
        url=info.label("url") if info else "",
        auth=info.label("auth") if info else "",
        state=State.PENDING,
        why=(),
        up=_gauge(readings, UP.name),
        ready=_gauge(readings, READY.name),
        services=sum(1 for r in readings if r.name == ROUTER_SERVICE.name),
        unhealthy_services=_unhealthy(readings),
        service_problems=_service_problems(readings),
        license=_license(readings, now),
        filestore=_filestore(readings),
        version=version,
        credentials_accepted=_gauge(readings, CREDENTIALS_ACCEPTED.name),
        misconfigured=bool(_gauge(readings, MISCONFIGURED.name)),
        failures=_failures(runs),
        oldest_data=min(successes, default=None),
        newest_data=max(successes, default=None),
    )
    state, why = _verdict(status, any(run.last_run is not None for run in runs.values()))
    return replace(status, state=state, why=why)


def judge_all(readings: Mapping[str, tuple[Reading, ...]], records: Mapping[tuple[str, str], RunRecord],
              now: float) -> list[TargetStatus]:
    """Every target's card, worst state first, then by name."""
    runs: dict[str, dict[str, RunRecord]] = {}
    for (target, collector), run in records.items():
        runs.setdefault(target, {})[collector] = run
    cards = [judge(target, readings.get(target, ()), collectors, now) for target, collectors in runs.items()]
    return sorted(cards, key=lambda card: (STATE_ORDER.index(card.state), card.name))
