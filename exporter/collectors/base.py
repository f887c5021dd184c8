"""The collector contract: declared families, parts with their own outcomes, typed settings.

A collector module reads top to bottom:

1. its declared families (``F = Declarations("name")``, then one line each);
2. the collector class, whose ``collect`` runs its parts: ``await run.part(ENDPOINT, self._fetch)``;
3. its pure parsers, from decoded JSON to typed values.

A part is one endpoint (route template) or one dependent chain of calls to
it (pages, one call per repository). Its function receives a :class:`Part`:
it calls the JPD through it, parses, and emits samples through ``part.out``.
The part's outcome is its own: a part that fails keeps its last good
families, the others stay current. ``Run`` holds the parts' results; the
engine turns them into the run's outcome with :func:`exporter.outcomes.worst`.

A collector instance belongs to one target, so collectors that must remember
something between runs (counters built from histories) keep it on ``self``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, Generic, ParamSpec, TypeVar, cast, get_args, get_origin

from pydantic import BaseModel, ConfigDict

from exporter.client import ApiResult
from exporter.collectors.refresh import Refresh
from exporter.families import Emitter
from exporter.logs import context
from exporter.outcomes import CollectionError, Outcome, PartResult, combine
from exporter.validation import Interval

if TYPE_CHECKING:
    from exporter.client import JfrogClient
    from exporter.config import TargetConfig

log = logging.getLogger(__name__)

T = TypeVar("T")
K = TypeVar("K")
P = ParamSpec("P")


class CollectorSettings(BaseModel):
    """Per-target settings every collector accepts; collectors extend it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    interval: Interval | None = None


S = TypeVar("S", bound=CollectorSettings)


class Part:
    """What a part's function works with: the target's client, its settings and an emitter."""

    def __init__(self, run: Run, endpoint: str) -> None:
        self.endpoint = endpoint
        self.client = run.client
        self.target = run.target
        self.now = run.now
        self.out = Emitter(run.target.name)
        #: a change-driven part (it reads only some items each run): when its oldest held item was read
        self.oldest_read: float | None = None
        #: set by a part whose samples stay true when its call fails (``jfrog_up 0``)
        self.current_on_failure = False

    async def get(self, endpoint: str | None = None, **kwargs: Any) -> ApiResult:
        """GET this part's endpoint (or another of its chain); see :meth:`JfrogClient.get`."""
        return await self.client.get(endpoint or self.endpoint, **kwargs)

    async def each(self, items: Sequence[K], fetch: Callable[[K], Awaitable[T]]) -> list[T]:
        """``fetch`` for every item with the target's concurrency; results in the order of ``items``."""
        return await run_bounded([_bind(fetch, item) for item in items], self.target.max_concurrency)

    async def get_each(self, items: Sequence[str], path: Callable[[str], dict[str, str]],
                       endpoint: str | None = None, **kwargs: Any) -> dict[str, ApiResult]:
        """One GET per item (``path`` fills the route template), failures combined by the one rule.

        Items whose call answers "not found" (gone since they were listed, or
        an edition without the endpoint) are left out of the result.
        """
        template = endpoint or self.endpoint
        results = await self.each(items, lambda item: self.client.get(template, path=path(item), **kwargs))
        failed = [(f"{template} for {item}", r.outcome, r.reason) for item, r in zip(items, results, strict=True)
                  if not r.ok and not r.unsupported]
        error = combine(failed, len(items))
        if error is not None:
            raise error
        return {item: r for item, r in zip(items, results, strict=True) if r.ok}


def _bind(fetch: Callable[[K], Awaitable[T]], item: K) -> Callable[[], Awaitable[T]]:
    return lambda: fetch(item)


def parse_result(parser: Callable[[Any], T], result: ApiResult) -> T:
    """Parse the body of a successful call with a pure parser.

    A failed call fails the part with its own outcome; a body of the wrong
    shape fails it as bad_response. Parsers read any decoded JSON and raise
    ValueError, and only that, for a shape they cannot read: anything else
    is a bug, which the part reports as an internal error. Numbers too large
    for a float (OverflowError) and nesting too deep to walk (RecursionError)
    are hostile answers, not bugs: bad_response too.
    """
    body = result.require()
    try:
        return parser(body)
    except (ValueError, OverflowError, RecursionError) as exc:
        raise CollectionError(Outcome.BAD_RESPONSE, f"{result.endpoint}: unexpected shape: {exc}") from None


