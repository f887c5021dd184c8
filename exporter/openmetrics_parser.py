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
   prometheus_client renders correctly in both formats; a family whose samples
   cannot be valid under its declared type is re-exposed untyped, one family
   per sample name, so its values survive under the vendor's names.
3. Families whose names would clash (a counter ``x`` and a gauge ``x_total``
   both produce the series ``x_total``) are resolved first come, first served.

No I/O happens here; the collector adds labels, filters and limits.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NUMBER_RE = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[Ii]nf(?:inity)?|NaN|nan)")

#: the types a family may be re-exposed as; everything else becomes untyped ("unknown")
CANONICAL_TYPES = ("counter", "gauge", "histogram", "summary", "unknown")

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
    #: declared families re-exposed untyped because their samples contradict the declared type
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
        out.append({"\\": "\\", "n": "\n", '"': '"'}.get(nxt, "\\" + nxt))
    return "".join(out)


def _parse_number(token: str) -> float:
    if not _NUMBER_RE.fullmatch(token):
        raise ValueError(f"not a number: {token!r}")
    return float(token)


def _parse_labels(line: str, pos: int) -> tuple[dict[str, str], int]:
    """Labels from just after ``{``; returns them and the position after ``}``."""
    labels: dict[str, str] = {}
    end = len(line)
    while True:
        while pos < end and line[pos] in " \t":
            pos += 1
        if pos < end and line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME_RE.match(line, pos)
        if not match:
            raise ValueError("invalid label name")
        key = match.group()
        pos = match.end()
        while pos < end and line[pos] in " \t":
            pos += 1
        if line[pos:pos + 1] != "=":
            raise ValueError("expected '='")
        pos += 1
        while pos < end and line[pos] in " \t":
            pos += 1
        if line[pos:pos + 1] != '"':
            raise ValueError("expected a quoted label value")
        pos += 1
        chars: list[str] = []
        while True:
            if pos >= end:
                raise ValueError("unterminated label value")
            char = line[pos]
            if char == '"':
                pos += 1
                break
            if char == "\\" and pos + 1 < end:
                nxt = line[pos + 1]
                chars.append({"\\": "\\", "n": "\n", '"': '"'}.get(nxt, "\\" + nxt))
                pos += 2
                continue
            chars.append(char)
            pos += 1
        if key in labels:
            raise ValueError(f"label {key!r} given twice")
        labels[key] = "".join(chars)
        while pos < end and line[pos] in " \t":
            pos += 1
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
    base = family.name.removesuffix("_total")
    for sample in family.samples:
        if sample.name == base + "_total":
            if not _counter_like(sample.value):
                return None
        elif sample.name != base + "_created" or math.isnan(sample.value):
            return None
    return Family(base, "counter", family.help, list(family.samples))


def _groups(samples: Iterable[Sample], key: str) -> dict[Labels, list[Sample]]:
    groups: dict[Labels, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(_without(sample.labels, key), []).append(sample)
    return groups


def _histogram(family: Family) -> Family | None:
    name = family.name
    out: list[Sample] = []
    for _, group in _groups(family.samples, "le").items():
        buckets: list[tuple[float, Sample]] = []
        count = total = created = None
        for sample in group:
            if sample.name == name + "_bucket":
                le = _label(sample.labels, "le")
                try:
                    bound = _parse_number(le or "")
                except ValueError:
                    return None
                if math.isnan(bound) or not _whole(sample.value):
                    return None
                if math.isinf(bound) and bound > 0:
                    # OpenMetrics accepts only this spelling of the last bound.
                    buckets.append((bound, Sample(sample.name, _with(sample.labels, "le", "+Inf"), sample.value)))
                else:
                    buckets.append((bound, sample))
            elif sample.name == name + "_count":
                count = sample
            elif sample.name == name + "_sum":
                total = sample
            elif sample.name == name + "_created":
                created = sample
            else:
                return None
        buckets.sort(key=lambda item: item[0])
        if not buckets or buckets[-1][0] != math.inf:
            return None  # no +Inf bucket: not a histogram either format accepts
        bounds = [b for b, _ in buckets]
        values = [s.value for _, s in buckets]
        if len(set(bounds)) != len(bounds) or any(a > b for a, b in itertools.pairwise(values)):
            return None
        if (count is None) != (total is None):
            return None
        if count is not None and (not _whole(count.value) or count.value != values[-1]):
            return None
        if total is not None and (not _counter_like(total.value) or bounds[0] < 0):
            return None
        if created is not None and math.isnan(created.value):
            return None
        out.extend(s for _, s in buckets)
        out.extend(s for s in (count, total, created) if s is not None)
    return Family(name, "histogram", family.help, out)


def _summary(family: Family) -> Family | None:
    name = family.name
    out: list[Sample] = []
    for _, group in _groups(family.samples, "quantile").items():
        quantiles: list[tuple[float, Sample]] = []
        tail: dict[str, Sample] = {}
        for sample in group:
            if sample.name == name:
                try:
                    q = _parse_number(_label(sample.labels, "quantile") or "")
                except ValueError:
                    return None
                if not 0 <= q <= 1 or sample.value < 0:
                    return None
                quantiles.append((q, sample))
            elif sample.name in (name + "_count", name + "_sum", name + "_created"):
                tail[sample.name] = sample
            else:
                return None
        count, total = tail.get(name + "_count"), tail.get(name + "_sum")
        if count is not None and not _whole(count.value):
            return None
        if total is not None and not _counter_like(total.value):
            return None
        quantiles.sort(key=lambda item: item[0])
        out.extend(s for _, s in quantiles)
        out.extend(tail[n] for n in (name + "_count", name + "_sum", name + "_created") if n in tail)
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
