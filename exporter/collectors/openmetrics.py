"""Collector `openmetrics`: the JPD's own metrics, re-exposed under the vendor's names.

Artifactory publishes JVM, database-pool, HTTP-pool, garbage-collection and
binary-store series at /artifactory/api/v1/metrics (an empty body when
metrics are disabled); the standalone Federation service (RTFS) publishes
its lag and event series at /rtfs/api/v1/metrics, JFrog Distribution its
distribution and queue series at /distribution/api/v1/metrics (on its own URL
when ``collectors.distribution.url`` is set). Each service is one part.
Each body goes through the lenient parser in :mod:`exporter.openmetrics_parser`,
so whatever the JPD sends, /metrics stays valid in both exposition formats.

Every vendor series gets the ``target`` label; RTFS and Distribution series
also get ``service="rtfs"`` or ``service="distribution"`` so that a name two
services publish stays two series
(a vendor's own ``target`` or ``service`` label is kept as ``exported_target``
or ``exported_service``).
Names starting with ``jfrog_``, and every name a declared family exposes,
belong to the exporter's own contract: a vendor family using one is dropped.
Across services and targets, the first family to use a name decides its
shape; a service whose JPD makes that name a different kind of family (a
counter where another has a gauge) has the family dropped, since two TYPE
lines for one name would break the scrape. Gauges and untyped families mix
freely: both are one sample name per family.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from exporter.collectors.base import Collector, CollectorSettings, Part, Run
from exporter.families import REGISTRY, Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.validation import check_patterns

if TYPE_CHECKING:
    from exporter.openmetrics_parser import Body, Family

log = logging.getLogger(__name__)

F = Declarations("openmetrics")
ARTIFACTORY_METRICS = F.endpoint("/artifactory/api/v1/metrics", Permission.ADMIN)
RTFS_METRICS = F.endpoint("/rtfs/api/v1/metrics", Permission.ADMIN)
DISTRIBUTION_METRICS = F.endpoint("/distribution/api/v1/metrics", Permission.ADMIN)

#: every service that publishes metrics, in the order their bodies claim names and fill max_series
SERVICES = {"artifactory": ARTIFACTORY_METRICS, "rtfs": RTFS_METRICS, "distribution": DISTRIBUTION_METRICS}

#: the exporter's own namespace; the contract wins over a vendor family of the same name
RESERVED_PREFIX = "jfrog_"

#: why vendor samples were not re-exposed (label ``reason`` of the dropped-samples counter)
DROP_REASONS = ("unparseable", "duplicate", "filtered", "series_limit", "reserved_name", "name_conflict")

#: labels the exporter adds or may add; a vendor label of the same name becomes exported_<name> (on every
#: service, so an Artifactory series can never take the labels of an RTFS one)
ADDED_LABELS = frozenset({"target", "service"})

ENABLED = F.gauge("jfrog_openmetrics_enabled",
                  "1 if the service published metrics; 0 if it answered an empty body (metrics disabled on the JPD) "
                  "or does not have the endpoint.", "service")
SERIES = F.gauge("jfrog_openmetrics_series", "Vendor series re-exposed from the service's last metrics body.",
                 "service")
RETYPED = F.gauge("jfrog_openmetrics_retyped_families",
                  "Vendor families of the last body re-exposed untyped because their samples cannot be valid under "
                  "the declared type, or carry what the exporter cannot re-expose typed (summary quantiles, the "
                  "_created of a histogram or summary).", "service")
DROPPED = F.counter("jfrog_openmetrics_dropped_samples",
                    "Vendor samples (or unreadable lines) not re-exposed, by reason: unparseable, duplicate (an "
                    "earlier copy of the same series), filtered (include/exclude), series_limit (max_series), "
                    "reserved_name (jfrog_ prefix or a name of the exporter's families), name_conflict (another "
                    "family uses the name).", "service", "reason")


class OpenMetricsSettings(CollectorSettings):
    """``include``/``exclude``: regular expressions matched against the whole family or sample name."""

    rtfs: bool = False
    #: also read JFrog Distribution's metrics (at collectors.distribution.url when that is set)
    distribution: bool = False
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    max_series: Annotated[int, Field(ge=1)] = 20_000

    _include: list[re.Pattern[str]] = PrivateAttr(default_factory=list)
    _exclude: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    @field_validator("include", "exclude")
    @classmethod
    def _patterns(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns)

    @model_validator(mode="after")
    def _compile_patterns(self) -> OpenMetricsSettings:
        self._include = [re.compile(p) for p in self.include]
        self._exclude = [re.compile(p) for p in self.exclude]
        return self

    def allows(self, names: Iterable[str]) -> bool:
        names = list(names)
        if self._include and not any(p.fullmatch(n) for p in self._include for n in names):
            return False
        return not any(p.fullmatch(n) for p in self._exclude for n in names)


class OpenMetricsCollector(Collector[OpenMetricsSettings]):
    name = "openmetrics"
    default_interval = 30.0
    enabled_by_default = False
    description = (
        "the JPD's own Open Metrics (JVM heap, database and HTTP pools, garbage collection; Federation service "
        "lag with `rtfs: true`; Distribution with `distribution: true`), re-exposed under the vendor's names with "
        "the target label"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services = {service: ServiceState(service) for service in self._services()}

    def _services(self) -> list[str]:
        wanted = {"artifactory": True, "rtfs": self.settings.rtfs, "distribution": self.settings.distribution}
        return [service for service in SERVICES if wanted[service]]

    async def collect(self, run: Run) -> None:
        # One service after the other: the first family to use a name keeps it and the first series fill
        # max_series, so Artifactory's body must be read first (two small calls in a row).
        for service in self.services:
            await run.part(SERVICES[service], self._service, service)

    async def _service(self, part: Part, service: str) -> None:
        client = part.client
        if service == "distribution":
            # Distribution may have a URL of its own: the distribution collector's setting says where.
            url = getattr(self.target.collector_settings("distribution"), "url", None)
            client = client.sibling(url) if url else client
        result = await client.get(part.endpoint, expect="text")
        if result.unsupported:
            self.publish(service, None, part.out)
            raise CollectionError(Outcome.UNSUPPORTED, result.reason)
        answer = result.require()
        text = answer if isinstance(answer, str) else ""
        if not text.strip():
            # Nothing to re-expose: reported like an area the edition lacks, with the reason on the landing page.
            self.publish(service, None, part.out)
            raise CollectionError(Outcome.UNSUPPORTED, "answered an empty body: metrics are disabled on the JPD")
        if not text.endswith("\n"):
            # Both formats end every line with a line feed: this body was cut off, maybe mid-value.
            raise CollectionError(Outcome.BAD_RESPONSE,
                                  f"{part.endpoint}: the body ends in the middle of a line (cut off)")
        # The parser is loaded by the first body only: a process that reads none (the collector is optional)
        # does not hold it.
        from exporter.openmetrics_parser import parse_body

        # Large bodies take a while to parse: keep the event loop free for scrapes.
        body = await asyncio.to_thread(parse_body, text, ADDED_LABELS)
        if not body.families and body.unparseable_lines:
            raise CollectionError(Outcome.BAD_RESPONSE, f"{part.endpoint}: no line of the body is a metric sample "
                                  f"({body.unparseable_lines} unreadable lines)")
        self.publish(service, body, part.out)

    def publish(self, service: str, body: Body | None, out: Emitter) -> None:
        """Emit one service's vendor families and its own series; ``body`` None: the service publishes none.

        What the service exposes from now on (names, series) is remembered,
        so call it only with what the part hands over.
        """
        state = self.services[service]
        held: dict[str, Key] = {}
        series = 0
        limited = False
        if body is not None:
            from exporter.openmetrics_parser import to_metrics

            room = self.settings.max_series - self._series_before(service)
            added = {"target": self.target.name, **({"service": service} if service != "artifactory" else {})}
            state.drop("unparseable", body.unparseable_lines)
            state.drop("duplicate", body.duplicate_samples)
            state.drop("name_conflict", body.conflicting_samples)
            for family in body.families:
                refusal = self._refusal(state, family, room - series)
                if refusal is not None:
                    state.drop(refusal, len(family.samples))
                    limited = limited or refusal == "series_limit"
                    continue
                out.extend(to_metrics(family, added))
                held.update(dict.fromkeys(family.reserved_names(), _key(family)))
                series += len(family.samples)
        self._log_limit(state, limited)
        CLAIMS.replace(state, held)
        state.series = series
        out.gauge(ENABLED, body is not None, service=service)
        out.gauge(SERIES, series, service=service)
        out.gauge(RETYPED, 0 if body is None else body.retyped_families, service=service)
        for reason in DROP_REASONS:
            out.counter(DROPPED, state.dropped[reason], service=service, reason=reason)

    def _series_before(self, service: str) -> int:
        """Vendor series the services read before this one expose now (their last good bodies)."""
        before = list(self.services)[: list(self.services).index(service)]
        return sum(self.services[s].series for s in before)

    def _refusal(self, state: ServiceState, family: Family, room: int) -> str | None:
        """Why ``family`` is not re-exposed (a drop reason), or None."""
        names = family.reserved_names()
        if not self.settings.allows((family.name, *(s.name for s in family.samples))):
            return "filtered"
        if any(n.startswith(RESERVED_PREFIX) or REGISTRY.claimed(n) is not None for n in names):
            return "reserved_name"
        if CLAIMS.conflicts(state, names, _key(family)):
            return "name_conflict"
        if len(family.samples) > room:
            return "series_limit"
        return None

    def _log_limit(self, state: ServiceState, limited: bool) -> None:
        if limited and not state.limited:
            log.warning("service=%s: more than max_series=%d vendor series; "
                        "families past the limit are dropped (raise max_series or narrow include/exclude)",
                        state.service, self.settings.max_series)
        elif state.limited and not limited:
            log.info("service=%s: vendor series back under max_series", state.service)
        state.limited = limited


# -- what each service keeps between runs, and who owns which name ------------------------------


@dataclass(eq=False)  # compared by identity: a holder of names in CLAIMS
class ServiceState:
    """What one service's part remembers between runs; it also holds the names that service exposes."""

    service: str
    #: samples not re-exposed since the exporter started, by reason
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    #: vendor series exposed from the last good body
    series: int = 0
    #: whether the last body went past max_series (warned once)
    limited: bool = False

    def drop(self, reason: str, count: int) -> None:
        self.dropped[reason] += count


