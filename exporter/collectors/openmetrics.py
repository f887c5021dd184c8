"""Collector `openmetrics`: the JPD's own metrics, re-exposed under the vendor's names.

Artifactory publishes JVM, database-pool, HTTP-pool, garbage-collection and
binary-store series at /artifactory/api/v1/metrics (an empty body when
metrics are disabled); the standalone Federation service (RTFS) publishes
its lag and event series at /rtfs/api/v1/metrics. Each body goes through the
lenient parser in :mod:`exporter.openmetrics_parser`, so whatever the JPD
sends, /metrics stays valid in both exposition formats.

Every vendor series gets the ``target`` label; RTFS series also get
``service="rtfs"`` so that a name both services publish stays two series
(a vendor's own ``target`` or ``service`` label is kept as ``exported_target``
or ``exported_service``).
Names starting with ``jfrog_`` belong to the exporter's own contract: a
vendor family using one is dropped. Across targets, the first family to use
a name decides its shape; a target whose JPD makes that name a different
kind of family (a counter where another JPD has a gauge) has the family
dropped, since two TYPE lines for one name would break the scrape. Gauges
and untyped families mix freely: both are one sample name per family.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

from prometheus_client.core import Metric
from pydantic import Field, PrivateAttr, field_validator, model_validator

from exporter.client import CollectionError, JfrogClient, Outcome
from exporter.collectors.base import Collector, CollectorSettings, check_patterns
from exporter.metrics import MetricSet
from exporter.openmetrics_parser import Body, Family, parse_body

if TYPE_CHECKING:
    from exporter.config import TargetConfig

ARTIFACTORY_METRICS = "/artifactory/api/v1/metrics"
RTFS_METRICS = "/rtfs/api/v1/metrics"

#: the exporter's own namespace; the contract wins over a vendor family of the same name
RESERVED_PREFIX = "jfrog_"

#: why vendor samples were not re-exposed (label ``reason`` of the dropped-samples counter)
DROP_REASONS = ("unparseable", "duplicate", "filtered", "series_limit", "reserved_name", "name_conflict")

#: HELP for a vendor family the JPD sends without one (an empty HELP is a promtool finding)
NO_HELP = "Sent by the JPD without a description."

log = logging.getLogger(__name__)

_SERVICES = {"artifactory": ARTIFACTORY_METRICS, "rtfs": RTFS_METRICS}
#: labels the exporter adds or may add; a vendor label of the same name becomes exported_<name> (on every
#: service, so an Artifactory series can never take the labels of an RTFS one)
ADDED_LABELS = frozenset({"target", "service"})

H = {
    "jfrog_openmetrics_enabled": "1 if the service published metrics; 0 if it answered an empty body "
    "(metrics disabled on the JPD) or does not have the endpoint.",
    "jfrog_openmetrics_series": "Vendor series re-exposed from the service's last metrics body.",
    "jfrog_openmetrics_retyped_families": "Vendor families of the last body re-exposed untyped because their "
    "samples cannot be valid under the declared type.",
    "jfrog_openmetrics_dropped_samples": "Vendor samples (or unreadable lines) not re-exposed, by reason: "
    "unparseable, duplicate (an earlier copy of the same series), filtered (include/exclude), series_limit "
    "(max_series), reserved_name (jfrog_ prefix), name_conflict (another family uses the name).",
}


class OpenMetricsSettings(CollectorSettings):
    """``include``/``exclude``: regular expressions matched against the whole family or sample name."""

    rtfs: bool = False
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


Key = tuple[str, str]  # family name and shape


def _shape(typ: str) -> str:
    """Gauges and untyped families both carry one sample name, their own: they merge under either type."""
    return "plain" if typ in ("gauge", "unknown") else typ


class _Claims:
    """Which family (name and type) owns each exposed name, across every target of the process.

    Families of all targets are merged by name when rendered, so one name
    must mean one family everywhere. Holders are collector instances held
    weakly: an engine that is gone releases its names.
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
        """Make ``held`` the names ``holder`` owns now (after a successful run)."""
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


