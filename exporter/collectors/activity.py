"""Collector `activity`: artifacts created and downloaded per repository, as true counters.

Each run asks AQL only for what happened since the previous run, between a
watermark and (nearly) now, instead of re-scanning fixed 1m/5m/15m windows:

    items.find({"$and":[{"created":{"$gt":"<from>"}},{"created":{"$lte":"<to>"}}]})
        .include("repo","path","name","created").limit(<max_results>)
    items.find({"$and":[{"stat.downloaded":{"$gt":"<from>"}},{"stat.downloaded":{"$lte":"<to>"}}]})
        .include("repo","path","name","stat.downloaded").limit(<max_results>)

``<from>`` is the previous ``<to>``, so consecutive windows neither overlap
nor leave a gap, and an item is counted in the one window holding its time;
the answer is checked against the bounds too, so an item exactly on a
boundary (or a server comparing at a coarser precision) cannot be counted
twice. ``<to>`` stays ``settle`` behind now because a row can become visible
in the database after the moment it records (download statistics are
flushed in batches): asking again later for a window that was already
counted would cost a second scan (and its share of the limit) every run.
The first run only sets the watermark: nothing from before the exporter
started is counted, so a restart never counts anything twice.

No ``.sort``: Artifactory OSS refuses sorting, and with a field of another
domain (stat) in the output Artifactory replaces the sort by its own. A
window whose answer fills ``max_results`` is therefore not trusted to be
complete: it is halved and asked again (up to ``max_queries`` per run),
so a burst is caught up on over a few runs while every query stays bounded.
Items of a window asked again are remembered by (repo, path, name, time)
until the watermark passes them, so each is counted once.

Two parts: the repository list, which gives quiet repositories their 0,
and the AQL searches of both kinds of activity. Both kinds are one part
because they are one route (``POST /artifactory/api/search/aql``), and an
``endpoint`` label holds a route template.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome, combine
from exporter.validation import Delay, Timeout
from exporter.values import UnexpectedShape, parse_iso_timestamp, scalar_text

log = logging.getLogger(__name__)

F = Declarations("activity")
AQL = F.endpoint("/artifactory/api/search/aql", Permission.USER)
REPOSITORIES = F.endpoint("/artifactory/api/repositories", Permission.ANONYMOUS)

CREATED = F.counter("jfrog_artifacts_created",
                    "Files created in the repository, each counted once, from AQL over the time since the previous "
                    "run (counting starts when the exporter starts).", "repo")
DOWNLOADED = F.counter("jfrog_artifacts_downloaded",
                       "Files downloaded from the repository, from AQL stat.downloaded over the time since the "
                       "previous run: a file downloaded several times between two runs counts once.", "repo")
WATERMARK = F.gauge("jfrog_activity_watermark_timestamp_seconds",
                    "How far the activity counters have been counted, as a Unix timestamp (kind: created, "
                    "downloaded).", "kind")
TRUNCATED = F.counter("jfrog_activity_truncated_windows",
                      "AQL windows whose answer still filled max_results at the smallest window: activity in them "
                      "may be missing from the counters.", "kind")

#: repositories counted beyond those the JPD lists (created after the list was read)
UNLISTED_REPOS = 1000
#: the database keeps milliseconds: a window of one cannot be split, a full answer for it is counted as it is
MIN_WINDOW_MS = 1


class ActivitySettings(CollectorSettings):
    max_results: int = Field(10_000, ge=1, le=1_000_000, description="AQL .limit() of every query")
    query_timeout: Timeout = Field(60.0, description="give up an AQL query after this long")
    settle: Delay = Field(60.0, ge=0, description="how far behind now each query stops, for rows written late")
    max_queries: int = Field(4, ge=1, le=100, description="AQL queries per kind and run at most")


class ActivityCollector(Collector[ActivitySettings]):
    name = "activity"
    default_interval = 300.0
    enabled_by_default = False
    description = "artifacts created and downloaded per repository (AQL over the time since the last run)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams = (Stream("created", "created"), Stream("downloaded", "stat.downloaded"))
        #: remote repositories' caches ("<key>-cache") -> the remote key, which the repo filter is about
        self._remote_of: dict[str, str] = {}
        self._known: list[str] = []
        self._warned_unlisted = False

    def allowed(self, repo: str) -> bool:
        return self.target.repos.allows(self._remote_of.get(repo, repo))

    def _countable(self, stream: Stream, repo: str) -> bool:
        """Allowed, and listed by the JPD or among a few more (created since the list was read): a JPD that
        names a new repository in every row cannot grow the counters without bound."""
        if not self.allowed(repo):
            return False
        if repo in stream.counts or len(stream.counts) < len(self._known) + UNLISTED_REPOS:
            return True
        if not self._warned_unlisted:
            self._warned_unlisted = True
            log.warning("AQL names more repositories than the JPD lists (%d): activity in the others "
                        "is not counted", len(self._known))
        return False

    async def collect(self, run: Run) -> None:
        # The list first: the searches count by it (remote caches) and give its quiet repositories their 0.
        # Without it they use the last list this JPD answered.
        await run.part(REPOSITORIES, self._repositories)
        await run.part(AQL, self._searches)

    async def _repositories(self, part: Part) -> None:
        """Repository keys, so that quiet repositories show 0 rather than no series (rate() needs the 0)."""
        self._known, self._remote_of = counted_repositories(parse_result(parse_repositories, await part.get()))

    async def _searches(self, part: Part) -> None:
        """Both kinds of activity, each on its own even when the other fails.

        The counters are exact up to each kind's watermark whatever happened
        to the queries, so they are current even when a query failed.
        """
        now_ms = round(time.time() * 1000)
        failures: list[tuple[str, Outcome, str]] = []
        for stream in self.streams:
            if stream.watermark_ms is None:
                stream.start(now_ms)
                continue
            try:
                await self._catch_up(part, stream, now_ms)
            except CollectionError as exc:
                # The part is this route: its reason need not repeat it.
                failures.append((stream.kind, exc.outcome, exc.reason.removeprefix(f"{AQL}: ")))
        error = combine(failures, len(self.streams), "searches")
        if error is not None and error.outcome is Outcome.UNSUPPORTED:
            raise error  # an edition without AQL: no counters, not counters stuck at 0
        quiet = [repo for repo in self._known if self.allowed(repo)]
        for stream in self.streams:
            stream.know(quiet)
        activity_families(self.streams, part.out)
        part.current_on_failure = True
        if error is not None:
            raise error

    async def _catch_up(self, part: Part, stream: Stream, now_ms: int) -> None:
        settle_ms = round(self.settings.settle * 1000)
        limit = self.settings.max_results
        for _ in range(self.settings.max_queries):
            after, until = stream.bounds(now_ms, settle_ms)
            if until <= after:
                return
            found = await self._query(part, stream, after, until, limit)
            stream.count(found, after, until, functools.partial(self._countable, stream))
            if len(found) >= limit:
                if stream.shrink(until):
                    continue  # not complete: ask again for the first half
                stream.truncated += 1
                log.warning("activity %s: more than %d items within %d ms; some are not counted",
                            stream.kind, limit, until - after)
            stream.advance(until)

    async def _query(self, part: Part, stream: Stream, after: int, until: int, limit: int) -> list[Activity]:
        text = build_query(stream.time_field, after, until, limit)
        timeout = self.settings.query_timeout
        try:
            # A search is read-only, so it may be retried like a GET.
            result = await asyncio.wait_for(part.client.request("POST", AQL, content=text, retry=True), timeout)
        except TimeoutError:
            stream.shrink(until)  # a smaller window next time
            raise CollectionError(Outcome.TIMEOUT, f"{AQL}: query took longer than {timeout:g}s") from None
        if result.outcome is Outcome.TIMEOUT:
            stream.shrink(until)
        return parse_result(lambda body: parse_aql_activity(body, stream.time_field), result)


def activity_families(streams: Sequence[Stream], out: Emitter) -> None:
    """The counters of both kinds by repository, and how far each kind has been counted."""
    for stream, family in zip(streams, (CREATED, DOWNLOADED), strict=True):
        out.touch(family)
        for repo, count in sorted(stream.counts.items()):
            out.counter(family, count, repo=repo)
    for stream in streams:
        out.gauge(WATERMARK, None if stream.watermark_ms is None else stream.watermark_ms / 1000, kind=stream.kind)
        out.counter(TRUNCATED, stream.truncated, kind=stream.kind)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Activity:
    repo: str
    path: str
    name: str
    at_ms: int  # when it was created / last downloaded, epoch milliseconds


def aql_time(ms: int) -> str:
    """A bound in the W3C ISO 8601 profile AQL reads, at the milliseconds the database keeps."""
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}+00:00"


def build_query(time_field: str, after_ms: int, until_ms: int, limit: int) -> str:
    """Files whose ``time_field`` lies in (after, until], with just the fields needed to count them once."""
    criteria = {"$and": [{time_field: {"$gt": aql_time(after_ms)}}, {time_field: {"$lte": aql_time(until_ms)}}]}
    # repo, path and name are also what AQL demands from users without admin rights.
    include = ",".join(json.dumps(f) for f in ("repo", "path", "name", time_field))
    return f"items.find({json.dumps(criteria, separators=(',', ':'))}).include({include}).limit({limit})"


def _time_of(entry: dict[str, Any], time_field: str) -> object:
    if time_field in entry:
        return entry[time_field]
    domain, _, name = time_field.partition(".")
    if name:
        # Fields of other domains come nested: "stats": [{"downloaded": "..."}].
        nested = entry.get(domain + "s")
        if isinstance(nested, list) and nested and isinstance(nested[0], dict):
            return nested[0].get(name)
        if isinstance(nested, dict):
            return nested.get(name)
    return None


def parse_aql_activity(body: object, time_field: str) -> list[Activity]:
    """AQL results -> (repo, path, name, time); entries without a repository or a readable time are left out."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise UnexpectedShape("AQL", "an object with a 'results' list", body)
    out = []
    for entry in body["results"]:
        if not isinstance(entry, dict):
            raise UnexpectedShape("AQL results", "JSON objects", entry)
        seconds = parse_iso_timestamp(_time_of(entry, time_field))
        at_ms = seconds * 1000 if seconds is not None else math.nan
        repo = entry.get("repo")
        if not math.isfinite(at_ms) or not isinstance(repo, str) or not repo:
            continue
        out.append(Activity(repo, scalar_text(entry.get("path")), scalar_text(entry.get("name")), round(at_ms)))
    return out


