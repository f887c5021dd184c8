"""Lenient reading of a JFrog service's own metrics body, and families that always render validly.

JFrog services publish "Open Metrics" that neither the text format 0.0.4 nor
OpenMetrics 1.0 parsers accept as they are: ``# UPDATED`` lines, HELP/TYPE
blocks repeated for one family, sample timestamps, the same series twice, and
families typed in ways their samples contradict. Re-exposing that verbatim
breaks the whole scrape, so the body goes through three pure steps:

1. :func:`read_body` splits it into metadata and samples, one line at a time;
   a line it cannot read is skipped and counted, never fatal. Timestamps and
   exemplars are dropped, repeated HELP/TYPE blocks merge, and the last of
   identical series wins (the others are counted).
2. :func:`canonical_families` turns every family into the shape
   prometheus_client renders correctly in both formats and its public family
   types can carry; a family whose samples cannot be valid under its declared
   type, or that those types cannot carry (summary quantiles, ``_created``
   samples beside a histogram or summary), is re-exposed untyped, one family
   per sample name, so its values survive under the vendor's names.
3. Families whose names would clash (a counter ``x`` and a gauge ``x_total``
   both produce the series ``x_total``) are resolved first come, first served.

:func:`to_metrics` then builds a family with prometheus_client's public
family types and the labels the collector adds. No I/O happens here; the
collector filters and limits.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
    UnknownMetricFamily,
)

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NUMBER_RE = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii]nf(?:inity)?|NaN|nan)")

#: the types a family may be re-exposed as; everything else becomes untyped ("unknown")
CANONICAL_TYPES = ("counter", "gauge", "histogram", "summary", "unknown")

#: HELP for a vendor family the JPD sends without one (an empty HELP is a promtool finding)
NO_HELP = "Sent by the JPD without a description."

# Which sample-name suffixes belong to a family of each declared type.
_SUFFIX_TYPES: dict[str, frozenset[str]] = {
    "_total": frozenset({"counter"}),
    "_created": frozenset({"counter", "histogram", "summary"}),
    "_bucket": frozenset({"histogram", "gaugehistogram"}),
    "_count": frozenset({"histogram", "summary"}),
    "_sum": frozenset({"histogram", "summary"}),
    "_gcount": frozenset({"gaugehistogram"}),
    "_gsum": frozenset({"gaugehistogram"}),
    "_info": frozenset({"info"}),
}
# Declared types whose samples never carry the family name itself.
_NO_EXACT_SAMPLE = frozenset({"histogram", "gaugehistogram", "info"})
_KNOWN_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "unknown", "untyped", "info", "stateset",
                          "gaugehistogram"})

Labels = tuple[tuple[str, str], ...]

# Escapes of HELP texts and label values.
_ESCAPES = {"\\": "\\", "n": "\n", '"': '"'}


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Labels  # sorted by name, empty values removed (Prometheus treats them as absent)
    value: float


@dataclass(slots=True)
class Family:
    name: str
    type: str
    help: str
    samples: list[Sample] = field(default_factory=list)

    def reserved_names(self) -> tuple[str, ...]:
        """Every name this family occupies in either exposition format."""
        return reserved_names(self.name, self.type)


@dataclass(slots=True)
class _Meta:
    help: str = ""
    types: set[str] = field(default_factory=set)

    @property
    def type(self) -> str | None:
        if not self.types:
            return None
        # Blocks that disagree about the type leave nothing we can trust.
        return next(iter(self.types)) if len(self.types) == 1 else "unknown"


@dataclass(slots=True)
class RawBody:
    """Step 1: what a body says, before any family is checked against its type."""

    families: list[Family]
    unparseable_lines: int = 0
    duplicate_samples: int = 0


@dataclass(slots=True)
class Body:
    """The families of one body that render validly, and what was lost on the way."""

    families: list[Family]
    unparseable_lines: int = 0
    duplicate_samples: int = 0
    #: declared families re-exposed untyped because their samples contradict the declared type (or carry
    #: what prometheus_client's family types cannot: summary quantiles, the _created of a histogram or summary)
    retyped_families: int = 0
    #: samples of families whose names clash with an earlier family of the same body
    conflicting_samples: int = 0


def reserved_names(name: str, typ: str) -> tuple[str, ...]:
    if typ == "counter":
        return name, name + "_total", name + "_created"
    if typ == "histogram":
        return name, name + "_bucket", name + "_count", name + "_sum", name + "_created"
    if typ == "summary":
        return name, name + "_count", name + "_sum", name + "_created"
    return (name,)


# -- step 1: lines ------------------------------------------------------------

def _unescape_help(text: str) -> str:
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        nxt = next(chars, "")
        out.append(_ESCAPES.get(nxt, "\\" + nxt))
    return "".join(out)


def _parse_number(token: str) -> float:
    if not _NUMBER_RE.fullmatch(token):
        raise ValueError(f"not a number: {token!r}")
    return float(token)


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _quoted(line: str, pos: int) -> tuple[str, int]:
    """A label value from just after its opening quote; returns it and the position after the closing one."""
    chars: list[str] = []
    end = len(line)
    while pos < end:
        char = line[pos]
        if char == '"':
            return "".join(chars), pos + 1
        if char == "\\" and pos + 1 < end:
            nxt = line[pos + 1]
            chars.append(_ESCAPES.get(nxt, "\\" + nxt))
            pos += 2
        else:
            chars.append(char)
            pos += 1
    raise ValueError("unterminated label value")


def _parse_labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Labels from just after ``{``; returns them and the position after ``}``."""
    labels: dict[str, str] = {}
    while True:
        pos = _skip_blanks(line, pos)
        if line[pos:pos + 1] == "}":
            return labels, pos + 1
        match = _LABEL_NAME_RE.match(line, pos)
        if not match:
            raise ValueError("invalid label name")
        key = match.group()
        pos = _skip_blanks(line, match.end())
        if line[pos:pos + 1] != "=":
            raise ValueError("expected '='")
        pos = _skip_blanks(line, pos + 1)
        if line[pos:pos + 1] != '"':
            raise ValueError("expected a quoted label value")
        value, pos = _quoted(line, pos + 1)
        if key in labels:
            raise ValueError(f"label {key!r} given twice")
        labels[key] = value
        pos = _skip_blanks(line, pos)
        if line[pos:pos + 1] == ",":
            pos += 1
        elif line[pos:pos + 1] != "}":
            raise ValueError("expected ',' or '}'")


