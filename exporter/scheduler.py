"""Running collectors: once, or on their schedules with APScheduler.

One job per target × collector: never two runs of the same job at once,
coalesced, jittered, first run at start-up. A collector that keeps failing
backs off to a longer interval so a struggling JPD is not hammered, and
returns to its interval on the first success.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import functools
import gc
import logging
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client.core import Metric

from exporter.client import JfrogClient
from exporter.collectors.base import Collector, CollectorSettings, Run
from exporter.collectors.health import HealthCollector
from exporter.collectors.registry import COLLECTORS
from exporter.config import TargetConfig
from exporter.exposition import RenderedFamily, render_families
from exporter.families import REGISTRY, Emitter
from exporter.logs import context
from exporter.outcomes import SUCCESSFUL_OUTCOMES, Outcome, PartResult
from exporter.selfmetrics import (
    CREDENTIALS_ACCEPTED,
    MISCONFIGURED,
    RUNS_SKIPPED,
    SERIES_DROPPED,
    TARGET_INFO,
    TOKEN_EXPIRY,
    runtime_source,
)
from exporter.snapshot import PartRecord, RunRecord, SnapshotStore, TargetSource, render_groups
from exporter.values import jwt_expiry

log = logging.getLogger(__name__)

#: consecutive failures before the interval starts to grow
BACKOFF_AFTER = 3
#: the longest interval a failing collector backs off to, as a multiple of its own
BACKOFF_MAX_FACTOR = 8
#: and never more than this many seconds
BACKOFF_MAX_SECONDS = 3600.0
#: how often the watchdog compares the clocks and looks for collectors whose data stopped moving
WATCH_EVERY = 5.0
#: a wall clock that moved this much more or less than the monotonic clock in one watch was stepped
CLOCK_STEP = 2.0
#: a collector with no completed run for two intervals and this long reports its data as stale
STALE_GRACE = 60.0
#: how far apart the targets' first rounds start, and at most how long they take to start in all: a fleet's
#: targets (their intervals alike) then never collect all at once, which peaked memory and CPU together
TARGET_STAGGER = 0.05
STAGGER_MAX = 30.0


@dataclass
class TargetRuntime:
    config: TargetConfig
    client: JfrogClient
    collectors: dict[str, Collector[CollectorSettings]] = field(default_factory=dict)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
        return trim
    except (OSError, AttributeError):
        return None  # not glibc: nothing to do


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand memory freed after a run back to the system.

    Each run decodes megabytes of JSON and renders as much text; Python frees it,
    but glibc keeps the pages, so the resident size crept up run after run although
    the Python heap did not grow (measured with tracemalloc per collector).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


#: a full garbage collection runs this often, on the engine's schedule (see tune_garbage_collector)
FULL_COLLECTION_EVERY = 600.0
_HEALTH = HealthCollector.name
#: the series of the max_series cap kept for the health collector (jfrog_up among them)
_HEALTH_SHARE = 100
#: a count of middle-generation collections never reached: no full collection is set off by allocations
_NEVER = 1_000_000_000


def tune_garbage_collector() -> None:
    """Full collections on the engine's schedule only, every FULL_COLLECTION_EVERY, never set off by allocations.

    A full collection scans every object the process holds and keeps the
    interpreter meanwhile: 220-280 ms at 300 targets (290,000 objects), during
    which no scrape is answered. Set off by allocations, they came every few
    seconds while runs were decoding answers (100 targets, 3 rounds: 19 of
    them, 2.7 s in all). The snapshot's data hold no reference cycles (they are
    freed by their reference counts); the cycles left (exceptions, connections
    closed) wait for the next scheduled collection. The younger generations
    keep Python's thresholds: their collections stay short (a few ms).
    """
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, _NEVER)


def backoff_interval(base: float, consecutive_failures: int) -> float:
    """The interval after ``consecutive_failures`` failed runs: doubles from BACKOFF_AFTER on, capped."""
    if consecutive_failures < BACKOFF_AFTER:
        return base
    factor: int = 2 ** (consecutive_failures - BACKOFF_AFTER + 1)
    return min(base * min(factor, BACKOFF_MAX_FACTOR), max(base, BACKOFF_MAX_SECONDS))


#: renderings scheduled by runs are this many times their own duration apart (at most 1/5 of the time rendering)
RENDER_SPACING = 4.0


class Engine:
    """All targets, their clients and collectors, and the snapshot store they feed."""

    def __init__(self, targets: list[TargetConfig], only: list[str] | None = None,
                 store: SnapshotStore | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 report_failures: bool = True, clock: Callable[[], float] = time.time) -> None:
        """``clock`` gives the wall-clock time each run starts at (a benchmark replays an hour in minutes).
        ``report_failures`` False: failed runs are logged at debug level only, for a caller (``once``) that
        reports each failed part itself, so that no failure is said twice."""
        unknown = [name for name in only or [] if name not in COLLECTORS]
        if unknown:
            raise ValueError(f"unknown collector {unknown[0]!r}; known: {', '.join(COLLECTORS)}")
        self.store = store or SnapshotStore()
        self.targets: dict[str, TargetRuntime] = {}
        self._only = only
        self._transport = transport
        self._clock = clock
        for target in targets:
            self._add_target(target)
        self.dropped_series: dict[tuple[str, str], int] = {}
        #: runs APScheduler did not start because the previous one was still going
        self.skipped_runs: dict[tuple[str, str], int] = {}
        self.store.add_target_source(TargetSource(lambda: list(self.targets), self._target_version,
                                                  self._target_metrics))
        self._scheduler: AsyncIOScheduler | None = None
        self._stopping = False
        self._render_lock = asyncio.Lock()
        # Renderings on one thread of their own: under the GIL more threads render no faster, and each thread
        # that allocates keeps a malloc arena of its own (asyncio's pool started two: 0.2 MB more at idle).
        # Its thread ends when the engine is collected.
        self._renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._render_pending = False
        self._render_task: asyncio.Task[None] | None = None
        #: monotonic time before which no scheduled rendering starts (see _render_soon)
        self._next_render = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self._next_full_collection = time.monotonic() + FULL_COLLECTION_EVERY
        #: monotonic time each job last completed a run (or the engine started), by (target, collector)
        self._completed: dict[tuple[str, str], float] = {}
        self._stale: set[tuple[str, str]] = set()
        self._failure_level = logging.WARNING if report_failures else logging.DEBUG
        #: monotonic time the schedule started, until the first complete round is rendered (then None)
        self._first_round: float | None = None
        self._skip_warned: set[tuple[str, str]] = set()
        #: (target, family) already warned about for exceeding the per-family cap
        self._family_capped: set[tuple[str, str]] = set()

    def _add_target(self, target: TargetConfig) -> TargetRuntime:
        runtime = TargetRuntime(target, JfrogClient(target, transport=self._transport))
        for name in _collectors_for(target, self._only):
            collector = COLLECTORS[name](target, target.collector_settings(name))
            runtime.collectors[name] = collector
            self.store.register(target.name, name, collector.interval)
        self.targets[target.name] = runtime
        return runtime

    async def apply(self, targets: list[TargetConfig]) -> list[str]:
        """Watch ``targets`` from now on (a reload); returns what changed, one phrase per target.

        A target whose configuration is unchanged keeps its client and its collectors' state; a changed one
        is rebuilt but keeps the data of the collectors it still has until they run; a removed one is dropped
        with its data.
        """
        wanted = {t.name: t for t in targets}
        changes: list[str] = []
        for name in list(self.targets):
            config = wanted.get(name)
            if config is not None and _same(config, self.targets[name].config):
                continue
            keep = set(_collectors_for(config, self._only)) if config is not None else set()
            await self._remove_target(name, keep)
            changes.append(f"{name} changed" if config is not None else f"{name} removed")
        for name, config in wanted.items():
            if name in self.targets:
                continue
            if not any(change.startswith(f"{name} ") for change in changes):
                changes.append(f"{name} added")
            runtime = self._add_target(config)
            if self._scheduler is not None:
                self._schedule(self._scheduler, runtime)
        await self.render_now()
        return changes

    async def _remove_target(self, name: str, keep: set[str]) -> None:
        runtime = self.targets.pop(name)
        for collector in runtime.collectors:
            if self._scheduler is not None and self._scheduler.get_job(f"{name}/{collector}") is not None:
                self._scheduler.remove_job(f"{name}/{collector}")
            self._completed.pop((name, collector), None)
            if collector not in keep:
                self.store.forget(name, collector)
        if self._scheduler is not None and self._scheduler.get_job(f"{name}/recovery") is not None:
            self._scheduler.remove_job(f"{name}/recovery")
        await runtime.client.aclose()

    def _target_version(self, name: str) -> tuple[object, ...]:
        """What the target's self-metrics are made of: they are rendered again only when it changes."""
        runtime = self.targets[name]
        return (runtime.config, runtime.client.version(), runtime.config.auth.token(),
                *(self.dropped_series.get((name, c), 0) for c in runtime.collectors),
                *(self.skipped_runs.get((name, c), 0) for c in runtime.collectors))

    def _target_metrics(self, name: str) -> Iterable[Metric]:
        runtime = self.targets[name]
        out = Emitter(None)
        runtime.client.emit(out, name)
        out.info(TARGET_INFO, target=name, url=runtime.config.url, auth=runtime.config.auth.kind)
        out.gauge(CREDENTIALS_ACCEPTED, runtime.client.credentials_accepted, target=name)
        out.gauge(MISCONFIGURED, runtime.client.platform is False, target=name)
        # Decoded locally: shown even while the JPD refuses the token.
        out.gauge(TOKEN_EXPIRY, jwt_expiry(runtime.config.auth.token()), target=name)
        for collector in runtime.collectors:
            out.counter(SERIES_DROPPED, self.dropped_series.get((name, collector), 0), target=name,
                        collector=collector)
            out.counter(RUNS_SKIPPED, self.skipped_runs.get((name, collector), 0), target=name,
                        collector=collector)
        return out.families()

    # -- running -----------------------------------------------------------
    async def run_collector(self, target: str, name: str) -> Outcome:
        with context(target=target, collector=name):
            return await self._run_collector(target, name)

    async def _run_collector(self, target: str, name: str) -> Outcome:
        runtime = self.targets[target]
        collector = runtime.collectors[name]
        previous = self.store.run(target, name)
        where = {"target": target, "collector": name}
        started = time.perf_counter()
        run = Run(runtime.config, runtime.client, name, now=self._clock())
        error: str | None = None
        try:
            await collector.collect(run)
        except Exception as exc:  # a collector bug outside its parts must not stop the others
            error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("unexpected error", extra=where | {"outcome": Outcome.ERROR.value})
        duration = time.perf_counter() - started
        if self.targets.get(target) is not runtime:
            # A reload replaced or removed the target while this run went on: its answers are not recorded.
            log.info("run discarded: the target was reconfigured meanwhile", extra=where)
            return previous.outcome or Outcome.ERROR
        parts = self._within_cap(target, name, run.parts)
        # Rendering a big snapshot's sample lines takes a while: keep the event loop free for scrapes.
        try:
            rendered = await self._off_loop(_render_parts, parts)
        except Exception as exc:  # data that cannot be rendered must fail the run, not leave it "success"
            log.exception("cannot render the run's data", extra=where | {"outcome": Outcome.ERROR.value})
            error = f"internal error: cannot render the data: {type(exc).__name__}: {exc}"
            parts = {endpoint: replace(p, families=None) for endpoint, p in parts.items()}
            rendered = {}
        record = self.store.record(target, name, parts, duration, error=error, rendered=rendered)
        assert record.outcome is not None
        self._completed[(target, name)] = time.monotonic()
        self._skip_warned.discard((target, name))
        if (target, name) in self._stale:
            self._stale.discard((target, name))
            log.info("a run completed again", extra=where | {"outcome": record.outcome.value})
        self._log_transition(where, previous, record)
        _log_missing_permissions(target, name, previous, record, self._failure_level)
        self._adjust_interval(target, name, collector, record.consecutive_outages)
        self.request_render()
        return record.outcome

    def _within_cap(self, target: str, name: str, parts: dict[str, PartResult]) -> dict[str, PartResult]:
        """Keep each family under its cap, so one runaway family cannot take the target's whole budget, and the
        target under its series cap, so one huge JPD cannot blow up Prometheus."""
        parts = self._within_family_cap(target, name, parts)
        config = self.targets[target].config
        collectors = self.targets[target].collectors
        # jfrog_up and the JPD's health (a few dozen series) keep a share of the cap of their own, whichever
        # collector reported first; max_series is at least that share.
        others = {c: self.store.series(target, c) for c in collectors if c != name}
        if name == _HEALTH:
            limit, taken = _HEALTH_SHARE, 0
        else:
            limit = config.max_series - (_HEALTH_SHARE if _HEALTH in collectors else 0)
            taken = sum(count for c, count in others.items() if c != _HEALTH)
        kept_parts = [endpoint for endpoint, part in parts.items() if part.families is None]
        budget = max(0, limit - taken - self.store.series(target, name, kept_parts))
        total = _samples(parts)
        if total <= budget:
            return parts

        def within_budget(family: Metric) -> Metric | None:
            nonlocal budget
            cut = _cut(family, budget)
            budget -= len(cut.samples) if cut is not None else 0
            return cut

        out = _refamilied(parts, within_budget)
        dropped = total - _samples(out)
        previous = self.dropped_series.get((target, name), 0)
        if previous == 0:
            log.warning("%d series exceed max_series=%d; dropping %d (counted in jfrog_exporter_series_dropped_total)",
                        total + sum(others.values()), config.max_series, dropped)
        self.dropped_series[(target, name)] = previous + dropped
        return out

    def _within_family_cap(self, target: str, name: str, parts: dict[str, PartResult]) -> dict[str, PartResult]:
        cap = self.targets[target].config.max_series_per_family

        def within_cap(family: Metric) -> Metric | None:
            if len(family.samples) > cap and (target, family.name) not in self._family_capped:
                self._family_capped.add((target, family.name))
                log.warning("%s has %d series, more than max_series_per_family=%d; the rest are dropped "
                            "(counted in jfrog_exporter_series_dropped_total)", family.name, len(family.samples),
                            cap, extra={"target": target, "collector": name})
            return _cut(family, cap)

        if all(len(f.samples) <= cap for p in parts.values() for f in p.families or []):
            return parts
        out = _refamilied(parts, within_cap)
        key = (target, name)
        self.dropped_series[key] = self.dropped_series.get(key, 0) + _samples(parts) - _samples(out)
        return out

    def _log_transition(self, where: dict[str, str], previous: RunRecord, record: RunRecord) -> None:
        """Log what changed once, not every run (no log flood while a JPD stays down)."""
        prev, outcome = previous.outcome, record.outcome
        assert outcome is not None
        fields = where | {"outcome": outcome.value, "duration_seconds": round(record.duration, 3)}
        if outcome in SUCCESSFUL_OUTCOMES:
            if prev is not None and prev not in SUCCESSFUL_OUTCOMES:
                log.info("recovered: %s after %s: %s", outcome, prev, previous.reason, extra=fields)
            elif outcome is Outcome.UNSUPPORTED and prev is None:
                log.info("not available on this JPD: %s", record.reason, extra=fields)
            else:
                log.debug("%s in %.2fs", outcome, record.duration, extra=fields)
            return
        if outcome == prev and record.reason == previous.reason:
            log.debug("still failing: %s", outcome, extra=fields)
            return
        reason = record.reason
        first = _first_failed(record)
        if first is not None:
            fields["endpoint"] = first.endpoint
            reason = reason.removeprefix(f"{first.endpoint}: ")  # the endpoint field says it
        log.log(self._failure_level, "failed: %s: %s; %s", outcome, reason, _what_is_kept(record), extra=fields)

    def _adjust_interval(self, target: str, name: str, collector: Collector[CollectorSettings],
                         failures: int) -> None:
        run = self.store.run(target, name)
        wanted = backoff_interval(collector.interval, failures)
        job = self._scheduler.get_job(f"{target}/{name}") if self._scheduler is not None else None
        if wanted != run.interval:
            if wanted > run.interval:
                log.warning("no part answered %d times in a row: polling every %gs instead of %gs",
                            failures, wanted, collector.interval)
            if job is not None:
                job = job.reschedule(IntervalTrigger(seconds=wanted, jitter=_jitter(wanted)))
        next_run = job.next_run_time.timestamp() if job is not None and job.next_run_time else None
        self.store.schedule(target, name, interval=wanted, next_run=next_run)
        if wanted > collector.interval:
            self._watch_for_recovery(target, collector.interval)

    # -- recovery ------------------------------------------------------------
    def _watch_for_recovery(self, target: str, every: float) -> None:
        """While collectors of a JPD that stopped answering its ping are backed off, ping it at their own
        interval: the first answer ends the back-off, so a JPD that is back is seen at once, not after
        the longest interval. (A JPD that answers its ping but fails an endpoint stays backed off.)"""
        runtime = self.targets[target]
        if self._scheduler is None or runtime.client.ping_ok is not False:
            return
        job_id = f"{target}/recovery"
        job = self._scheduler.get_job(job_id)
        if job is not None and job.trigger.interval.total_seconds() <= every:
            return
        self._scheduler.add_job(self._probe_recovery, IntervalTrigger(seconds=every), args=(target,), id=job_id,
                                name=f"recovery probe of {target}", max_instances=1, coalesce=True,
                                replace_existing=True)

    async def _probe_recovery(self, target: str) -> None:
        runtime = self.targets[target]
        try:
            result = await runtime.client.ping()
        except asyncio.CancelledError:
            # Stopping cancels the jobs still going; a ping may be waiting for the request budget.
            if not self._stopping:
                raise
            return
        if not (result.ok and runtime.client.ping_ok):
            return
        if self._scheduler is not None:
            self._scheduler.remove_job(f"{target}/recovery")
        now = datetime.now().astimezone()
        for offset, (name, collector) in enumerate(runtime.collectors.items()):
            if self.store.run(target, name).interval <= collector.interval:
                continue
            log.info("the JPD answers its ping again: back to every %gs, running now", collector.interval,
                     extra={"target": target, "collector": name})
            self.store.schedule(target, name, interval=collector.interval)
            job = self._scheduler.get_job(f"{target}/{name}") if self._scheduler is not None else None
            if job is not None:
                job.reschedule(IntervalTrigger(seconds=collector.interval, jitter=_jitter(collector.interval)))
                job.modify(next_run_time=now + timedelta(milliseconds=20 * offset))

    async def run_all_once(self) -> list[Outcome]:
        jobs = [self.run_collector(t, c) for t, rt in self.targets.items() for c in rt.collectors]
        outcomes = list(await asyncio.gather(*jobs))
        await self.render_now()
        return outcomes

    # -- rendering ---------------------------------------------------------
    def request_render(self) -> None:
        """Render soon; runs finishing together share one rendering."""
        if self._render_pending:
            return
        self._render_pending = True
        # A fresh context: the rendering is about every target, not the run that asked for it.
        self._render_task = asyncio.create_task(self._render_soon(), context=contextvars.Context())

    async def _render_soon(self) -> None:
        # A rendering costs in proportion to the whole snapshot (every target's series, then the gzip), and in a
        # fleet runs end one after another: renderings are spaced so they take at most 1/RENDER_SPACING of the
        # time; the runs ending meanwhile share the next one.
        async with self._render_lock:
            wait = self._next_render - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._render_pending = False
            started = time.monotonic()
            try:
                await self.render_now(locked=True)
            except Exception:  # the last payload stays served; the next run renders again
                log.exception("cannot render /metrics; the previous payload is still served")
            finally:
                self._next_render = time.monotonic() + RENDER_SPACING * (time.monotonic() - started)

    async def render_now(self, locked: bool = False) -> None:
        if not locked:
            async with self._render_lock:
                return await self.render_now(locked=True)
        generation, groups = self.store.freeze()
        # Rendering large snapshots takes a while: keep the event loop free for scrapes.
        payload = await self._off_loop(render_groups, generation, groups)
        self.store.store_payload(payload)
        release_free_memory()
        self._log_ready(payload.series)
        return None

    async def _off_loop(self, render: Callable[..., T], *args: object) -> T:
        """``render(*args)`` on the rendering thread, in this task's context (its log fields), as to_thread does."""
        call = functools.partial(contextvars.copy_context().run, render, *args)
        return await asyncio.get_running_loop().run_in_executor(self._renderer, call)

    def _log_ready(self, series: int) -> None:
        """Once, when the first round is rendered: from then on /-/ready answers 200."""
        if self._first_round is None or not self.store.ready():
            return
        took = time.monotonic() - self._first_round
        self._first_round = None
        log.info("ready: first round done in %.2f s, %s series", took, f"{series:,}",
                 extra={"duration_seconds": round(took, 3), "series": series})

    # -- scheduling --------------------------------------------------------
    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        step = min(TARGET_STAGGER, STAGGER_MAX / max(1, len(self.targets)))
        now = datetime.now().astimezone()
        for index, runtime in enumerate(self.targets.values()):
            self._schedule(scheduler, runtime, now + timedelta(seconds=index * step))
        scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)
        scheduler.start()
        self._scheduler = scheduler
        self._first_round = time.monotonic()
        self._watchdog = asyncio.create_task(self._watch())

    def _schedule(self, scheduler: AsyncIOScheduler, runtime: TargetRuntime, first: datetime | None = None) -> None:
        """The target's collectors, each on its interval; the first round at ``first`` (default now)."""
        now = first or datetime.now().astimezone()
        target = runtime.config.name
        for offset, (name, collector) in enumerate(runtime.collectors.items()):
            scheduler.add_job(
                self._scheduled_run,
                IntervalTrigger(seconds=collector.interval, jitter=_jitter(collector.interval)),
                args=(target, name),
                id=f"{target}/{name}",
                name=f"{name} on {target}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=int(max(1, collector.interval)),
                # First round at start-up, slightly spread so targets do not burst together.
                next_run_time=now + timedelta(milliseconds=20 * offset),
            )
            self._completed[(target, name)] = time.monotonic()

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """A run not started because the last one still goes: counted, and said once until a run completes."""
        target, _, name = str(event.job_id).rpartition("/")
        key = (target, name)
        runtime = self.targets.get(target)
        if runtime is None or name not in runtime.collectors:
            return  # the recovery probe
        self.skipped_runs[key] = self.skipped_runs.get(key, 0) + 1
        if key not in self._skip_warned:
            self._skip_warned.add(key)
            log.warning("a run was due while the previous one was still going: skipped (counted in "
                        "jfrog_exporter_runs_skipped_total)", extra={"target": target, "collector": name})

    async def _watch(self) -> None:
        """APScheduler plans by the wall clock: stepped back an hour (NTP, a resumed VM), it would wait an hour
        in silence. The monotonic clock tells; and data that stopped moving is never reported as current."""
        offset = time.time() - time.monotonic()
        while True:
            await asyncio.sleep(WATCH_EVERY)
            now_offset = time.time() - time.monotonic()
            step, offset = now_offset - offset, now_offset
            if abs(step) >= CLOCK_STEP:
                log.warning("the wall clock stepped %+.0fs: every collector is rescheduled from now", step)
                self.reschedule_all()
            self.flag_stale(time.monotonic())
            self.collect_garbage_if_due(time.monotonic())

    def collect_garbage_if_due(self, now: float) -> None:
        """The scheduled full garbage collection (see :func:`tune_garbage_collector`)."""
        if now < self._next_full_collection:
            return
        self._next_full_collection = now + FULL_COLLECTION_EVERY
        started = time.perf_counter()
        found = gc.collect()
        log.debug("full garbage collection: %d unreachable objects in %.0f ms", found,
                  1000 * (time.perf_counter() - started))

    def reschedule_all(self) -> None:
        """Every job's next run now (spread a little), its interval counted from there."""
        if self._scheduler is None:
            return
        now = datetime.now().astimezone()
        for offset, job in enumerate(self._scheduler.get_jobs()):
            interval = job.trigger.interval.total_seconds()
            job.reschedule(IntervalTrigger(seconds=interval, jitter=_jitter(interval)))
            job.modify(next_run_time=now + timedelta(milliseconds=20 * offset))
            target, name = job.args
            self.store.schedule(target, name, next_run=(now + timedelta(milliseconds=20 * offset)).timestamp())

    def flag_stale(self, now: float) -> None:
        """A collector with no completed run for two of its intervals (and a grace) is reported as timed out,
        its last data kept, until a run completes."""
        for key, completed in self._completed.items():
            record = self.store.run(*key)
            quiet = now - completed
            if key in self._stale or quiet <= 2 * record.interval + STALE_GRACE:
                continue
            self._stale.add(key)
            reason = (f"no run completed for {quiet:.0f}s (one is due every {record.interval:g}s): the data is "
                      "stale, the last run is still going or was never started")
            log.warning("%s", reason, extra={"target": key[0], "collector": key[1],
                                             "outcome": Outcome.TIMEOUT.value})
            self.store.mark_stale(*key, reason)
            self.request_render()

    async def _scheduled_run(self, target: str, name: str) -> None:
        runtime = self.targets.get(target)
        if runtime is None or name not in runtime.collectors:
            return  # removed by a reload while this run was being dispatched
        try:
            await self.run_collector(target, name)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            log.debug("run abandoned at shutdown", extra={"target": target, "collector": name})

    async def shutdown(self) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self._render_task is not None and not self._render_task.done() and self._render_pending:
            self._render_task.cancel()  # still waiting for its turn: nothing rendered yet
        await asyncio.gather(*(rt.client.aclose() for rt in self.targets.values()), return_exceptions=True)


