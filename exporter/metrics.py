"""Building metric families for one target.

Collectors describe what they saw with a :class:`MetricSet`; it produces
prometheus_client ``Metric`` families whose samples all carry the ``target``
label, so nothing is shared between targets and no global registry is used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import Metric

log = logging.getLogger(__name__)

# Default buckets for durations measured in seconds (HTTP calls, worker runs).
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

_warned_unknown: set[tuple[str, str]] = set()


class MetricSet:
    """Families under construction for one target and one collector run."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._families: dict[str, Metric] = {}

    def _family(self, name: str, documentation: str, typ: str) -> Metric:
        family = self._families.get(name)
        if family is None:
            family = Metric(name, documentation, typ)
            self._families[name] = family
        return family

    def _labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {"target": self.target, **{k: "" if v is None else str(v) for k, v in labels.items()}}

    def declare(self, name: str, documentation: str, typ: str = "gauge") -> None:
        """Make a family exist even when it ends up with no sample (keeps HELP visible)."""
        self._family(name, documentation, typ)

    def gauge(self, name: str, documentation: str, value: float | None, **labels: str) -> None:
        """Add a gauge sample; ``None`` means the JPD had no value: no series, not a zero."""
        family = self._family(name, documentation, "gauge")
        if value is None:
            return
        family.add_sample(name, self._labels(labels), float(value))

    def info(self, name: str, documentation: str, **labels: str) -> None:
        self.gauge(name, documentation, 1.0, **labels)

    def counter(self, name: str, documentation: str, value: float, **labels: str) -> None:
        """Add a counter sample; ``name`` is the family name without ``_total``."""
        family = self._family(name, documentation, "counter")
        family.add_sample(name + "_total", self._labels(labels), float(value))

    def state_set(
        self,
        name: str,
        documentation: str,
        states: Sequence[str],
        current: str | None,
        **labels: str,
    ) -> None:
        """One series per documented state, 1 for the current one.

        A state the documents do not know is reported as ``unknown`` (warned
        once per metric and value) rather than dropped.
        """
        family = self._family(name, documentation, "gauge")
        if current is not None and current not in states:
            key = (name, current)
            if key not in _warned_unknown:
                _warned_unknown.add(key)
                log.warning("%s: undocumented state %r reported as status=\"unknown\"", name, current)
            current = "unknown"
        for state in states:
            family.add_sample(name, self._labels({**labels, "status": state}), 1.0 if state == current else 0.0)
        if current == "unknown":
            family.add_sample(name, self._labels({**labels, "status": "unknown"}), 1.0)

    def histogram(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[float],
        bucket_counts: Sequence[float],
        total: float,
        **labels: str,
    ) -> None:
        """Add a cumulative histogram; ``bucket_counts`` are cumulative per bound, +Inf last."""
        family = self._family(name, documentation, "histogram")
        base = self._labels(labels)
        for bound, count in zip((*buckets, math.inf), bucket_counts, strict=True):
            family.add_sample(name + "_bucket", {**base, "le": _format_bound(bound)}, float(count))
        family.add_sample(name + "_count", base, float(bucket_counts[-1]))
        family.add_sample(name + "_sum", base, float(total))

    def families(self) -> list[Metric]:
        return list(self._families.values())


class Histogram:
    """A plain cumulative histogram kept across runs (no global registry)."""

    __slots__ = ("buckets", "counts", "total")

    def __init__(self, buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.total += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                return
        self.counts[-1] += 1

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for count in self.counts:
            running += count
            out.append(running)
        return out


def _format_bound(bound: float) -> str:
    if math.isinf(bound):
        return "+Inf"
    return repr(float(bound))


def merge_families(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """Merge families of the same name from several targets/collectors.

    The text format requires all samples of one family in one block, so the
    same family coming from two targets must be rendered once.
    """
    merged: dict[str, Metric] = {}
    for group in groups:
        for family in group:
            existing = merged.get(family.name)
            if existing is None:
                copy = Metric(family.name, family.documentation, family.type)
                copy.samples = list(family.samples)
                merged[family.name] = copy
            else:
                existing.samples.extend(family.samples)
    return list(merged.values())
