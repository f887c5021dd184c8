"""Declared metric families and the builder that emits them.

Every family the exporter produces is declared once, at the top of the module
that produces it: name, kind, help and label names (``target`` is implied).
Declaring claims the family's sample names (with their ``_total``, ``_bucket``
... suffixes) in one registry, the way prometheus_client's ``CollectorRegistry``
does, so two modules can never produce the same name; the metrics reference is
generated from these declarations.

A collector part emits through an :class:`Emitter`: it names the declaration
and the label values, and gets prometheus_client's public family types back.
A sample whose label names differ from the declaration is refused with
:class:`LabelMismatch`, so one family can never carry two label sets.

A family also declares which of its labels identify a series (its ``key``,
by default the first label after ``target``). A sample whose identifying
label is empty describes nothing anyone could select (an entry the JPD sent
without its repository key), so the emitter leaves it out and warns once per
family rather than expose a series that would merge every such entry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client.core import HistogramMetricFamily, Metric

from exporter.outcomes import printable
from exporter.series import SeriesFamily

log = logging.getLogger(__name__)

#: default buckets for durations in seconds (HTTP calls, worker runs)
DURATION_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: the state a state set reports for a value the documents do not list
UNKNOWN_STATE = "unknown"


class Kind(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    #: a documented enumeration: one gauge series per state, 1 for the current one
    STATE_SET = "state set"
    #: descriptive labels on a gauge of value 1 (the name ends in ``_info``)
    INFO = "info"


_SUFFIXES: dict[Kind, tuple[str, ...]] = {
    Kind.COUNTER: ("_total", "_created"),
    Kind.HISTOGRAM: ("_bucket", "_count", "_sum", "_created"),
}


class Permission(StrEnum):
    """What the credentials need for an endpoint, as the documents (and the field) say."""

    NONE = "none"
    ANONYMOUS = "any user; anonymous where the JPD allows it"
    READ = "read permission on the repository"
    USER = "any authenticated user (a non-admin sees only its own)"
    ADMIN = "an admin user"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A route template a collector reads, and the permission it needs."""

    template: str
    needs: Permission
    owner: str


class DeclarationError(ValueError):
    """Two declarations claim one sample name, or a declaration is malformed."""


class LabelMismatch(ValueError):
    """A sample's label names differ from its family's declaration."""