def parse_sample_line(line: str, rename: frozenset[str] = frozenset()) -> Sample:
    """One sample line; the timestamp and any exemplar are dropped.

    Vendor labels named in ``rename`` become ``exported_<name>`` (the
    Prometheus convention) so the labels the exporter adds never collide.
    """
    match = _NAME_RE.match(line)
    if not match:
        raise ValueError("invalid metric name")
    name = match.group()
    pos = match.end()
    labels: dict[str, str] = {}
    rest = line[pos:]
    stripped = rest.lstrip(" \t")
    if stripped.startswith("{"):
        labels, after = _parse_labels(line, pos + (len(rest) - len(stripped)) + 1)
        rest = line[after:]
    elif rest and rest[0] not in " \t":
        raise ValueError("invalid metric name")
    # OpenMetrics exemplars follow " # "; label values are already consumed.
    tokens = rest.split(" # ", 1)[0].split()
    if not 1 <= len(tokens) <= 2:
        raise ValueError("expected a value and an optional timestamp")
    value = _parse_number(tokens[0])
    if len(tokens) == 2:
        _parse_number(tokens[1])  # a timestamp must at least be a number; it is not kept
    out: dict[str, str] = {}
    for key, val in labels.items():
        if key.startswith("__"):
            raise ValueError(f"reserved label name {key!r}")
        exposed = "exported_" + key if key in rename else key
        if exposed != key and exposed in labels:
            raise ValueError(f"label {exposed!r} given twice")
        if val != "":
            out[exposed] = val
    return Sample(name, tuple(sorted(out.items())), value)


