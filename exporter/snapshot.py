"""The last good data of every target × collector × part, and its rendered payload.

A part that succeeds replaces its families; a part that fails keeps them and
only its record changes, so its age shows. The exposition is rendered when
something changed, never per scrape, so a scrape costs about as much as
sending bytes.

Beside the rendered data, the store keeps the few gauges the landing page
reads (:data:`exporter.status.PAGE_FAMILIES`: up, ready, router services,
license, filestore, the exporter's own credential and URL checks), picked out
of the families when a run is recorded or a payload rendered, so a page view
never parses megabytes of exposition back.

Threads: the collection thread is the only writer. What the serving thread
reads (:meth:`SnapshotStore.view`, :meth:`SnapshotStore.readings`,
:attr:`SnapshotStore.payload`) is made of immutable records that the writer
replaces whole; a reader gets an immutable mapping or payload, copied under
``_publish`` the first time it is asked for after a change, and never sees
half of an update. (Copying the mapping at every write instead cost a fleet
of 300 targets 0.8 ms per run recorded.)
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from prometheus_client.core import Metric

from exporter.exposition import RenderedFamily, assemble, assemble_chunks, render_families
from exporter.outcomes import SUCCESSFUL_OUTCOMES, Outcome, PartResult, combine, worst
from exporter.selfmetrics import build_families, run_families
from exporter.status import Reading, readings_of

Key = tuple[str, str]
K = TypeVar("K")
V = TypeVar("V")

#: runs of each target and collector kept for the landing page, newest first
RECENT_RUNS = 10


@dataclass(frozen=True, slots=True)
class PartRecord:
    """How one part (one endpoint, or one chain of calls to it) last ended."""

    endpoint: str
    outcome: Outcome
    reason: str
    last_run: float
    last_success: float | None
    #: a change-driven part: when the oldest item it reports was read (kept from its last success)
    oldest_read: float | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESSFUL_OUTCOMES


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One past run, as the landing page lists it."""

    at: float
    outcome: Outcome
    duration: float
    reason: str


def _no_runs() -> Mapping[Outcome, int]:
    return MappingProxyType(dict.fromkeys(Outcome, 0))


