"""Rendering families to the text and OpenMetrics formats, incrementally.

The sample lines of a collector's families are rendered once, when its
snapshot changes; a payload is then assembled by joining those chunks under
one HELP/TYPE header per family name (the formats require all samples of a
family in one block, whatever target or collector they come from). A run of
the health collector therefore never re-renders 40,000 storage series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

from exporter.series import SampleRows

# The Go-style float text Prometheus itself writes ("+Inf", "1.0e+06"); untyped in prometheus_client.
_go_float: Callable[[float], str] = floatToGoString

# Text-format names of the types prometheus_client's Metric may carry.
_TEXT_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_OM_TYPES = {"untyped": "unknown"}


@dataclass(frozen=True, slots=True)
class RenderedFamily:
    name: str
    type: str
    documentation: str
    samples: bytes
    series: int


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _row_lines(rows: SampleRows) -> list[str]:
    """The lines of an emitter's family, read from its rows without making a Sample of each."""
    order = sorted(range(len(rows.labels)), key=rows.labels.__getitem__)
    names = [(rows.labels[i], i) for i in order]
    lines = []
    for values, number in zip(rows.rows, rows.numbers, strict=True):
        if names:
            labels = ",".join([f'{k}="{_escape_label(values[i])}"' for k, i in names])
            lines.append(f"{rows.name}{{{labels}}} {_go_float(number)}\n")
        else:
            lines.append(f"{rows.name} {_go_float(number)}\n")
    return lines


def _sample_lines(metric: Metric) -> bytes:
    if isinstance(metric.samples, SampleRows):
        return "".join(_row_lines(metric.samples)).encode("utf-8", "replace")
    out = []
    for sample in metric.samples:
        if sample.labels:
            labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(sample.labels.items()))
            out.append(f"{sample.name}{{{labels}}} {_go_float(sample.value)}\n")
        else:
            out.append(f"{sample.name} {_go_float(sample.value)}\n")
    # A lone surrogate ("\udfff" in a JPD's JSON) has no UTF-8 form: it becomes "?" instead of failing the run.
    return "".join(out).encode("utf-8", "replace")


def render_families(families: Iterable[Metric]) -> list[RenderedFamily]:
    """Sample lines of each family, shared by both formats."""
    return [RenderedFamily(f.name, f.type, f.documentation, _sample_lines(f), len(f.samples)) for f in families]


def _header(family: RenderedFamily, openmetrics: bool) -> str:
    doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        doc = doc.replace('"', r"\"")
        typ = _OM_TYPES.get(family.type, family.type)
        return f"# HELP {family.name} {doc}\n# TYPE {family.name} {typ}\n"
    name = family.name
    if family.type == "counter":
        name += "_total"
    elif family.type == "info":
        name += "_info"
    typ = _TEXT_TYPES.get(family.type, family.type)
    return f"# HELP {name} {doc}\n# TYPE {name} {typ}\n"


def assemble_chunks(groups: Iterable[Iterable[RenderedFamily]], openmetrics: bool = False) -> Iterator[bytes]:
    """The payload in pieces: one block per family name, in order of first appearance."""
    blocks: dict[str, tuple[RenderedFamily, list[bytes]]] = {}
    for group in groups:
        for family in group:
            block = blocks.get(family.name)
            if block is None:
                blocks[family.name] = (family, [family.samples])
            else:
                block[1].append(family.samples)
    for first, chunks in blocks.values():
        yield _header(first, openmetrics).encode("utf-8", "replace")
        yield from chunks
    if openmetrics:
        yield b"# EOF\n"


def assemble(groups: Iterable[Iterable[RenderedFamily]], openmetrics: bool = False) -> bytes:
    """The whole payload; ``# EOF`` ends OpenMetrics."""
    return b"".join(assemble_chunks(groups, openmetrics))