def read_body(text: str, rename: frozenset[str] = frozenset({"target"})) -> RawBody:
    """Metadata and samples of a body, grouped into the families the metadata declares."""
    metas: dict[str, _Meta] = {}
    order: dict[str, int] = {}
    samples: list[Sample] = []
    unparseable = 0
    # Only "\n" ends a line in either format (splitlines would also split label values at U+2028 and co.).
    for raw_line in text.split("\n"):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].split(None, 2)
            if len(parts) >= 2 and parts[0] in ("HELP", "TYPE"):
                name = parts[1]
                if not _NAME_RE.fullmatch(name):
                    unparseable += 1
                    continue
                meta = metas.setdefault(name, _Meta())
                order.setdefault(name, len(order))
                rest = parts[2] if len(parts) > 2 else ""
                if parts[0] == "HELP":
                    meta.help = meta.help or _unescape_help(rest)
                else:
                    typ = rest.strip().lower()
                    meta.types.add("unknown" if typ == "untyped" or typ not in _KNOWN_TYPES else typ)
            # "# UPDATED", "# UNIT", "# EOF" and plain comments carry nothing to re-expose.
            continue
        try:
            samples.append(parse_sample_line(line, rename))
        except ValueError:
            unparseable += 1

    families: dict[str, Family] = {}
    index: dict[str, dict[tuple[str, Labels], int]] = {}
    duplicates = 0
    for sample in samples:
        name = _family_of(sample.name, metas)
        family = families.get(name)
        if family is None:
            meta = metas.get(name, _Meta())
            family = families[name] = Family(name, meta.type or "unknown", meta.help)
            index[name] = {}
            order.setdefault(name, len(order))
        key = (sample.name, sample.labels)
        position = index[name].get(key)
        if position is None:
            index[name][key] = len(family.samples)
            family.samples.append(sample)
        else:
            duplicates += 1  # the same series again: the later value is the newer one
            family.samples[position] = sample
    ordered = sorted(families.values(), key=lambda f: order[f.name])
    return RawBody(ordered, unparseable, duplicates)


def _family_of(sample_name: str, metas: dict[str, _Meta]) -> str:
    meta = metas.get(sample_name)
    if meta is not None and meta.type is not None and meta.type not in _NO_EXACT_SAMPLE:
        return sample_name
    for suffix, types in _SUFFIX_TYPES.items():
        if sample_name.endswith(suffix):
            base = metas.get(sample_name[: -len(suffix)])
            if base is not None and base.type in types:
                return sample_name[: -len(suffix)]
    return sample_name


# -- step 2: types ------------------------------------------------------------

def _without(labels: Labels, key: str) -> Labels:
    return tuple(item for item in labels if item[0] != key)


def _label(labels: Labels, key: str) -> str | None:
    for k, v in labels:
        if k == key:
            return v
    return None


def _with(labels: Labels, key: str, value: str) -> Labels:
    return tuple(sorted((*_without(labels, key), (key, value))))


def _counter_like(value: float) -> bool:
    return not math.isnan(value) and value >= 0


def _whole(value: float) -> bool:
    return math.isfinite(value) and value >= 0 and value.is_integer()


def _counter(family: Family) -> Family | None:
    """Every series a ``_total`` and at most a ``_created``, as CounterMetricFamily re-exposes them."""
    base = family.name.removesuffix("_total")
    if base.endswith("_total"):
        return None  # CounterMetricFamily would take the second _total off the name too
    totals: set[Labels] = set()
    created: set[Labels] = set()
    for sample in family.samples:
        if sample.name == base + "_total" and _counter_like(sample.value):
            totals.add(sample.labels)
        elif sample.name == base + "_created" and not math.isnan(sample.value):
            created.add(sample.labels)
        else:
            return None
    if not created <= totals:
        return None  # a _created without its _total
    return Family(base, "counter", family.help, list(family.samples))