Key = tuple[str, str]  # family name and shape


def _key(family: Family) -> Key:
    # Gauges and untyped families both carry one sample name, their own: they merge under either type.
    return family.name, "plain" if family.type in ("gauge", "unknown") else family.type


class _Claims:
    """Which family (name and shape) owns each exposed name, across every service of every target.

    Families of all parts and targets are merged by name when rendered, so
    one name must mean one family everywhere. Holders (one per service of a
    collector) are held weakly: an engine that is gone releases its names.
    A part that fails keeps its families, and so its names.
    """

    def __init__(self) -> None:
        self._owners: dict[str, tuple[Key, weakref.WeakSet[object]]] = {}

    def conflicts(self, holder: object, names: Iterable[str], key: Key) -> bool:
        for name in names:
            entry = self._owners.get(name)
            if entry is not None and entry[0] != key and any(h is not holder for h in entry[1]):
                return True
        return False

    def replace(self, holder: object, held: dict[str, Key]) -> None:
        """Make ``held`` the names ``holder`` owns now (what its part hands over)."""
        for name in list(self._owners):
            key, holders = self._owners[name]
            if name not in held or held[name] != key:
                holders.discard(holder)
                if not holders:
                    del self._owners[name]
        for name, key in held.items():
            entry = self._owners.get(name)
            if entry is None:
                holders = weakref.WeakSet()
                self._owners[name] = (key, holders)
            else:
                holders = entry[1]
            holders.add(holder)


CLAIMS = _Claims()