class Run:
    """One run of one collector for one target: the parts it ran and how each ended."""

    def __init__(self, target: TargetConfig, client: JfrogClient, collector: str, now: float | None = None) -> None:
        self.target = target
        self.client = client
        self.collector = collector
        #: when the run started (epoch seconds): what change-driven parts compare schedules and ages with
        self.now = time.time() if now is None else now
        self.parts: dict[str, PartResult] = {}

    def _record(self, result: PartResult) -> None:
        if result.endpoint in self.parts:
            raise ValueError(f"collector {self.collector}: part {result.endpoint} ran twice in one run")
        self.parts[result.endpoint] = result

    async def part(self, endpoint: str, fetch: Callable[Concatenate[Part, P], Awaitable[T]],
                   *args: P.args, **kwargs: P.kwargs) -> T | None:
        """Run one part; its value, or None when it failed or the edition lacks it."""
        part = Part(self, endpoint)
        try:
            with context(endpoint=endpoint):
                value = await fetch(part, *args, **kwargs)
        except CollectionError as exc:
            # Unsupported: nothing to report but what the part said about it. Failed: keep the last good data.
            keep = exc.outcome is Outcome.UNSUPPORTED or part.current_on_failure
            self._record(PartResult(endpoint, exc.outcome, exc.reason, part.out.families() if keep else None))
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in one part must not take the others down
            log.exception("unexpected error", extra={"target": self.target.name, "collector": self.collector,
                                                     "endpoint": endpoint, "outcome": Outcome.ERROR.value})
            self._record(PartResult(endpoint, Outcome.ERROR, f"internal error: {type(exc).__name__}: {exc}", None))
            return None
        self._record(PartResult(endpoint, Outcome.SUCCESS, "", part.out.families(), oldest_read=part.oldest_read))
        return value

    def hold(self, last: PartResult, read_at: float) -> None:
        """A part not read in this run on purpose: it ends as its last read did, whose families the store
        keeps, read at ``read_at`` (its last success stays that read's)."""
        self._record(replace(last, families=None, oldest_read=read_at, held=True))

    def skip(self, endpoint: str, needs: str) -> None:
        """A part that could not run because the part ``needs`` did not deliver: it ends as that one did."""
        upstream = self.parts[needs]
        if upstream.outcome is Outcome.UNSUPPORTED:
            self._record(PartResult(endpoint, Outcome.UNSUPPORTED, upstream.reason, []))
        else:
            self._record(PartResult(endpoint, upstream.outcome, f"not read: {needs} failed", None, needs))


class Occasional:
    """Parts a collector reads less often than it runs: what changes only with an upgrade, a renewal or a
    change of configuration (the version, the licenses).

    Between reads such a part is held (:meth:`Run.hold`): its series stay, its ``oldest_read`` says when
    they were read, and its last success is not moved to a run that did not read it. A part never read,
    or whose last read failed, is read in the next run: a failure keeps showing as what it is.
    """

    def __init__(self, every: float, interval: float) -> None:
        #: how far apart a part is read (0: every run)
        self.every = every
        #: the collector's interval: a part is read in the run nearest to ``every`` after its last read
        self.interval = interval
        self._reads: Refresh[str, PartResult] = Refresh()

    def expire(self) -> None:
        """Read every part in the next run (the JPD restarted: an upgrade or a new license may come with it)."""
        self._reads.forget_except(())

    async def part(self, run: Run, endpoint: str, fetch: Callable[Concatenate[Part, P], Awaitable[T]],
                   *args: P.args, **kwargs: P.kwargs) -> T | None:
        """:meth:`Run.part` when this part is due; otherwise hold it. None when held, as when it failed."""
        last = self._reads.values().get(endpoint)
        read_at = self._reads.read_at(endpoint)
        if last is not None and read_at is not None and \
                not self._reads.waited(endpoint, run.now, self.interval, self.every):
            run.hold(last, read_at)
            return None
        value = await run.part(endpoint, _stamped(fetch), *args, **kwargs)
        result = run.parts[endpoint]
        if result.succeeded:
            self._reads.update({endpoint: result}, run.now)
        else:
            self._reads.drop([endpoint])
        return value


def _stamped(fetch: Callable[Concatenate[Part, P], Awaitable[T]]) -> Callable[Concatenate[Part, P], Awaitable[T]]:
    """``fetch``, its data marked as read now: the age it keeps while held."""

    async def read(part: Part, /, *args: P.args, **kwargs: P.kwargs) -> T:
        part.oldest_read = part.now
        return await fetch(part, *args, **kwargs)

    return read


class Collector(ABC, Generic[S]):
    """One area of the JPD, polled on its own schedule for one target."""

    name: ClassVar[str]
    default_interval: ClassVar[float]
    enabled_by_default: ClassVar[bool] = True
    description: ClassVar[str] = ""
    #: the type argument of Collector[...], set for each subclass
    settings_model: ClassVar[type[CollectorSettings]] = CollectorSettings

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # `class X(Collector[XSettings])` names the settings model once; the configuration reads it from here.
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is Collector:
                (model,) = get_args(base)
                if isinstance(model, type) and issubclass(model, CollectorSettings):
                    cls.settings_model = model

    def __init__(self, target: TargetConfig, settings: S) -> None:
        self.target = target
        self.settings = settings

    @property
    def interval(self) -> float:
        return self.settings.interval or self.default_interval

    @abstractmethod
    async def collect(self, run: Run) -> None:
        """Run every part of this collector through ``run``."""


async def run_bounded(jobs: Sequence[Callable[[], Awaitable[T]]], workers: int) -> list[T]:
    """Run ``jobs`` with at most ``workers`` in flight; results in the order of ``jobs``.

    The client's limit alone would queue every call at once, first come first
    served: a follow-up call (the next page of a list) would then wait behind
    all the others, and so would other collectors' calls to the same JPD.
    A job that raises stops the others and the exception propagates.
    """
    results: list[T | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in queue:
            results[index] = await job()

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(workers, len(jobs))))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return cast(list[T], results)