def parse_repositories(body: object) -> list[tuple[str, str]]:
    """GET /api/repositories -> (key, TYPE)."""
    if not isinstance(body, list):
        raise UnexpectedShape("repositories", "a JSON array", body)
    keys = [(scalar_text(r.get("key")), scalar_text(r.get("type")).upper()) for r in body if isinstance(r, dict)]
    return [(key, kind) for key, kind in keys if key]


def counted_repositories(repos: Sequence[tuple[str, str]]) -> tuple[list[str], dict[str, str]]:
    """The repositories activity is counted in, and each remote cache's remote key.

    Items live in local and federated repositories and in remote
    repositories' caches ("<key>-cache"); virtual ones hold nothing.
    """
    known: list[str] = []
    remote_of: dict[str, str] = {}
    for key, kind in repos:
        if kind == "REMOTE":
            remote_of[f"{key}-cache"] = key
            known.append(f"{key}-cache")
        elif kind in ("LOCAL", "FEDERATED"):
            known.append(key)
    return known, remote_of


@dataclass
class Stream:
    """The counting state of one kind of activity: watermark, recently counted items, totals."""

    kind: str
    time_field: str
    #: counted up to here; set to the first run's time, so nothing older is ever counted
    watermark_ms: int | None = None
    #: the longest window to ask for; None: up to now - settle
    window_ms: int | None = None
    seen: dict[tuple[str, str, str, int], int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    truncated: int = 0

    def start(self, now_ms: int) -> None:
        self.watermark_ms = now_ms

    def bounds(self, now_ms: int, settle_ms: int) -> tuple[int, int]:
        """The next window (after, until]; empty when the watermark already reaches now - settle."""
        if self.watermark_ms is None:
            raise ValueError(f"activity {self.kind}: no watermark yet")
        after = self.watermark_ms
        until = now_ms - settle_ms
        if self.window_ms is not None:
            until = min(until, after + self.window_ms)
        return after, until

    def know(self, repos: Iterable[str]) -> None:
        """Repositories whose counter shows 0 until something happens in them.

        Once known, a repository keeps its series: a counter that vanished and
        came back would look like a reset.
        """
        for repo in repos:
            self.counts.setdefault(repo, 0)

    def count(self, found: list[Activity], after_ms: int, until_ms: int, allowed: Callable[[str], bool]) -> int:
        """Count what was not counted before; returns how many were new."""
        new = 0
        for act in found:
            key = (act.repo, act.path, act.name, act.at_ms)
            if key in self.seen or not after_ms < act.at_ms <= until_ms:
                continue
            self.seen[key] = act.at_ms
            if allowed(act.repo):
                self.counts[act.repo] = self.counts.get(act.repo, 0) + 1
                new += 1
        return new

    def advance(self, until_ms: int) -> None:
        self.watermark_ms = until_ms
        if self.window_ms is not None:
            self.window_ms *= 2
        # At or below the watermark nothing is counted any more: forget it.
        self.seen = {k: t for k, t in self.seen.items() if t > until_ms}

    def shrink(self, until_ms: int) -> bool:
        """Halve the window after a full or timed-out answer; False when it is already the smallest."""
        if self.watermark_ms is None:
            return False
        span = until_ms - self.watermark_ms
        if span <= MIN_WINDOW_MS:
            return False
        self.window_ms = max(MIN_WINDOW_MS, span // 2)
        return True