class OpenMetricsCollector(Collector):
    name = "openmetrics"
    default_interval = 30.0
    enabled_by_default = False
    description = (
        "the JPD's own Open Metrics (JVM heap, database and HTTP pools, garbage collection; Federation service "
        "lag with `rtfs: true`), re-exposed under the vendor's names with the target label"
    )
    settings_model = OpenMetricsSettings

    def __init__(self, target: TargetConfig, settings: CollectorSettings) -> None:
        super().__init__(target, settings)
        self._dropped: dict[tuple[str, str], int] = {}
        self._limited = False

    @property
    def options(self) -> OpenMetricsSettings:
        assert isinstance(self.settings, OpenMetricsSettings)
        return self.settings

    def _services(self) -> list[str]:
        return ["artifactory", "rtfs"] if self.options.rtfs else ["artifactory"]

    async def collect(self, client: JfrogClient) -> list[Metric]:
        services = self._services()
        results = await asyncio.gather(*(client.get(_SERVICES[s], expect="text") for s in services))
        texts: dict[str, str | None] = {}
        absent: list[str] = []
        for service, result in zip(services, results, strict=True):
            if result.unsupported:
                texts[service] = None
                absent.append(f"{result.endpoint}: {result.reason}")
                continue
            body = result.require()
            text = body if isinstance(body, str) else ""
            texts[service] = text if text.strip() else None
            if texts[service] is None:
                absent.append(f"{result.endpoint} answered an empty body: metrics are disabled on the JPD")
        bodies: dict[str, Body] = {}
        for service, text in texts.items():
            if text is None:
                continue
            if not text.endswith("\n"):
                # Both formats end every line with a line feed: this body was cut off, maybe mid-value.
                raise CollectionError(Outcome.BAD_RESPONSE,
                                      f"{_SERVICES[service]}: the body ends in the middle of a line (cut off)")
            # Large bodies take a while to parse: keep the event loop free for scrapes.
            body = await asyncio.to_thread(parse_body, text, ADDED_LABELS)
            if not body.families and body.unparseable_lines:
                raise CollectionError(Outcome.BAD_RESPONSE,
                                      f"{_SERVICES[service]}: no line of the body is a metric sample "
                                      f"({body.unparseable_lines} unreadable lines)")
            bodies[service] = body
        families = self.assemble(bodies)
        if not bodies:
            # Nothing to re-expose: reported like an area the edition lacks, with the reason on the landing page.
            raise CollectionError(Outcome.UNSUPPORTED, "; ".join(absent), partial=families)
        return families

    def assemble(self, bodies: dict[str, Body]) -> list[Metric]:
        """Vendor families with the exporter's labels, then this collector's own series.

        ``bodies`` maps a service ("artifactory", "rtfs") to its parsed body;
        a service without a body is reported as not publishing metrics.
        """
        target = self.target.name
        out: dict[str, Metric] = {}
        held: dict[str, Key] = {}
        series = dict.fromkeys(self._services(), 0)
        retyped = dict.fromkeys(self._services(), 0)
        limited = False
        for service, body in bodies.items():
            added = {"target": target, **({"service": "rtfs"} if service == "rtfs" else {})}
            self._drop(service, "unparseable", body.unparseable_lines)
            self._drop(service, "duplicate", body.duplicate_samples)
            self._drop(service, "name_conflict", body.conflicting_samples)
            retyped[service] = body.retyped_families
            for family in body.families:
                count = len(family.samples)
                names = family.reserved_names()
                key = (family.name, _shape(family.type))
                if not self.options.allows((family.name, *(s.name for s in family.samples))):
                    self._drop(service, "filtered", count)
                elif any(n.startswith(RESERVED_PREFIX) for n in names):
                    self._drop(service, "reserved_name", count)
                elif any(held.get(n, key) != key for n in names) or CLAIMS.conflicts(self, names, key):
                    self._drop(service, "name_conflict", count)
                elif sum(series.values()) + count > self.options.max_series:
                    self._drop(service, "series_limit", count)
                    limited = True
                else:
                    self._add(out, family, added)
                    held.update(dict.fromkeys(names, key))
                    series[service] += count
        self._log_limit(limited)
        CLAIMS.replace(self, held)
        return [*out.values(), *self._self_metrics(bodies, series, retyped)]

    @staticmethod
    def _add(out: dict[str, Metric], family: Family, added: dict[str, str]) -> None:
        metric = out.get(family.name)
        if metric is None:
            metric = out[family.name] = Metric(family.name, family.help or NO_HELP, family.type)
        for sample in family.samples:
            metric.add_sample(sample.name, {**dict(sample.labels), **added}, sample.value)

    def _drop(self, service: str, reason: str, count: int) -> None:
        key = (service, reason)
        self._dropped[key] = self._dropped.get(key, 0) + count

    def _log_limit(self, limited: bool) -> None:
        if limited and not self._limited:
            log.warning("target=%s collector=openmetrics: more than max_series=%d vendor series; families past "
                        "the limit are dropped (raise max_series or narrow include/exclude)",
                        self.target.name, self.options.max_series)
        elif self._limited and not limited:
            log.info("target=%s collector=openmetrics: vendor series back under max_series", self.target.name)
        self._limited = limited

    def _self_metrics(self, bodies: dict[str, Body], series: dict[str, int], retyped: dict[str, int]) -> list[Metric]:
        metrics = MetricSet(self.target.name)
        for service in self._services():
            metrics.gauge("jfrog_openmetrics_enabled", H["jfrog_openmetrics_enabled"],
                          1.0 if service in bodies else 0.0, service=service)
            metrics.gauge("jfrog_openmetrics_series", H["jfrog_openmetrics_series"], series[service],
                          service=service)
            metrics.gauge("jfrog_openmetrics_retyped_families", H["jfrog_openmetrics_retyped_families"],
                          retyped[service], service=service)
            for reason in DROP_REASONS:
                metrics.counter("jfrog_openmetrics_dropped_samples", H["jfrog_openmetrics_dropped_samples"],
                                self._dropped.get((service, reason), 0), service=service, reason=reason)
        return metrics.families()