def _log_missing_permissions(target: str, collector: str, previous: RunRecord, record: RunRecord,
                             level: int = logging.WARNING) -> None:
    """Once per endpoint that became forbidden: which permission the credentials lack."""
    before = {p.endpoint: p.outcome for p in previous.parts}
    for part in record.parts:
        if part.outcome is Outcome.FORBIDDEN and before.get(part.endpoint) is not Outcome.FORBIDDEN:
            needs = REGISTRY.permission(part.endpoint)
            log.log(level, "needs %s; the configured credentials lack it, so only its series are missing",
                    needs or "more permissions", extra={"target": target, "collector": collector,
                                                        "endpoint": part.endpoint, "outcome": Outcome.FORBIDDEN.value})


def _first_failed(record: RunRecord) -> PartRecord | None:
    """The failed part the run's reason names first: one with the run's outcome that could run."""
    failed = [p for p in record.failed_parts if p.outcome is record.outcome]
    return next((p for p in failed if not p.reason.startswith("not read:")), failed[0] if failed else None)


def _what_is_kept(record: RunRecord) -> str:
    """What the failed parts still serve: their last good data, or nothing on a first run that has none."""
    kept = [p for p in record.failed_parts if p.last_success is not None]
    if not kept:
        return "no data yet from the failed parts"
    if len(kept) < len(record.failed_parts):
        return "keeping the last good data of the failed parts that had some"
    return "keeping the last good data of the failed parts"