def _groups(samples: Iterable[Sample], key: str) -> dict[Labels, list[Sample]]:
    groups: dict[Labels, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(_without(sample.labels, key), []).append(sample)
    return groups


def _histogram(family: Family) -> Family | None:
    out: list[Sample] = []
    for group in _groups(family.samples, "le").values():
        series = _histogram_series(family.name, group)
        if series is None:
            return None
        out.extend(series)
    return Family(family.name, "histogram", family.help, out)


def _histogram_series(name: str, group: list[Sample]) -> list[Sample] | None:
    """One series of a histogram (its samples share every label but le), ordered; None if it is not one.

    A ``_created`` sample is not accepted: HistogramMetricFamily, which
    re-exposes the family, has none.
    """
    buckets: list[tuple[float, Sample]] = []
    tail: dict[str, Sample] = {}
    for sample in group:
        if sample.name == name + "_bucket":
            bucket = _bucket(sample)
            if bucket is None:
                return None
            buckets.append(bucket)
        elif sample.name in (name + "_count", name + "_sum"):
            tail[sample.name] = sample
        else:
            return None
    buckets.sort(key=lambda item: item[0])
    count, total = tail.get(name + "_count"), tail.get(name + "_sum")
    if not _valid_histogram(buckets, count, total):
        return None
    return [*(s for _, s in buckets), *(s for s in (count, total) if s is not None)]


def _bucket(sample: Sample) -> tuple[float, Sample] | None:
    """A bucket's bound and sample, the last bound spelt +Inf; None if it cannot be a bucket."""
    try:
        bound = _parse_number(_label(sample.labels, "le") or "")
    except ValueError:
        return None
    if math.isnan(bound) or not _whole(sample.value):
        return None
    if math.isinf(bound) and bound > 0:
        # OpenMetrics accepts only this spelling of the last bound.
        return bound, Sample(sample.name, _with(sample.labels, "le", "+Inf"), sample.value)
    return bound, sample


def _valid_histogram(buckets: list[tuple[float, Sample]], count: Sample | None, total: Sample | None) -> bool:
    """Sorted buckets up to +Inf, cumulative, each bound once; count and sum both or neither, and consistent."""
    if not buckets or buckets[-1][0] != math.inf:
        return False  # no +Inf bucket: not a histogram either format accepts
    bounds = [b for b, _ in buckets]
    values = [s.value for _, s in buckets]
    if len(set(bounds)) != len(bounds) or any(a > b for a, b in itertools.pairwise(values)):
        return False
    if count is None or total is None:
        return count is None and total is None
    return _whole(count.value) and count.value == values[-1] and _counter_like(total.value) and bounds[0] >= 0


def _summary(family: Family) -> Family | None:
    """Every series a ``_count`` and a ``_sum``, as SummaryMetricFamily re-exposes them.

    That type carries no quantiles and no ``_created``: a summary with them
    is re-exposed untyped, its values under the vendor's names.
    """
    name = family.name
    series: dict[Labels, dict[str, Sample]] = {}
    for sample in family.samples:
        if sample.name not in (name + "_count", name + "_sum"):
            return None
        series.setdefault(sample.labels, {})[sample.name] = sample
    out: list[Sample] = []
    for parts in series.values():
        count, total = parts.get(name + "_count"), parts.get(name + "_sum")
        if count is None or total is None or not _whole(count.value) or not _counter_like(total.value):
            return None
        out += [count, total]
    return Family(name, "summary", family.help, out)


def _untyped(family: Family) -> list[Family]:
    """One untyped family per sample name: every value survives under its vendor name."""
    split: dict[str, Family] = {}
    for sample in family.samples:
        split.setdefault(sample.name, Family(sample.name, "unknown", family.help)).samples.append(sample)
    return list(split.values())


def canonical_families(raw: RawBody) -> Body:
    """Families valid under their type in both formats, with clashing names resolved."""
    body = Body([], raw.unparseable_lines, raw.duplicate_samples)
    taken: set[str] = set()
    for family in raw.families:
        canonical: Family | None = None
        if family.type == "counter":
            canonical = _counter(family)
        elif family.type in ("gauge", "unknown"):
            # Samples resolved to a gauge or untyped family always carry its exact name.
            canonical = family
        elif family.type == "histogram":
            canonical = _histogram(family)
        elif family.type == "summary":
            canonical = _summary(family)
        if canonical is not None:
            results = [canonical]
        else:
            body.retyped_families += 1
            results = _untyped(family)
        for result in results:
            names = result.reserved_names()
            if taken.intersection(names):
                body.conflicting_samples += len(result.samples)
                continue
            taken.update(names)
            body.families.append(result)
    return body


def parse_body(text: str, rename: frozenset[str] = frozenset({"target"})) -> Body:
    """Both steps: the families of a body that the exporter can re-expose."""
    return canonical_families(read_body(text, rename))


# -- prometheus_client families ----------------------------------------------------------

#: builds one family type from its name, HELP, label names and series (labels -> samples)
_Builder = Callable[[str, str, Sequence[str], Mapping[Labels, list[Sample]]], Metric]


def to_metrics(family: Family, added: Mapping[str, str]) -> list[Metric]:
    """``family`` as prometheus_client's public family types, every sample with the ``added`` labels too.

    Those types take their label names once, while a vendor family may leave
    a label out of some samples (an empty value is no label): one object per
    set of label names. The exposition renders objects of one name as one
    family, under one HELP and TYPE.
    """
    own = frozenset({"le"}) if family.type == "histogram" else frozenset()  # the type adds le itself
    by_names: dict[tuple[str, ...], dict[Labels, list[Sample]]] = {}
    for sample in family.samples:
        labels = tuple(sorted((*(item for item in sample.labels if item[0] not in own), *added.items())))
        by_names.setdefault(tuple(k for k, _ in labels), {}).setdefault(labels, []).append(sample)
    build = _BUILDERS[family.type]
    return [build(family.name, family.help or NO_HELP, names, series) for names, series in by_names.items()]


def _values(labels: Labels) -> list[str]:
    return [value for _, value in labels]


def _single_value_metric(kind: type[GaugeMetricFamily | UnknownMetricFamily]) -> _Builder:
    """A builder for the families whose every sample is one value under the family's name."""

    def build(name: str, help_text: str, names: Sequence[str], series: Mapping[Labels, list[Sample]]) -> Metric:
        metric = kind(name, help_text, labels=names)
        for labels, samples in series.items():
            for sample in samples:
                metric.add_metric(_values(labels), sample.value)
        return metric

    return build


def _counter_metric(name: str, help_text: str, names: Sequence[str],
                    series: Mapping[Labels, list[Sample]]) -> Metric:
    metric = CounterMetricFamily(name, help_text, labels=names)
    for labels, samples in series.items():
        values = {s.name: s.value for s in samples}
        metric.add_metric(_values(labels), values[name + "_total"], created=values.get(name + "_created"))
    return metric


def _histogram_metric(name: str, help_text: str, names: Sequence[str],
                      series: Mapping[Labels, list[Sample]]) -> Metric:
    metric = HistogramMetricFamily(name, help_text, labels=names)
    for labels, samples in series.items():
        buckets = [(_label(s.labels, "le") or "", s.value) for s in samples if s.name == name + "_bucket"]
        total = next((s.value for s in samples if s.name == name + "_sum"), None)
        # The type derives _count from the +Inf bucket, which the parser checked it equals.
        metric.add_metric(_values(labels), buckets, total)
    return metric


def _summary_metric(name: str, help_text: str, names: Sequence[str],
                    series: Mapping[Labels, list[Sample]]) -> Metric:
    metric = SummaryMetricFamily(name, help_text, labels=names)
    for labels, samples in series.items():
        values = {s.name: s.value for s in samples}
        metric.add_metric(_values(labels), int(values[name + "_count"]), values[name + "_sum"])
    return metric


_BUILDERS: dict[str, _Builder] = {
    "gauge": _single_value_metric(GaugeMetricFamily),
    "unknown": _single_value_metric(UnknownMetricFamily),
    "counter": _counter_metric,
    "histogram": _histogram_metric,
    "summary": _summary_metric,
}