@dataclass(frozen=True, slots=True)
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
    #: runs in a row in which no part succeeded: what backs the interval off (a JPD in trouble)
    consecutive_outages: int = 0
    runs: Mapping[Outcome, int] = field(default_factory=_no_runs)
    parts: tuple[PartRecord, ...] = ()
    next_run: float | None = None
    #: the last RECENT_RUNS runs, newest first
    recent: tuple[RunSummary, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESSFUL_OUTCOMES

    @property
    def failed_parts(self) -> tuple[PartRecord, ...]:
        return tuple(p for p in self.parts if not p.succeeded)


def summarise(parts: Iterable[PartResult], error: str | None = None) -> tuple[Outcome, str]:
    """The run's outcome (the worst of its parts') and reason; ``error`` is a failure outside any part."""
    # The part that failed before those that could not run without it, then by endpoint (not by the
    # order parts finished in): the same failure reads the same on every run.
    parts = sorted(parts, key=lambda p: (p.needs is not None, p.endpoint))
    if error is not None:
        return Outcome.ERROR, error
    failed = [(p.endpoint, p.outcome, p.reason) for p in parts if not p.succeeded]
    combined = combine(failed, len(parts), "parts")
    if combined is not None:
        return combined.outcome, combined.reason
    outcome = worst(p.outcome for p in parts)
    reason = "; ".join(_named(p.endpoint, p.reason) for p in parts if p.outcome is Outcome.UNSUPPORTED)
    return outcome, reason if outcome is Outcome.UNSUPPORTED else ""


def _named(endpoint: str, reason: str) -> str:
    return reason if reason.startswith(endpoint) else f"{endpoint}: {reason}"


@dataclass(slots=True)
class Payload:
    """One rendering of every snapshot; a scrape never sees half of one.

    The rendered chunks are its only copy of the exposition: the gzip of the
    text format (what Prometheus asks for) is made when the payload is built,
    that of OpenMetrics on the first request that asks for it (on the serving
    thread, the only one that touches that cache), both streamed from the
    chunks; an uncompressed answer is sent from the chunks themselves. A
    joined copy of the text would have cost as much again as the chunks (13 MB
    at 100,000 series) for as long as the payload is served.
    """

    generation: int
    groups: list[list[RenderedFamily]]
    #: None once released (see :meth:`release_gzip`): made again if asked for
    text_gzip: bytes | None
    rendered_at: float
    render_seconds: float
    series: int
    _openmetrics_gzip: bytes | None = None

    @property
    def text(self) -> bytes:
        """The whole text format, joined now (for `once` and tools; the server streams :meth:`chunks`)."""
        return assemble(self.groups)

    @property
    def openmetrics(self) -> bytes:
        return assemble(self.groups, openmetrics=True)

    def chunks(self, openmetrics: bool) -> list[bytes]:
        """The uncompressed exposition in pieces: the rendered chunks themselves and the headers between them."""
        return list(assemble_chunks(self.groups, openmetrics))

    def gzipped(self, openmetrics: bool) -> bytes:
        if not openmetrics:
            if self.text_gzip is None:
                self.text_gzip = gzip_chunks(assemble_chunks(self.groups))
            return self.text_gzip
        if self._openmetrics_gzip is None:
            self._openmetrics_gzip = gzip_chunks(assemble_chunks(self.groups, openmetrics=True))
        return self._openmetrics_gzip

    def release_gzip(self) -> None:
        """Let go of the compressed copies once a serving process of its own holds them (megabytes each)."""
        self.text_gzip = self._openmetrics_gzip = None


@dataclass(frozen=True, slots=True)
class _Rendered:
    version: tuple[object, ...]
    families: list[RenderedFamily]
    readings: tuple[Reading, ...]


@dataclass(frozen=True, slots=True)
class TargetSource:
    """Families computed per target at render time, rendered again only when ``version(target)`` changes.

    A fleet's renderings come one after another while only a few targets ran in
    between: the others' self-metrics are the bytes rendered last time.
    """

    targets: Callable[[], Iterable[str]]
    version: Callable[[str], tuple[object, ...]]
    families: Callable[[str], Iterable[Metric]]


class _Published(Generic[K, V]):
    """A mapping one thread writes and any thread reads: readers get an immutable copy, made once per change."""

    def __init__(self, lock: threading.Lock) -> None:
        #: the writer's own: only the writer thread reads it without the lock, and only it writes
        self.live: dict[K, V] = {}
        self._lock = lock
        self._copy: Mapping[K, V] | None = MappingProxyType({})

    def set(self, key: K, value: V) -> None:
        with self._lock:
            self.live[key] = value
            self._copy = None

    def update(self, values: Mapping[K, V]) -> None:
        with self._lock:
            self.live.update(values)
            self._copy = None

    def pop(self, key: K) -> None:
        with self._lock:
            self.live.pop(key, None)
            self._copy = None

    def copy(self) -> Mapping[K, V]:
        with self._lock:
            if self._copy is None:
                self._copy = MappingProxyType(dict(self.live))
            return self._copy


class SnapshotStore:
    def __init__(self) -> None:
        # Only the rendered form is kept: it is what is served, and a fraction of the size of Metric objects.
        self._rendered: dict[Key, dict[str, list[RenderedFamily]]] = {}
        self._publish = threading.Lock()
        self._records: _Published[Key, RunRecord] = _Published(self._publish)
        #: collectors that never ran, kept as runs are recorded: readiness is asked from the serving thread
        self._never_ran: set[Key] = set()
        self._sources: list[Callable[[], Iterable[Metric]]] = []
        self._target_sources: list[TargetSource] = []
        self._build = render_families(build_families())
        #: per (source, target): the version last rendered, its rendering and the page's gauges in it
        self._cache: dict[tuple[int, str], _Rendered] = {}
        self.generation = 0
        #: the generation at which the last collector that had never run recorded its first run
        self._first_runs_generation = 0
        self._payload: Payload | None = None
        #: told of each payload served from now on and whether the exporter is ready with it (on the writer's thread)
        self.payload_listeners: list[Callable[[Payload, bool], None]] = []
        # The landing page's gauges: per part from runs, per target from the sources (writer only) ...
        self._part_readings: dict[str, dict[str, dict[str, tuple[Reading, ...]]]] = {}  # target, collector, part
        self._source_readings: dict[str, tuple[Reading, ...]] = {}
        # ... and published per target, for readers.
        self._readings: _Published[str, tuple[Reading, ...]] = _Published(self._publish)

    # -- writing (collection thread) ----------------------------------------
    def _put(self, key: Key, record: RunRecord) -> RunRecord:
        if record.last_run is None:
            self._never_ran.add(key)
        else:
            self._never_ran.discard(key)
        self._records.set(key, record)
        return record

    def register(self, target: str, collector: str, interval: float) -> None:
        """A collector to report on; one registered before (a reload) keeps its record and data."""
        known = self._records.live.get((target, collector))
        record = RunRecord(interval=interval, base_interval=interval) if known is None else replace(
            known, interval=interval, base_interval=interval)
        self._put((target, collector), record)
        self._rendered.setdefault((target, collector), {})
        self._part_readings.setdefault(target, {}).setdefault(collector, {})

    def forget(self, target: str, collector: str) -> None:
        """A collector no longer configured: its record and data go."""
        self._records.pop((target, collector))
        self._never_ran.discard((target, collector))
        self._rendered.pop((target, collector), None)
        self._part_readings.get(target, {}).pop(collector, None)
        self.generation += 1

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None:
        """Families computed at render time (request counters kept by the clients)."""
        self._sources.append(source)

    def add_target_source(self, source: TargetSource) -> None:
        """Families computed per target at render time, kept rendered while the target's version holds."""
        self._target_sources.append(source)

    def record(
        self,
        target: str,
        collector: str,
        parts: Mapping[str, PartResult],
        duration: float,
        *,
        error: str | None = None,
        rendered: Mapping[str, list[RenderedFamily]] | None = None,
        now: float | None = None,
    ) -> RunRecord:
        """Record a run of ``parts``; ``rendered`` holds their new families already rendered (off the loop).

        Parts of earlier runs that this run did not have at all (a feature
        switched off on the JPD) are dropped with their data.
        """
        key = (target, collector)
        now = time.time() if now is None else now
        previous = self._records.live[key]
        known = {p.endpoint: p for p in previous.parts}
        data = self._rendered[key]
        readings = self._part_readings[target][collector]
        records = []
        for endpoint, part in parts.items():
            last_success = known[endpoint].last_success if endpoint in known else None
            oldest_read = known[endpoint].oldest_read if endpoint in known else None
            if part.families is not None:
                data[endpoint] = (rendered or {}).get(endpoint) or render_families(part.families)
                readings[endpoint] = readings_of(part.families)
            if part.held:  # its data is as old as its last read: no fresh success to claim
                oldest_read = part.oldest_read
            elif part.succeeded:
                last_success, oldest_read = now, part.oldest_read
            records.append(PartRecord(endpoint, part.outcome, part.reason, now, last_success, oldest_read))
        if error is None:  # a run that crashed midway keeps the parts it did not reach
            for endpoint in set(data) - set(parts):
                del data[endpoint]
            for endpoint in set(readings) - set(parts):
                del readings[endpoint]
        else:
            records += [p for p in previous.parts if p.endpoint not in parts]
        outcome, reason = summarise(parts.values(), error)
        succeeded = outcome in SUCCESSFUL_OUTCOMES
        outage = not any(p.succeeded for p in parts.values())
        runs = dict(previous.runs)
        runs[outcome] += 1
        self.generation += 1
        if previous.last_run is None:
            self._first_runs_generation = self.generation
        self._publish_readings([target])
        return self._put(key, replace(
            previous,
            outcome=outcome,
            reason=reason,
            duration=duration,
            last_run=now,
            last_success=now if succeeded else previous.last_success,
            consecutive_failures=0 if succeeded else previous.consecutive_failures + 1,
            consecutive_outages=previous.consecutive_outages + 1 if outage and not succeeded else 0,
            runs=MappingProxyType(runs),
            parts=tuple(sorted(records, key=lambda p: p.endpoint)),
            recent=(RunSummary(now, outcome, duration, reason), *previous.recent)[:RECENT_RUNS],
        ))

    def _publish_readings(self, targets: Iterable[str]) -> None:
        """Gather the page's gauges of ``targets`` from their parts and sources, and publish them."""
        # Only the targets' own parts: a run is recorded after every other, and a fleet has thousands of parts.
        gathered: dict[str, list[Reading]] = {}
        for target in targets:
            found = gathered[target] = []
            for _, parts in sorted(self._part_readings.get(target, {}).items()):
                for _, readings in sorted(parts.items()):
                    found.extend(readings)
        fresh = {target: (*found, *self._source_readings.get(target, ())) for target, found in gathered.items()}
        self._readings.update(fresh)

    def mark_stale(self, target: str, collector: str, reason: str) -> None:
        """No run completes: the collector is reported as timed out, its data kept, until one does."""
        key = (target, collector)
        record = self._records.live[key]
        self.generation += 1
        # Its parts too: none of them produced current data.
        parts = tuple(replace(p, outcome=Outcome.TIMEOUT, reason=reason) if p.succeeded else p for p in record.parts)
        self._put(key, replace(record, outcome=Outcome.TIMEOUT, reason=reason, parts=parts))

    def schedule(self, target: str, collector: str, *, interval: float | None = None,
                 next_run: float | None = None) -> None:
        """The collector's current interval (grows while it fails) and its next run, for the landing page."""
        key = (target, collector)
        record = self._records.live[key]
        self._put(key, replace(record, interval=record.interval if interval is None else interval,
                               next_run=next_run if next_run is not None else record.next_run))

    # -- reading -----------------------------------------------------------
    def view(self) -> Mapping[Key, RunRecord]:
        """Every run record; an immutable mapping safe to read from any thread."""
        return self._records.copy()

    def readings(self) -> Mapping[str, tuple[Reading, ...]]:
        """Per target, the few gauges the landing page shows; an immutable mapping safe to read from any thread.

        Picked out when a run is recorded or a payload rendered: reading them costs at most a copy of
        the mapping, unlike :meth:`families`, which parses a collector's whole rendering.
        """
        return self._readings.copy()

    def runs(self) -> Mapping[Key, RunRecord]:
        return self._records.copy()

    def run(self, target: str, collector: str) -> RunRecord:
        return self._records.live[(target, collector)]

    def families(self, target: str, collector: str) -> list[Metric]:
        """The current data of one collector, parsed back from its rendering (for tools and tests)."""
        from prometheus_client.parser import text_string_to_metric_families  # serve never needs it

        rendered = [f for _, fams in sorted(self._rendered.get((target, collector), {}).items()) for f in fams]
        return list(text_string_to_metric_families(assemble([rendered]).decode())) if rendered else []

    def series(self, target: str, collector: str, parts: Iterable[str] | None = None) -> int:
        """Series of one collector, or of the named parts of it."""
        data = self._rendered.get((target, collector), {})
        keep = data.keys() if parts is None else set(parts)
        return sum(f.series for endpoint, fams in data.items() if endpoint in keep for f in fams)

    def all_ran(self) -> bool:
        return not self._never_ran

    def ready(self) -> bool:
        """Every collector ran and the served payload shows every first run.

        Runs end while a rendering is under way or waits its turn: a payload
        made before the last first run would be served to a scraper that was
        told the exporter is ready, without that run's data.
        """
        payload = self._payload
        return payload is not None and self.all_ran() and payload.generation >= self._first_runs_generation

    def freeze(self) -> tuple[int, list[list[RenderedFamily]]]:
        """Everything to assemble: snapshots were rendered when they changed, a target's self-metrics when its
        records or its source's version changed, the other sources now.

        The page's gauges that come from the sources (credentials accepted, misconfigured) are published here.
        """
        groups = [self._build]
        cache: dict[tuple[int, str], _Rendered] = {}
        by_target: dict[str, list[tuple[tuple[str, str], RunRecord]]] = {}
        for key, record in self._records.live.items():
            by_target.setdefault(key[0], []).append((key, record))
        # Records are replaced whole when they change: an unchanged target's tuple compares by identity.
        for target, records in by_target.items():
            groups.append(self._render_once(cache, (-1, target), tuple(records), run_families, records).families)
        sourced: dict[str, list[Reading]] = {}
        for index, per_target in enumerate(self._target_sources):
            for target in per_target.targets():
                done = self._render_once(cache, (index, target), per_target.version(target), per_target.families,
                                         target)
                sourced.setdefault(target, []).extend(done.readings)
                groups.append(done.families)
        self._cache = cache
        for source in self._sources:
            families = list(source())
            for reading in readings_of(families):
                sourced.setdefault(reading.label("target"), []).append(reading)
            groups.append(render_families(families))
        self._source_readings = {target: tuple(found) for target, found in sourced.items()}
        self._publish_readings({t for t, _ in self._records.live} | set(sourced))
        for key in sorted(self._rendered):
            parts = self._rendered[key]
            groups.extend(parts[endpoint] for endpoint in sorted(parts))
        return self.generation, groups

    def _render_once(self, cache: dict[tuple[int, str], _Rendered], key: tuple[int, str], version: tuple[object, ...],
                     build: Callable[[Any], Iterable[Metric]], argument: object) -> _Rendered:
        """The rendering of ``build(argument)``: the last one while ``version`` is unchanged."""
        done = self._cache.get(key)
        if done is None or done.version != version:
            families = list(build(argument))
            done = _Rendered(version, render_families(families), readings_of(families))
        cache[key] = done
        return done

    def render(self) -> Payload:
        """Render every snapshot and the self-metrics into both exposition formats."""
        return self.store_payload(render_groups(*self.freeze()))

    def store_payload(self, payload: Payload) -> Payload:
        with self._publish:
            if self._payload is None or payload.generation >= self._payload.generation:
                self._payload = payload
            current = self._payload
        if current is payload and self.payload_listeners:
            ready = self.ready()
            for listener in self.payload_listeners:
                listener(payload, ready)
        return current

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


#: the fastest level: each rendering compresses the whole exposition, and in a fleet renderings follow one
#: another; zlib's level 5 took 2.5 times as long as its level 1 for an answer 10 % smaller.
GZIP_LEVEL = 1
#: chunks are compressed joined into pieces of this size: a fleet's exposition is tens of thousands of chunks
#: (a family's lines of one target), and a call per chunk cost as much as the compression itself
GZIP_PIECE = 64 * 1024
#: gzip's header and trailer around the deflate stream
_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: expositions from this size on are compressed by ISA-L's deflate (where it has wheels): 5 times as fast as
#: zlib's level 1 on a fleet's exposition, and smaller. Loading it costs 0.5 MB of memory for good, more than
#: it saves a small exposition.
FAST_GZIP_FROM = 1 << 20


def _compressobj(size: int) -> Callable[[int, int, int], Any]:
    if size >= FAST_GZIP_FROM:
        try:
            from isal.isal_zlib import compressobj
        except ImportError:  # pragma: no cover - platforms without its wheels
            pass
        else:
            return compressobj
    return zlib.compressobj


def gzip_chunks(chunks: Iterable[bytes]) -> bytes:
    """gzip without first joining the chunks into one large text."""
    rest = iter(chunks)
    first: list[bytes] = []
    size = 0
    for chunk in rest:  # as much as tells which compressor to use
        first.append(chunk)
        size += len(chunk)
        if size >= FAST_GZIP_FROM:
            break
    deflate = _compressobj(size)(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS)
    out: list[bytes] = []
    piece: list[bytes] = []
    size = 0
    for chunk in itertools.chain(first, rest):
        piece.append(chunk)
        size += len(chunk)
        if size >= GZIP_PIECE:
            out.append(deflate.compress(b"".join(piece)))
            piece.clear()
            size = 0
    out.append(deflate.compress(b"".join(piece)))
    out.append(deflate.flush())
    return b"".join(out)