#: families that can be cut at a series boundary; a histogram is kept whole or not at all
_PLAIN = ("gauge", "counter", "untyped", "unknown")


def _cut(family: Metric, keep: int) -> Metric | None:
    """The family with at most ``keep`` samples, or None when none of it fits."""
    if len(family.samples) <= keep:
        return family
    if keep <= 0 or family.type not in _PLAIN:
        return None
    trimmed = Metric(family.name, family.documentation, family.type)
    trimmed.samples = family.samples[:keep]
    return trimmed


def _refamilied(parts: dict[str, PartResult], choose: Callable[[Metric], Metric | None]) -> dict[str, PartResult]:
    """The parts with each new family replaced by ``choose``'s version of it (None: left out), in order."""
    out: dict[str, PartResult] = {}
    for endpoint, part in parts.items():
        if part.families is None:
            out[endpoint] = part
            continue
        chosen = (choose(family) for family in part.families)
        out[endpoint] = replace(part, families=[family for family in chosen if family is not None])
    return out


def _samples(parts: dict[str, PartResult]) -> int:
    return sum(len(f.samples) for p in parts.values() for f in p.families or [])


def _same(new: TargetConfig, old: TargetConfig) -> bool:
    """Whether a reloaded target is configured as before (secret values are re-read from their files anyway)."""
    return new.model_dump() == old.model_dump()


