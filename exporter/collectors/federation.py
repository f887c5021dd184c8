"""Collector `federation`: Federated repositories, from the Federation service (RTFS) or the legacy one.

A JPD runs either the standalone Federation service (RTFS, 7.104.2+) or the
legacy federation inside Artifactory. The collector remembers which one
answered and asks it first next time; when it stops answering (an upgrade
enables RTFS, whose JPD then refuses the legacy endpoints with a plain-text
"RTFS is enabled therefore ... is not allowed") it detects again. Member
states of both services map onto one state set, lags are in seconds.

The legacy per-repository status endpoint is heavy on the JPD's database
(the documents warn about it), so it is only called when
``legacy_repo_status`` is enabled.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, cast

from prometheus_client.core import Metric
from pydantic import Field

from exporter.client import ApiResult, CollectionError, JfrogClient, Outcome
from exporter.collectors.base import Collector, CollectorSettings, parse_result, run_bounded
from exporter.metrics import MetricSet
from exporter.values import parse_count, safe_url

log = logging.getLogger(__name__)

REPOSITORIES = "/artifactory/api/repositories"
INCONSISTENT = "/artifactory/api/federation/inconsistentRepos"
FAILED_TASKS = "/artifactory/api/federation/binaries/failures/list"
# RTFS
STATE_SUMMARY = "/artifactory/api/federation/status/stateSummary"
STATE_LIST = "/artifactory/api/federation/status/stateList"
CONNECTION_STATES = "/artifactory/api/federation/status/connectionStates/{repo}"
# legacy
MIRRORS_LAG = "/artifactory/api/federation/status/mirrorsLag"
UNAVAILABLE_MIRRORS = "/artifactory/api/federation/status/unavailableMirrors"
FEDERATION_STATE = "/artifactory/api/federation/state"
LEGACY_REPO_STATUS_V2 = "/artifactory/api/v2/federation/status/repo/{repo}"
LEGACY_REPO_STATUS_V1 = "/artifactory/api/federation/status/repo/{repo}"

RTFS = "rtfs"
LEGACY = "legacy"

#: jfrog_federation_member_status, as the metric contract lists them
MEMBER_STATES = ("healthy", "delayed", "pending_full_sync", "full_sync_running", "out_of_sync", "error",
                 "disabled", "not_available")
#: the documented keys of RTFS stateSummary (jfrog_federation_federations{state})
SUMMARY_STATES = ("HEALTHY", "NOT_AVAILABLE", "DELAYED", "PENDING_FS", "FULL_SYNC_RUNNING", "ERROR", "DISABLED")

_STATE_MAP = {
    "HEALTHY": "healthy",
    "SYNC": "healthy",
    "SYNCING": "healthy",
    "DELAYED": "delayed",
    "PENDING_FS": "pending_full_sync",
    "FULL_SYNC_RUNNING": "full_sync_running",
    "FS_RUNNING": "full_sync_running",
    "OUT_OF_SYNC": "out_of_sync",
    "ERROR": "error",
    "EXHAUSTED": "error",
    "DISABLED": "disabled",
    "N/A": "not_available",
    "NOT_AVAILABLE": "not_available",
}

ADMIN_NEEDED = "requires an admin user (federation monitoring is admin-only; Artifactory answered 403)"

_RTFS_REFUSAL = re.compile(r"\bRTFS\s+is\s+enabled\b", re.IGNORECASE)


def member_state(raw: object) -> str | None:
    """A member state of either service on the contract's state set; an unknown one stays as sent (lower case)."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    key = raw.strip().upper()
    return _STATE_MAP.get(key, key.lower())


def is_rtfs_refusal(result: ApiResult) -> bool:
    """The legacy endpoints' plain-text answer on a JPD where RTFS is enabled: "this mode is not active"."""
    return (isinstance(result.body, str) and bool(_RTFS_REFUSAL.search(result.body))) or bool(
        _RTFS_REFUSAL.search(result.reason))


def _seconds(ms: object) -> float | None:
    value = parse_count(ms)
    return None if value is None else value / 1000.0


def _url_key(url: str) -> str:
    return safe_url(url).lower()


