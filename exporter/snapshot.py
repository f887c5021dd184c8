"""The last complete data of every target × collector, and its rendered payload.

A successful run replaces its collector's families atomically; a failed run
leaves them and only updates the run record. The exposition is rendered when
something changed, never per scrape, so a scrape costs about as much as
sending bytes.
"""

from __future__ import annotations

import gzip
import io
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.client import SUCCESSFUL_OUTCOMES, Outcome
from exporter.exposition import RenderedFamily, assemble, assemble_chunks, render_families
from exporter.metrics import MetricSet, merge_families

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass(slots=True)
class RunRecord:
    """What the landing page and the self-metrics say about one target × collector."""

    interval: float
    base_interval: float
    outcome: Outcome | None = None
    reason: str = ""
    duration: float = 0.0
    last_run: float | None = None
    last_success: float | None = None
    consecutive_failures: int = 0
    runs: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESSFUL_OUTCOMES


@dataclass(slots=True)
class Payload:
    """One rendering of every snapshot; a scrape never sees half of one.

    Its gzip (what Prometheus asks for) is made when the payload is built,
    streamed from the rendered chunks; the plain text and OpenMetrics are
    assembled on the first request that asks for them.
    """

    generation: int
    groups: list[list[RenderedFamily]]
    text_gzip: bytes
    rendered_at: float
    render_seconds: float
    series: int
    _text: bytes | None = None
    _openmetrics: bytes | None = None
    _openmetrics_gzip: bytes | None = None

    @property
    def text(self) -> bytes:
        if self._text is None:
            self._text = assemble(self.groups)
        return self._text

    @property
    def openmetrics(self) -> bytes:
        if self._openmetrics is None:
            self._openmetrics = assemble(self.groups, openmetrics=True)
        return self._openmetrics

    def body(self, openmetrics: bool, gzipped: bool) -> bytes:
        if not openmetrics:
            return self.text_gzip if gzipped else self.text
        if not gzipped:
            return self.openmetrics
        if self._openmetrics_gzip is None:
            self._openmetrics_gzip = gzip.compress(self.openmetrics, compresslevel=5)
        return self._openmetrics_gzip