@dataclass(frozen=True, slots=True)
class Family:
    """One declared family. ``name`` of a counter excludes ``_total``."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    owner: str
    #: for state sets: the documented states, in order
    states: tuple[str, ...] = ()
    #: the labels that identify a series; a sample with any of them empty is left out
    key: tuple[str, ...] = ()

    @property
    def sample_names(self) -> tuple[str, ...]:
        suffixes = _SUFFIXES.get(self.kind, ())
        if self.kind is Kind.COUNTER:
            return tuple(self.name + s for s in suffixes)
        return (self.name, *(self.name + s for s in suffixes))

    @property
    def exposed_name(self) -> str:
        """The name users query (counters with ``_total``)."""
        return self.name + "_total" if self.kind is Kind.COUNTER else self.name


class Registry:
    """Every declared family, by name; refuses a second claim on a sample name."""

    def __init__(self) -> None:
        self._families: dict[str, Family] = {}
        self._claims: dict[str, str] = {}
        self._endpoints: dict[str, list[Endpoint]] = {}

    def add_endpoint(self, endpoint: Endpoint) -> str:
        known = self._endpoints.setdefault(endpoint.template, [])
        if any(e.needs is not endpoint.needs for e in known):
            raise DeclarationError(f"{endpoint.template}: declared as needing {known[0].needs!r} by {known[0].owner}, "
                                   f"{endpoint.needs!r} by {endpoint.owner}")
        if endpoint not in known:
            known.append(endpoint)
        return endpoint.template

    def permission(self, template: str) -> Permission | None:
        """What an endpoint needs, if some collector declared it."""
        known = self._endpoints.get(template)
        return known[0].needs if known else None

    def endpoints(self) -> list[Endpoint]:
        return [e for known in self._endpoints.values() for e in known]

    def add(self, family: Family) -> Family:
        known = self._families.get(family.name)
        if known is not None:
            if known == family:  # the same module imported twice (reloads): the same declaration
                return known
            raise DeclarationError(f"{family.name} declared by {family.owner} is already declared by {known.owner}")
        for sample in family.sample_names:
            holder = self._claims.get(sample)
            if holder is not None:
                raise DeclarationError(f"{family.owner}: {family.name} would expose {sample}, "
                                       f"already exposed by {holder}")
        for sample in family.sample_names:
            self._claims[sample] = family.name
        self._families[family.name] = family
        return family

    def claimed(self, sample_name: str) -> str | None:
        """The declared family that exposes ``sample_name``, if any (for names passed through from a JPD)."""
        return self._claims.get(sample_name)

    def families(self, owner: str | None = None) -> list[Family]:
        return [f for f in self._families.values() if owner is None or f.owner == owner]


#: the one registry of the process
REGISTRY = Registry()


class Declarations:
    """The families of one module; ``owner`` is the collector's name, or "exporter" for self-metrics.

    ``target`` is prepended to the label names unless ``per_target=False``
    (process-wide self-metrics such as the build info). ``key`` names the
    labels that identify a series; by default the first declared one, and
    none for a family without labels. A family whose first label may
    legitimately be empty declares another, or ``key=()``.
    """

    def __init__(self, owner: str, registry: Registry = REGISTRY) -> None:
        self.owner = owner
        self._registry = registry

    def _add(self, name: str, kind: Kind, help_text: str, labels: Sequence[str], states: Sequence[str] = (),
             per_target: bool = True, key: Sequence[str] | None = None) -> Family:
        key = tuple(labels[:1]) if key is None else tuple(key)
        if any(k not in labels for k in key):
            raise DeclarationError(f"{name}: key {list(key)} names labels it does not declare")
        if "target" in labels:
            raise DeclarationError(f"{name}: 'target' is implied, do not declare it")
        if kind is Kind.COUNTER and name.endswith("_total"):
            raise DeclarationError(f"{name}: declare a counter without its _total suffix")
        if kind is Kind.INFO and not name.endswith("_info"):
            raise DeclarationError(f"{name}: an info family's name ends in _info")
        if kind is Kind.STATE_SET and not states:
            raise DeclarationError(f"{name}: a state set needs its documented states")
        all_labels = (("target",) if per_target else ()) + tuple(labels) + (("status",) if states else ())
        return self._registry.add(Family(name, kind, help_text, all_labels, self.owner, tuple(states), key))

    def endpoint(self, template: str, needs: Permission) -> str:
        """A route template this module reads; returns the template."""
        return self._registry.add_endpoint(Endpoint(template, needs, self.owner))

    def gauge(self, name: str, help_text: str, *labels: str, key: Sequence[str] | None = None,
              per_target: bool = True) -> Family:
        return self._add(name, Kind.GAUGE, help_text, labels, per_target=per_target, key=key)

    def counter(self, name: str, help_text: str, *labels: str, key: Sequence[str] | None = None,
                per_target: bool = True) -> Family:
        return self._add(name, Kind.COUNTER, help_text, labels, per_target=per_target, key=key)

    def histogram(self, name: str, help_text: str, *labels: str, key: Sequence[str] | None = None) -> Family:
        return self._add(name, Kind.HISTOGRAM, help_text, labels, key=key)

    def info(self, name: str, help_text: str, *labels: str, key: Sequence[str] | None = None,
             per_target: bool = True) -> Family:
        return self._add(name, Kind.INFO, help_text, labels, per_target=per_target, key=key)

    def state_set(self, name: str, help_text: str, states: Sequence[str], *labels: str,
                  key: Sequence[str] | None = None) -> Family:
        """Labels exclude ``status``, which holds the state (and never identifies the series)."""
        return self._add(name, Kind.STATE_SET, help_text, labels, states=states, key=key)


_warned_unknown: set[tuple[str, str]] = set()
_warned_unidentified: set[str] = set()
_warned_duplicate: set[str] = set()


def _format_bound(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


Built = SeriesFamily | HistogramMetricFamily


class Emitter:
    """Families under construction for one target (one part of one collector run)."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._families: dict[str, Built] = {}
        self._foreign: list[Metric] = []
        #: label values already given per family: a JPD that lists one entry twice gets one series
        self._seen: dict[str, set[tuple[str, ...]]] = {}

    def _values(self, family: Family, labels: Mapping[str, object]) -> tuple[str, ...] | None:
        """The label values in declared order; None when an identifying one is empty: the sample is left out."""
        given = {"target": self.target, **labels} if self.target is not None else dict(labels)
        if given.keys() != set(family.labels):
            missing = sorted(set(family.labels) - given.keys())
            extra = sorted(given.keys() - set(family.labels))
            raise LabelMismatch(f"{family.name}: labels differ from its declaration "
                                f"(missing {missing}, undeclared {extra})")
        values = tuple("" if given[k] is None else printable(str(given[k])) for k in family.labels)
        for name in family.key:
            if not values[family.labels.index(name)].strip():
                if family.name not in _warned_unidentified:
                    _warned_unidentified.add(family.name)
                    log.warning("%s: series left out: the JPD sent an entry without %s", family.name, name)
                return None
        seen = self._seen.setdefault(family.name, set())
        if values in seen:
            # Prometheus would keep the first of two equal series anyway; say so once instead of exposing both.
            if family.name not in _warned_duplicate:
                _warned_duplicate.add(family.name)
                log.warning("%s: series left out: the JPD sent the entry %s twice; the first is kept",
                            family.name, dict(zip(family.labels, values, strict=True)))
            return None
        # The tuple is both what the check remembers and the series' row: kept once.
        seen.add(values)
        return values

    def _family(self, family: Family) -> Built:
        built: Built | None = self._families.get(family.name)
        if built is None:
            if family.kind is Kind.HISTOGRAM:
                built = HistogramMetricFamily(family.name, family.help, labels=list(family.labels))
            else:
                typ = "counter" if family.kind is Kind.COUNTER else "gauge"
                built = SeriesFamily(family.name, family.help, typ, family.labels)
            self._families[family.name] = built
        return built

    def touch(self, *families: Family) -> None:
        """Make families exist without samples, so their HELP shows while there is nothing to count."""
        for family in families:
            self._family(family)

    def gauge(self, family: Family, value: float | bool | None, **labels: object) -> None:
        """A gauge or info sample; ``None`` means the JPD had no value: no series, not a zero."""
        if family.kind not in (Kind.GAUGE, Kind.INFO):
            raise TypeError(f"{family.name} is a {family.kind}, not a gauge")
        values = self._values(family, labels)
        built = self._family(family)
        if value is not None and values is not None:
            assert isinstance(built, SeriesFamily)
            built.add_row(values, float(value))

    def info(self, family: Family, **labels: object) -> None:
        self.gauge(family, 1.0, **labels)

    def counter(self, family: Family, value: float, **labels: object) -> None:
        if family.kind is not Kind.COUNTER:
            raise TypeError(f"{family.name} is a {family.kind}, not a counter")
        values = self._values(family, labels)
        built = self._family(family)
        assert isinstance(built, SeriesFamily)
        if values is not None:
            built.add_row(values, float(value))

    def state(self, family: Family, current: str | None, **labels: object) -> None:
        """One series per documented state, 1 for ``current``.

        A state the documents do not know is reported as ``unknown`` (warned
        once per family and value) rather than dropped.
        """
        if family.kind is not Kind.STATE_SET:
            raise TypeError(f"{family.name} is a {family.kind}, not a state set")
        built = self._family(family)
        assert isinstance(built, SeriesFamily)
        identity = self._values(family, {**labels, "status": ""})
        if identity is None:
            return
        values = list(identity)
        if current is not None and current not in family.states:
            key = (family.name, current)
            if key not in _warned_unknown:
                _warned_unknown.add(key)
                log.warning('%s: undocumented state %r reported as status="%s"', family.name, current, UNKNOWN_STATE)
            current = UNKNOWN_STATE
        status = family.labels.index("status")
        states = (*family.states, UNKNOWN_STATE) if current == UNKNOWN_STATE else family.states
        for state in states:
            values[status] = state
            built.add_row(tuple(values), 1.0 if state == current else 0.0)

    def histogram(self, family: Family, buckets: Sequence[float], cumulative: Sequence[float], total: float,
                  **labels: object) -> None:
        """A cumulative histogram; ``cumulative`` has one count per bound and the +Inf count last."""
        if family.kind is not Kind.HISTOGRAM:
            raise TypeError(f"{family.name} is a {family.kind}, not a histogram")
        values = self._values(family, labels)
        pairs = [(_format_bound(b), float(c)) for b, c in zip((*buckets, math.inf), cumulative, strict=True)]
        built = self._family(family)
        assert isinstance(built, HistogramMetricFamily)
        if values is not None:
            built.add_metric(values, pairs, float(total))

    def extend(self, families: Iterable[Metric]) -> None:
        """Families built elsewhere (passed through from the JPD), kept as they are."""
        self._foreign.extend(families)

    def families(self) -> list[Metric]:
        return [*self._foreign, *self._families.values()]


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


def merge_families(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """Merge families of the same name from several targets or parts.

    The text format requires all samples of one family in one block.
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