def _list(body: object, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise ValueError(f"{what}: expected a JSON array")
    return body


def _objects(items: list[Any], what: str) -> list[dict[str, Any]]:
    if not all(isinstance(item, dict) for item in items):
        raise ValueError(f"{what}: expected JSON objects")
    return cast(list[dict[str, Any]], items)


# -- parsers -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One remote member of a repository Federation, as seen from a local repository."""

    repo: str
    remote_repo: str
    remote_url: str
    state: str | None
    in_lag: bool | None = None


@dataclass(frozen=True, slots=True)
class Connection:
    local_repo: str
    local_url: str
    remote_repo: str
    remote_url: str
    state: str | None
    lag_seconds: float | None
    queued_events: float | None


@dataclass(frozen=True, slots=True)
class MirrorLag:
    repo: str
    remote_repo: str
    remote_url: str
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class LegacyFederation:
    repo: str
    state: str | None
    members: list[tuple[str, str]]  # (remote_repo, remote_url)


@dataclass(frozen=True, slots=True)
class LegacyMirror:
    remote_repo: str
    remote_url: str
    state: str | None
    queued_events: float | None
    lag_seconds: float | None


@dataclass(frozen=True, slots=True)
class LegacyRepoStatus:
    repo: str
    failing_tasks: float | None
    mirrors: list[LegacyMirror]


def parse_state_summary(body: object) -> dict[str, float]:
    """RTFS stateSummary: federations per state."""
    if not isinstance(body, dict) or not isinstance(body.get("federationStates"), dict):
        raise ValueError("stateSummary: expected an object with federationStates")
    out: dict[str, float] = {}
    for state, count in body["federationStates"].items():
        value = parse_count(count)
        if value is not None:
            out[str(state).upper()] = value
    return out


def parse_state_list(body: object) -> list[Member]:
    """RTFS stateList: every other member of each Federation, with its aggregated status."""
    if not isinstance(body, dict) or not isinstance(body.get("federations"), list):
        raise ValueError("stateList: expected an object with federations")
    members = []
    for federation in _objects(body["federations"], "stateList federations"):
        repo = str(federation.get("localRepoKey") or "")
        for info in _objects(_list(federation.get("memberInfoList") or [], "memberInfoList"), "memberInfoList"):
            raw = info.get("aggregatedStatus")
            if not raw and info.get("disabled") is True:
                raw = "DISABLED"
            in_lag = info.get("inLag")
            members.append(Member(repo, str(info.get("repoKey") or ""), safe_url(info.get("url")),
                                  member_state(raw), in_lag if isinstance(in_lag, bool) else None))
    return members


def parse_connection_states(body: object) -> list[Connection]:
    """RTFS connectionStates/{repo}: every connection of the Federation, in both directions."""
    if not isinstance(body, dict) or not isinstance(body.get("memberConnections"), list):
        raise ValueError("connectionStates: expected an object with memberConnections")
    return [
        Connection(
            local_repo=str(c.get("localRepoKey") or ""),
            local_url=safe_url(c.get("localPlatformUrl")),
            remote_repo=str(c.get("remoteRepoKey") or ""),
            remote_url=safe_url(c.get("remotePlatformUrl")),
            state=member_state(c.get("status")),
            lag_seconds=_seconds(c.get("lagInMs")),
            queued_events=parse_count(c.get("queuedEvents")),
        )
        for c in _objects(body["memberConnections"], "memberConnections")
    ]


def outgoing_connections(repo: str, connections: list[Connection], other_member_urls: set[str]) -> list[Connection]:
    """The connections from this JPD's ``repo`` to the other members.

    connectionStates lists every connection of the Federation, also those
    between the other members and back to this one. This JPD's side is the
    source whose URL is not one of the other members' (known from stateList);
    without that knowledge every connection from a repository of this key
    is kept. One connection per (remote repository, remote URL).
    """
    candidates = [c for c in connections if c.local_repo == repo]
    mine = [c for c in candidates if _url_key(c.local_url) not in other_member_urls] if other_member_urls else []
    out: dict[tuple[str, str], Connection] = {}
    for conn in mine or candidates:
        if (conn.remote_repo, _url_key(conn.remote_url)) == (conn.local_repo, _url_key(conn.local_url)):
            continue
        out.setdefault((conn.remote_repo, _url_key(conn.remote_url)), conn)
    return list(out.values())


def parse_mirrors_lag(body: object) -> list[MirrorLag]:
    """Legacy mirrorsLag (lagInMS)."""
    return [
        MirrorLag(str(e.get("localRepoKey") or ""), str(e.get("remoteRepoKey") or ""), safe_url(e.get("remoteUrl")),
                  _seconds(e.get("lagInMS", e.get("lagInMs"))))
        for e in _objects(_list(body, "mirrorsLag"), "mirrorsLag")
    ]


def parse_unavailable_mirrors(body: object) -> list[Member]:
    """Legacy unavailableMirrors: every mirror not in SYNC, with its status."""
    return [
        Member(str(e.get("localRepoKey") or ""), str(e.get("remoteRepoKey") or ""), safe_url(e.get("remoteUrl")),
               member_state(e.get("status")))
        for e in _objects(_list(body, "unavailableMirrors"), "unavailableMirrors")
    ]


def parse_federation_state(body: object) -> list[LegacyFederation]:
    """Legacy federation/state: the sync state of each Federation and its members."""
    out = []
    for entry in _objects(_list(body, "federation state"), "federation state"):
        members = [
            (str(m.get("remoteRepoKey") or ""), safe_url(m.get("remoteUrl")))
            for m in _objects(_list(entry.get("members") or [], "members"), "members")
        ]
        out.append(LegacyFederation(str(entry.get("localRepoKey") or ""), member_state(entry.get("status")), members))
    return out


def parse_legacy_repo_status(body: object) -> LegacyRepoStatus:
    """Legacy status/repo/{repo}, v1 (SYNC, OUT_OF_SYNC) or v2 (HEALTHY, PENDING_FS, FS_RUNNING, ...)."""
    if not isinstance(body, dict):
        raise ValueError("federated repository status: expected a JSON object")
    tasks = body.get("binariesTasksInfo")
    failing = parse_count(tasks.get("failingTasks")) if isinstance(tasks, dict) else None
    mirrors = []
    for m in _objects(_list(body.get("mirrorEventsStatusInfo") or [], "mirrorEventsStatusInfo"),
                      "mirrorEventsStatusInfo"):
        counts = [parse_count(m.get(k)) for k in ("createEvents", "updateEvents", "deleteEvents", "propsEvents")]
        queued = sum(c for c in counts if c is not None) if any(c is not None for c in counts) else None
        mirrors.append(LegacyMirror(str(m.get("remoteRepoKey") or ""), safe_url(m.get("remoteUrl")),
                                    member_state(m.get("status")), queued, _seconds(m.get("lagInMS"))))
    return LegacyRepoStatus(str(body.get("localKey") or body.get("localRepoKey") or ""), failing, mirrors)


def parse_inconsistent_repos(body: object) -> list[str]:
    return [str(key) for key in _list(body, "inconsistentRepos")]


def parse_repository_keys(body: object, repo_type: str = "federated") -> list[str]:
    """Keys from GET /api/repositories?type=...; entries of another type (if the filter is ignored) are left out."""
    keys = []
    for entry in _objects(_list(body, "repositories"), "repositories"):
        kind = entry.get("type")
        if isinstance(kind, str) and kind.strip().lower() != repo_type:
            continue
        if entry.get("key"):
            keys.append(str(entry["key"]))
    return keys


def parse_failed_tasks_page(body: object) -> tuple[int, tuple[str, str] | None]:
    """The number of failed binary tasks on one page, and the identity of its first task."""
    tasks = _objects(_list(body, "failed binary tasks"), "failed binary tasks")
    first = (str(tasks[0].get("sha1")), str(tasks[0].get("creationTime"))) if tasks else None
    return len(tasks), first


def legacy_members(states: list[LegacyFederation], unavailable: list[Member], lags: list[MirrorLag]) -> list[Member]:
    """Member states from the legacy endpoints.

    unavailableMirrors lists every mirror not in SYNC with its own status; any
    other known mirror is in sync unless its whole Federation is disabled or
    running a full sync (federation/state).
    """
    members: dict[tuple[str, str, str], Member] = {}

    def put(repo: str, remote_repo: str, remote_url: str, state: str | None) -> None:
        members[(repo, remote_repo, _url_key(remote_url))] = Member(repo, remote_repo, remote_url, state)

    for fed in states:
        base = fed.state if fed.state in ("disabled", "full_sync_running") else "healthy"
        for remote_repo, remote_url in fed.members:
            put(fed.repo, remote_repo, remote_url, base)
    for lag in lags:
        if (lag.repo, lag.remote_repo, _url_key(lag.remote_url)) not in members:
            put(lag.repo, lag.remote_repo, lag.remote_url, "healthy")
    for mirror in unavailable:
        put(mirror.repo, mirror.remote_repo, mirror.remote_url, mirror.state)
    return list(members.values())


# -- collector ---------------------------------------------------------------

H = {
    "jfrog_federation_service_info": "Which federation service answers on the JPD (mode: rtfs or legacy).",
    "jfrog_federation_federations": "Federations per state, from the Federation service's stateSummary (RTFS only).",
    "jfrog_federation_member_status": "State of each remote member of a Federation, as a state set "
                                      "(polled in the background).",
    "jfrog_federation_member_in_lag": "1 if the member is late sending metadata events (RTFS inLag).",
    "jfrog_federation_lag_seconds": "Lag of metadata events from the local repository to the member.",
    "jfrog_federation_queued_events": "Metadata events queued for the member.",
    "jfrog_federation_inconsistent_repos": "Federated repositories whose configuration differs from a member's.",
    "jfrog_federation_repo_inconsistent": "1 if the federated repository's configuration differs from a member's.",
    "jfrog_federation_failed_binary_tasks": "Binary tasks that failed to fetch a binary from a member.",
    "jfrog_federation_failed_binary_tasks_truncated_repos":
        "Repositories whose failed binary tasks were counted only up to the page bound (a lower bound).",
}

_NOT_A_MODE_SIGNAL = frozenset({Outcome.FORBIDDEN, Outcome.UNAUTHORIZED, Outcome.TIMEOUT, Outcome.UNREACHABLE})


def _failure(result: ApiResult) -> CollectionError:
    if result.outcome is Outcome.FORBIDDEN:
        return CollectionError(Outcome.FORBIDDEN, f"{result.endpoint} {ADMIN_NEEDED}: {result.reason}")
    return CollectionError(result.outcome, f"{result.endpoint}: {result.reason}")


class FederationSettings(CollectorSettings):
    #: tasks asked for per page of the failed binary tasks list (the documented default is 1000)
    failed_tasks_page_size: Annotated[int, Field(ge=1, le=10_000)] = 1000
    #: pages read per repository and run at most, so one huge repository cannot stall the run
    failed_tasks_max_pages: Annotated[int, Field(ge=1, le=1000)] = 10
    #: legacy mode: also call the per-repository status endpoint (heavy on the JPD's database)
    legacy_repo_status: bool = False


@dataclass(slots=True)
class _FailedTasks:
    count: int | None = None
    truncated: bool = False
    failure: ApiResult | None = None


@dataclass(slots=True)
class _View:
    """What one run learnt, in the contract's terms."""

    mode: str
    summary: dict[str, float] | None = None
    members: list[Member] = field(default_factory=list)
    lags: dict[tuple[str, str, str], tuple[str, str, str, float | None, float | None]] = field(default_factory=dict)


class FederationCollector(Collector):
    name = "federation"
    default_interval = 60.0
    description = "federation service mode, member states, lag, queued events, inconsistent repos, failed binaries"
    settings_model = FederationSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mode: str | None = None
        self._legacy_status_endpoint = LEGACY_REPO_STATUS_V2
        self._truncated: frozenset[str] = frozenset()

    @property
    def _settings(self) -> FederationSettings:
        return cast(FederationSettings, self.settings)

    async def collect(self, client: JfrogClient) -> list[Metric]:
        first = self._mode or RTFS
        repos_result, inconsistent_result, (active, data) = await asyncio.gather(
            client.get(REPOSITORIES, params={"type": "federated"}),
            client.get(INCONSISTENT),
            self._fetch_mode(client, first),
        )
        mode = first
        if active is not True:
            probe = data[0]
            if active is None and probe.outcome in _NOT_A_MODE_SIGNAL:
                raise _failure(probe)
            mode = LEGACY if first == RTFS else RTFS
            other_active, other_data = await self._fetch_mode(client, mode)
            if other_active is not True:
                if active is False and other_active is False:
                    raise CollectionError(Outcome.UNSUPPORTED, "neither the Federation service (RTFS) nor the "
                                          "legacy federation endpoints answer on this JPD")
                raise _failure(probe if active is None else other_data[0])
            data = other_data
        if self._mode is not None and mode != self._mode:
            log.info("target=%s: the JPD's federation service is now %s (was %s)", self.target.name, mode, self._mode)
        self._mode = mode

        if not repos_result.ok:
            raise _failure(repos_result)
        repos = [r for r in parse_result(parse_repository_keys, repos_result) if self.target.repos.allows(r)]
        inconsistent: list[str] | None = None
        if inconsistent_result.ok:
            inconsistent = parse_result(parse_inconsistent_repos, inconsistent_result)
        elif not inconsistent_result.unsupported:  # 404 before 7.108.3: nothing to report
            raise _failure(inconsistent_result)

        if mode == RTFS:
            view, failed = await self._rtfs(client, data, repos)
        else:
            view, failed = await self._legacy(client, data, repos)
        return self._families(view, repos, inconsistent, failed)

    # -- mode detection ----------------------------------------------------
    async def _fetch_mode(self, client: JfrogClient, mode: str) -> tuple[bool | None, list[ApiResult]]:
        """The mode's global calls, and whether they say the mode is active (None: cannot tell)."""
        if mode == RTFS:
            summary, state_list = await asyncio.gather(client.get(STATE_SUMMARY), client.get(STATE_LIST))
            if summary.ok:
                return True, [summary, state_list]
            # A legacy-only JPD does not have the endpoint; a refusal naming RTFS cannot come from here.
            return (False if summary.unsupported else None), [summary, state_list]
        lag, unavailable, state = await asyncio.gather(
            client.get(MIRRORS_LAG), client.get(UNAVAILABLE_MIRRORS), client.get(FEDERATION_STATE))
        if lag.ok:
            return True, [lag, unavailable, state]
        if lag.unsupported or is_rtfs_refusal(lag):
            return False, [lag, unavailable, state]
        return None, [lag, unavailable, state]

    # -- RTFS --------------------------------------------------------------
    async def _rtfs(self, client: JfrogClient, data: list[ApiResult],
                    repos: list[str]) -> tuple[_View, dict[str, _FailedTasks]]:
        summary_result, state_list_result = data
        view = _View(RTFS, summary=parse_result(parse_state_summary, summary_result))
        if not state_list_result.ok:
            raise _failure(state_list_result)
        view.members = [m for m in parse_result(parse_state_list, state_list_result)
                        if self.target.repos.allows(m.repo)]
        connection_results, failed = await self._per_repo(
            client, repos, lambda repo: client.get(CONNECTION_STATES, path={"repo": repo}))
        others: dict[str, set[str]] = {}
        for member in view.members:
            others.setdefault(member.repo, set()).add(_url_key(member.remote_url))
        for repo, result in zip(repos, connection_results, strict=True):
            if result.unsupported:  # the repository went away since it was listed
                continue
            connections = parse_result(parse_connection_states, result)
            for conn in outgoing_connections(repo, connections, others.get(repo, set())):
                view.lags[(repo, conn.remote_repo, _url_key(conn.remote_url))] = (
                    repo, conn.remote_repo, conn.remote_url, conn.lag_seconds, conn.queued_events)
        return view, failed

    # -- legacy ------------------------------------------------------------
    async def _legacy(self, client: JfrogClient, data: list[ApiResult],
                      repos: list[str]) -> tuple[_View, dict[str, _FailedTasks]]:
        lag_result, unavailable_result, state_result = data
        lags = parse_result(parse_mirrors_lag, lag_result)
        if not unavailable_result.ok:
            raise _failure(unavailable_result)
        unavailable = parse_result(parse_unavailable_mirrors, unavailable_result)
        states: list[LegacyFederation] = []
        if state_result.ok:
            states = parse_result(parse_federation_state, state_result)
        elif not state_result.unsupported:
            raise _failure(state_result)
        view = _View(LEGACY)
        for lag in lags:
            view.lags[(lag.repo, lag.remote_repo, _url_key(lag.remote_url))] = (
                lag.repo, lag.remote_repo, lag.remote_url, lag.lag_seconds, None)
        members = legacy_members(states, unavailable, lags)
        failed: dict[str, _FailedTasks]
        if self._settings.legacy_repo_status:
            status_results, failed = await self._per_repo(client, repos, lambda repo: self._legacy_status(client, repo))
            by_key = {(m.repo, m.remote_repo, _url_key(m.remote_url)): m for m in members}
            for repo, result in zip(repos, status_results, strict=True):
                if result.unsupported:
                    continue
                status = parse_result(parse_legacy_repo_status, result)
                for mirror in status.mirrors:
                    key = (repo, mirror.remote_repo, _url_key(mirror.remote_url))
                    by_key[key] = Member(repo, mirror.remote_repo, mirror.remote_url, mirror.state)
                    known = view.lags.get(key)
                    lag = known[3] if known and known[3] is not None else mirror.lag_seconds
                    view.lags[key] = (repo, mirror.remote_repo, mirror.remote_url, lag, mirror.queued_events)
            members = list(by_key.values())
        else:
            _, failed = await self._per_repo(client, repos, None)
        view.members = [m for m in members if self.target.repos.allows(m.repo)]
        view.lags = {k: v for k, v in view.lags.items() if self.target.repos.allows(k[0])}
        return view, failed

    async def _legacy_status(self, client: JfrogClient, repo: str) -> ApiResult:
        result = await client.get(self._legacy_status_endpoint, path={"repo": repo})
        if result.unsupported and self._legacy_status_endpoint == LEGACY_REPO_STATUS_V2:
            # Before the v2 endpoint existed, v1 answers with SYNC/OUT_OF_SYNC.
            v1 = await client.get(LEGACY_REPO_STATUS_V1, path={"repo": repo})
            if v1.ok:
                self._legacy_status_endpoint = LEGACY_REPO_STATUS_V1
            return v1
        return result

    # -- per repository ----------------------------------------------------
    async def _per_repo(
        self, client: JfrogClient, repos: list[str], call: Callable[[str], Awaitable[ApiResult]] | None
    ) -> tuple[list[ApiResult], dict[str, _FailedTasks]]:
        """One call per repository (if any) and the failed binary tasks of each, under the target's limit.

        The failed tasks come first: they may take several pages one after the
        other, and starting them early keeps them from trailing at the end.
        """
        jobs: list[Callable[[], Awaitable[Any]]] = [partial(self._failed_tasks, client, repo) for repo in repos]
        if call is not None:
            jobs += [partial(call, repo) for repo in repos]
        done = await run_bounded(jobs, self.target.max_concurrency)
        failed = self._check_failed_tasks(dict(zip(repos, done[: len(repos)], strict=True)))
        if call is None:
            return [], failed
        results = cast(list[ApiResult], done[len(repos):])
        failures = [(repo, r) for repo, r in zip(repos, results, strict=True) if not (r.ok or r.unsupported)]
        if failures:
            repo, first = failures[0]
            if first.outcome is Outcome.FORBIDDEN:
                raise _failure(first)
            raise CollectionError(first.outcome, f"{len(failures)} of {len(repos)} calls failed; first: "
                                  f"{first.endpoint} for {repo}: {first.reason}")
        return list(results), failed

    def _check_failed_tasks(self, out: dict[str, _FailedTasks]) -> dict[str, _FailedTasks]:
        failures = [(repo, c.failure) for repo, c in out.items() if c.failure is not None]
        if failures:
            repo, first = failures[0]
            if first.outcome is Outcome.FORBIDDEN:
                raise _failure(first)
            raise CollectionError(first.outcome, f"{len(failures)} of {len(out)} failed binary task lists could "
                                  f"not be read; first: {first.endpoint} for {repo}: {first.reason}")
        return out

    async def _failed_tasks(self, client: JfrogClient, repo: str) -> _FailedTasks:
        """Count across pages, up to the configured number of pages."""
        size = self._settings.failed_tasks_page_size
        total = 0
        first_of_first: tuple[str, str] | None = None
        for page in range(1, self._settings.failed_tasks_max_pages + 1):
            result = await client.get(FAILED_TASKS, params={"repoKey": repo, "limit": size, "page": page})
            if result.unsupported:
                # Before 7.68.11, or the repository went away: nothing to count.
                return _FailedTasks(None if page == 1 else total)
            if not result.ok:
                return _FailedTasks(failure=result)
            try:
                count, first = parse_result(parse_failed_tasks_page, result)
            except CollectionError as exc:
                return _FailedTasks(failure=ApiResult(result.endpoint, exc.outcome, result.status, None,
                                                      exc.reason.removeprefix(f"{result.endpoint}: ")))
            if page == 1:
                first_of_first = first
            elif first is not None and first == first_of_first:
                # The server ignores the page parameter: the first page is all that can be counted.
                return _FailedTasks(total, truncated=True)
            total += count
            if count < size:
                return _FailedTasks(total)
        return _FailedTasks(total, truncated=True)

    # -- families ----------------------------------------------------------
    def _families(self, view: _View, repos: list[str], inconsistent: list[str] | None,
                  failed: dict[str, _FailedTasks]) -> list[Metric]:
        metrics = MetricSet(self.target.name)
        for name, help_text in H.items():
            metrics.declare(name, help_text)
        metrics.info("jfrog_federation_service_info", H["jfrog_federation_service_info"], mode=view.mode)
        if view.summary is not None:
            for state in (*SUMMARY_STATES, *sorted(set(view.summary) - set(SUMMARY_STATES))):
                metrics.gauge("jfrog_federation_federations", H["jfrog_federation_federations"],
                              view.summary.get(state, 0.0), state=state)
        seen: set[tuple[str, str, str]] = set()
        for member in view.members:
            key = (member.repo, member.remote_repo, _url_key(member.remote_url))
            if key in seen:
                continue
            seen.add(key)
            labels = {"repo": member.repo, "remote_repo": member.remote_repo, "remote_url": member.remote_url}
            metrics.state_set("jfrog_federation_member_status", H["jfrog_federation_member_status"], MEMBER_STATES,
                              member.state, **labels)
            if member.in_lag is not None:
                metrics.gauge("jfrog_federation_member_in_lag", H["jfrog_federation_member_in_lag"],
                              1.0 if member.in_lag else 0.0, **labels)
        for repo, remote_repo, remote_url, lag, queued in view.lags.values():
            labels = {"repo": repo, "remote_repo": remote_repo, "remote_url": remote_url}
            metrics.gauge("jfrog_federation_lag_seconds", H["jfrog_federation_lag_seconds"], lag, **labels)
            metrics.gauge("jfrog_federation_queued_events", H["jfrog_federation_queued_events"], queued, **labels)
        if inconsistent is not None:
            listed = [r for r in inconsistent if self.target.repos.allows(r)]
            metrics.gauge("jfrog_federation_inconsistent_repos", H["jfrog_federation_inconsistent_repos"],
                          len(set(listed)))
            for repo in dict.fromkeys([*repos, *listed]):
                metrics.gauge("jfrog_federation_repo_inconsistent", H["jfrog_federation_repo_inconsistent"],
                              1.0 if repo in listed else 0.0, repo=repo)
        truncated = []
        for repo, tasks in failed.items():
            metrics.gauge("jfrog_federation_failed_binary_tasks", H["jfrog_federation_failed_binary_tasks"],
                          tasks.count, repo=repo)
            if tasks.truncated:
                truncated.append(repo)
        if failed:
            metrics.gauge("jfrog_federation_failed_binary_tasks_truncated_repos",
                          H["jfrog_federation_failed_binary_tasks_truncated_repos"], len(truncated))
        if frozenset(truncated) - self._truncated:
            log.warning("target=%s: failed binary tasks counted only up to %d pages for %s",
                        self.target.name, self._settings.failed_tasks_max_pages, ", ".join(sorted(truncated)[:5])
                        + (f" and {len(truncated) - 5} more" if len(truncated) > 5 else ""))
        self._truncated = frozenset(truncated)
        return metrics.families()