def _collectors_for(target: TargetConfig, only: list[str] | None) -> list[str]:
    """The collectors of a target; without credentials only the probes that need none (health)."""
    names = target.enabled_collectors(only)
    if target.auth.kind != "anonymous":
        return names
    log.warning("no credentials configured: only ping, readiness and router health are read; "
                "configure a token or a user to collect the rest", extra={"target": target.name})
    return [name for name in names if name == _HEALTH]


def _render_parts(parts: dict[str, PartResult]) -> dict[str, list[RenderedFamily]]:
    return {endpoint: render_families(p.families) for endpoint, p in parts.items() if p.families}


def _jitter(interval: float) -> float:
    # Up to 5 % of the interval (at most 10 s) spreads load without making data noticeably older.
    return min(10.0, interval * 0.05)


T = TypeVar("T")


class CollectionThread:
    """An Engine and its schedule on an event loop of their own thread.

    Parsing a large JPD's answers comes in bursts of CPU; on their own loop they
    delay a scrape by no more than the interpreter's thread switch interval,
    instead of the length of the burst.
    """

    def __init__(self, targets: list[TargetConfig], only: list[str] | None = None) -> None:
        self._targets = targets
        self._only = only
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="collection", daemon=True)
        self.engine: Engine | None = None

    async def _in_thread(self, coro: Awaitable[T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))  # type: ignore[arg-type]

    async def prepare(self) -> Engine:
        """Build the engine and its first (empty) rendering; nothing is collected yet."""
        # The serving loop gets the interpreter back sooner from a busy collection thread
        # (the default is 5 ms, long next to a scrape that costs well under one).
        sys.setswitchinterval(0.001)
        self._thread.start()

        async def build() -> Engine:
            engine = Engine(self._targets, self._only)
            # What a served process shows about itself; `once` and `record` leave it out of their output.
            engine.store.add_source(runtime_source())
            await engine.render_now()
            return engine

        self.engine = await self._in_thread(build())
        return self.engine

    async def start(self) -> None:
        engine = self.engine
        assert engine is not None

        async def begin() -> None:
            engine.start()

        await self._in_thread(begin())

    async def apply(self, targets: list[TargetConfig]) -> list[str]:
        """A reload's targets, applied on the collection thread; see :meth:`Engine.apply`."""
        engine = self.engine
        assert engine is not None
        return await self._in_thread(engine.apply(targets))

    async def stop(self) -> None:
        if self.engine is not None:
            await self._in_thread(self.engine.shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, 10)
        if not self._thread.is_alive():
            self._loop.close()