class SnapshotStore:
    def __init__(self) -> None:
        # Only the rendered form is kept: it is what is served, and a fraction of the size of Metric objects.
        self._rendered: dict[tuple[str, str], list[RenderedFamily]] = {}
        self._runs: dict[tuple[str, str], RunRecord] = {}
        self._extra_sources: list[Callable[[], Iterable[Metric]]] = []
        self.generation = 0
        self._payload: Payload | None = None

    # -- writing ---------------------------------------------------------
    def register(self, target: str, collector: str, interval: float) -> None:
        self._runs[(target, collector)] = RunRecord(interval=interval, base_interval=interval)
        self._rendered.setdefault((target, collector), [])

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None:
        """Families computed at render time (request counters kept by the clients)."""
        self._extra_sources.append(source)

    def record(
        self,
        target: str,
        collector: str,
        outcome: Outcome,
        reason: str,
        duration: float,
        families: list[Metric] | None = None,
        partial: list[Metric] | None = None,
        now: float | None = None,
        rendered: list[RenderedFamily] | None = None,
    ) -> RunRecord:
        """Record a run; ``rendered`` is ``families`` already rendered (off the event loop)."""
        key = (target, collector)
        now = time.time() if now is None else now
        run = self._runs[key]
        run.outcome = outcome
        run.reason = reason
        run.duration = duration
        run.last_run = now
        run.runs[outcome] += 1
        if outcome in SUCCESSFUL_OUTCOMES:
            run.last_success = now
            run.consecutive_failures = 0
            self._rendered[key] = rendered if rendered is not None else render_families(families or [])
        else:
            run.consecutive_failures += 1
            if partial:
                names = {f.name for f in partial}
                self._rendered[key] = [f for f in self._rendered[key] if f.name not in names] + \
                    render_families(partial)
        self.generation += 1
        return run

    # -- reading ---------------------------------------------------------
    def runs(self) -> dict[tuple[str, str], RunRecord]:
        return self._runs

    def run(self, target: str, collector: str) -> RunRecord:
        return self._runs[(target, collector)]

    def families(self, target: str, collector: str) -> list[Metric]:
        """The current data of one collector, parsed back from its rendering (for tools and tests)."""
        rendered = self._rendered.get((target, collector), [])
        return list(text_string_to_metric_families(assemble([rendered]).decode())) if rendered else []

    def series(self, target: str, collector: str) -> int:
        return sum(f.series for f in self._rendered.get((target, collector), []))

    def all_ran(self) -> bool:
        return all(run.last_run is not None for run in self._runs.values())

    def self_metrics(self) -> list[Metric]:
        build = Metric("jfrog_exporter_build_info", "Exporter version and Python version.", "gauge")
        build.add_sample("jfrog_exporter_build_info",
                         {"version": __version__, "python_version": platform.python_version()}, 1.0)
        by_target: dict[str, MetricSet] = {}
        for (target, collector), run in self._runs.items():
            metrics = by_target.setdefault(target, MetricSet(target))
            labels = {"collector": collector}
            metrics.gauge("jfrog_exporter_collector_success",
                          "1 if the last run of the collector succeeded (an endpoint the edition lacks counts).",
                          1.0 if run.succeeded else 0.0, **labels)
            metrics.gauge("jfrog_exporter_collector_duration_seconds", "Wall time of the collector's last run.",
                          run.duration if run.last_run is not None else None, **labels)
            metrics.gauge("jfrog_exporter_collector_last_success_timestamp_seconds",
                          "When the collector last succeeded: the age of its data.", run.last_success, **labels)
            metrics.gauge("jfrog_exporter_collector_interval_seconds",
                          "Current polling interval (grows while the collector keeps failing).", run.interval,
                          **labels)
            metrics.gauge("jfrog_exporter_collector_consecutive_failures",
                          "Runs that failed in a row since the last success.", run.consecutive_failures, **labels)
            for outcome, count in run.runs.items():
                metrics.counter("jfrog_exporter_collector_runs", "Collector runs by outcome.", count,
                                outcome=outcome.value, **labels)
        groups: list[Iterable[Metric]] = [[build]]
        groups.extend(m.families() for m in by_target.values())
        return merge_families(groups)

    def freeze(self) -> tuple[int, list[list[RenderedFamily]]]:
        """Everything to assemble; self-metrics are rendered now, snapshots were rendered when they changed."""
        groups = [render_families(self.self_metrics())]
        groups.extend(render_families(source()) for source in self._extra_sources)
        groups.extend(self._rendered[key] for key in sorted(self._rendered))
        return self.generation, groups

    def render(self) -> Payload:
        """Render every snapshot and the self-metrics into both exposition formats."""
        return self.store_payload(render_groups(*self.freeze()))

    def store_payload(self, payload: Payload) -> Payload:
        if self._payload is None or payload.generation >= self._payload.generation:
            self._payload = payload
        return self._payload

    @property
    def payload(self) -> Payload | None:
        return self._payload


def render_groups(generation: int, groups: list[list[RenderedFamily]]) -> Payload:
    """Compress the text payload (safe in a worker thread: groups are immutable)."""
    started = time.perf_counter()
    return Payload(
        generation=generation,
        groups=groups,
        text_gzip=gzip_chunks(assemble_chunks(groups)),
        rendered_at=time.time(),
        render_seconds=time.perf_counter() - started,
        series=sum(f.series for g in groups for f in g),
    )


def gzip_chunks(chunks: Iterable[bytes]) -> bytes:
    """gzip without first joining the chunks into one large text."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=5, mtime=0) as stream:
        for chunk in chunks:
            stream.write(chunk)
    return out.getvalue()
