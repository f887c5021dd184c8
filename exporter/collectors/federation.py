"""Collector `federation`: Federated repositories, from the Federation service (RTFS) or the legacy one.

A JPD runs either the standalone Federation service (RTFS, 7.104.2+) or the
legacy federation inside Artifactory. Each run first asks the service that
answered last time (RTFS on the first run) whether it is active: its
stateSummary, or the legacy mirrorsLag. When it stops answering (an upgrade
enables RTFS, whose JPD then refuses the legacy endpoints with a plain-text
"RTFS is enabled therefore ... is not allowed") the other one is asked. The
parts of the active service run; those of the other are not run at all, so
their families go away with a switch. Member states of both services map
onto one state set, lags are in seconds.

Parts, besides the repository list, inconsistentRepos and the failed binary
tasks that both services share:

- RTFS: stateSummary (the service, federations per state), stateList
  (member states), connectionStates/{repo} (lag and queue of this JPD's
  outgoing connections; it needs stateList to tell them apart).
- legacy: mirrorsLag (the service, lags), federation/state (member states,
  combined with unavailableMirrors and mirrorsLag), and the per-repository
  status when ``legacy_repo_status`` is enabled: it is heavy on the JPD's
  database (the documents warn about it); it adds queued events, the lags
  mirrorsLag lacks and the finer v2 member states.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from exporter.client import ApiResult, JfrogClient
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.collectors.refresh import Refresh
from exporter.families import Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome, combine
from exporter.validation import Interval
from exporter.values import UnexpectedShape, listed, parse_count, safe_url, scalar_text

log = logging.getLogger(__name__)

F = Declarations("federation")
REPOSITORIES = F.endpoint("/artifactory/api/repositories", Permission.ANONYMOUS)
INCONSISTENT = F.endpoint("/artifactory/api/federation/inconsistentRepos", Permission.ADMIN)
FAILED_TASKS = F.endpoint("/artifactory/api/federation/binaries/failures/list", Permission.ADMIN)
# RTFS
STATE_SUMMARY = F.endpoint("/artifactory/api/federation/status/stateSummary", Permission.ADMIN)
STATE_LIST = F.endpoint("/artifactory/api/federation/status/stateList", Permission.ADMIN)
CONNECTION_STATES = F.endpoint("/artifactory/api/federation/status/connectionStates/{repo}", Permission.ADMIN)
# legacy
MIRRORS_LAG = F.endpoint("/artifactory/api/federation/status/mirrorsLag", Permission.ADMIN)
UNAVAILABLE_MIRRORS = F.endpoint("/artifactory/api/federation/status/unavailableMirrors", Permission.ADMIN)
FEDERATION_STATE = F.endpoint("/artifactory/api/federation/state", Permission.ADMIN)
LEGACY_REPO_STATUS_V2 = F.endpoint("/artifactory/api/v2/federation/status/repo/{repo}", Permission.ADMIN)
LEGACY_REPO_STATUS_V1 = F.endpoint("/artifactory/api/federation/status/repo/{repo}", Permission.ADMIN)

RTFS = "rtfs"
LEGACY = "legacy"
#: the call whose answer says whether a service is active; its part reports the service
PROBES = {RTFS: STATE_SUMMARY, LEGACY: MIRRORS_LAG}

#: jfrog_federation_member_status, as the metric contract lists them
MEMBER_STATES = ("healthy", "delayed", "pending_full_sync", "full_sync_running", "out_of_sync", "error",
                 "disabled", "not_available")
#: the documented keys of RTFS stateSummary (jfrog_federation_federations{state})
SUMMARY_STATES = ("HEALTHY", "NOT_AVAILABLE", "DELAYED", "PENDING_FS", "FULL_SYNC_RUNNING", "ERROR", "DISABLED")

SERVICE_INFO = F.info("jfrog_federation_service_info",
                      "Which federation service answers on the JPD (mode: rtfs or legacy).", "mode")
FEDERATIONS = F.gauge("jfrog_federation_federations",
                      "Federations per state, from the Federation service's stateSummary (RTFS only).", "state")
# A member is identified from the local repository's side: its remote repository or URL may be missing.
_MEMBER = ("repo", "remote_repo", "remote_url")
MEMBER_STATUS = F.state_set("jfrog_federation_member_status",
                            "State of each remote member of a Federation, as a state set (polled in the background).",
                            MEMBER_STATES, *_MEMBER)
MEMBER_IN_LAG = F.gauge("jfrog_federation_member_in_lag",
                        "1 if the member is late sending metadata events (RTFS inLag).", *_MEMBER)
LAG = F.gauge("jfrog_federation_lag_seconds",
              "Lag of metadata events from the local repository to the member.", *_MEMBER)
QUEUED = F.gauge("jfrog_federation_queued_events", "Metadata events queued for the member.", *_MEMBER)
INCONSISTENT_REPOS = F.gauge("jfrog_federation_inconsistent_repos",
                             "Federated repositories whose configuration differs from a member's.")
REPO_INCONSISTENT = F.gauge("jfrog_federation_repo_inconsistent",
                            "1 if the federated repository's configuration differs from a member's.", "repo")
FAILED_BINARY_TASKS = F.gauge("jfrog_federation_failed_binary_tasks",
                              "Binary tasks that failed to fetch a binary from a member.", "repo")
TRUNCATED_REPOS = F.gauge("jfrog_federation_failed_binary_tasks_truncated_repos",
                          "Repositories whose failed binary tasks were counted only up to the page bound "
                          "(a lower bound).")

#: outcomes that say nothing about which service is active, and that every other call would share
_NO_ANSWER = frozenset({Outcome.FORBIDDEN, Outcome.UNAUTHORIZED, Outcome.TIMEOUT, Outcome.UNREACHABLE,
                        Outcome.MISCONFIGURED})

class FederationSettings(CollectorSettings):
    #: tasks asked for per page of the failed binary tasks list (the documented default is 1000)
    failed_tasks_page_size: Annotated[int, Field(ge=1, le=10_000)] = 1000
    #: pages read per repository and run at most, so one huge repository cannot stall the run
    failed_tasks_max_pages: Annotated[int, Field(ge=1, le=1000)] = 10
    #: legacy mode: also call the per-repository status endpoint (heavy on the JPD's database)
    legacy_repo_status: bool = False
    #: every repository's lags and failed binary tasks are read at least this often (RTFS)
    full_sweep: Interval = 3600.0
    #: a member in lag has its lag read again at most this often (its state is read every run)
    lag_interval: Interval = 300.0


def _repo_path(repo: str) -> dict[str, str]:
    return {"repo": repo}


class FederationCollector(Collector[FederationSettings]):
    name = "federation"
    default_interval = 60.0
    description = "federation service mode, member states, lag, queued events, inconsistent repos, failed binaries"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The service that answered last time is asked first; the v1 status endpoint once v2 proved missing.
        self._mode: str | None = None
        self._legacy_status_endpoint = LEGACY_REPO_STATUS_V2
        # Repositories whose failed tasks were cut at the page bound: warned about once, not every run.
        self._truncated: frozenset[str] = frozenset()
        # What was last read per repository, and the member states it was read for: details change with them.
        self._lags: Refresh[str, list[Lag]] = Refresh()
        self._failed: Refresh[str, FailedTasks] = Refresh()
        self._states_read: dict[str, frozenset[tuple[str, str | None, bool | None]]] = {}

    async def collect(self, run: Run) -> None:
        found = await self._detect(run.client)
        if found.mode is None:
            await run.part(STATE_SUMMARY, _neither_service)
            return
        if found.confirmed:
            if self._mode is not None and found.mode != self._mode:
                log.info("the JPD's federation service is now %s (was %s)", found.mode, self._mode)
            self._mode = found.mode
        elif found.probe.outcome in _NO_ANSWER:
            # The JPD refuses or does not answer: every other call would fare the same. Keep their data.
            probe = PROBES[found.mode]
            await run.part(probe, self._refused, found.probe)
            for endpoint in self._endpoints(found.mode):
                run.skip(endpoint, needs=probe)
            return
        if found.mode == RTFS:
            await self._collect_rtfs(run, found.probe)
        else:
            await self._collect_legacy(run, found.probe)

    # -- mode detection ------------------------------------------------------------------------
    async def _detect(self, client: JfrogClient) -> Detection:
        """Ask the service that answered last time, then the other one if it is not active."""
        first = self._mode or RTFS
        candidates: list[Detection] = []
        for mode in (first, LEGACY if first == RTFS else RTFS):
            result = await client.get(PROBES[mode])
            active = probe_verdict(mode, result)
            if active:
                return Detection(mode, result, confirmed=True)
            if active is None:
                candidates.append(Detection(mode, result, confirmed=False))
                if result.outcome in _NO_ANSWER:
                    break
        # Not active anywhere: the first service that could not tell is the one to report the failure under.
        return candidates[0] if candidates else Detection(None, result, confirmed=False)

    def _endpoints(self, mode: str) -> tuple[str, ...]:
        """The parts of a mode besides its probe."""
        if mode == RTFS:
            return STATE_LIST, REPOSITORIES, INCONSISTENT, CONNECTION_STATES, FAILED_TASKS
        status = (self._legacy_status_endpoint,) if self.settings.legacy_repo_status else ()
        return (REPOSITORIES, INCONSISTENT, FAILED_TASKS, *status, FEDERATION_STATE)

    async def _refused(self, part: Part, probe: ApiResult) -> None:
        probe.require()

    # -- RTFS ----------------------------------------------------------------------------------
    async def _collect_rtfs(self, run: Run, probe: ApiResult) -> None:
        _, members, repos = await asyncio.gather(
            run.part(STATE_SUMMARY, self._state_summary, probe),
            run.part(STATE_LIST, self._state_list),
            run.part(REPOSITORIES, self._repositories),
        )
        await asyncio.gather(self._shared_parts(run, repos), self._connections(run, repos, members))

    async def _state_summary(self, part: Part, probe: ApiResult) -> None:
        summary = parse_result(parse_state_summary, probe)
        part.out.info(SERVICE_INFO, mode=RTFS)
        summary_families(summary, part.out)

    async def _state_list(self, part: Part) -> list[Member]:
        members = [m for m in parse_result(parse_state_list, await part.get()) if self.target.repos.allows(m.repo)]
        member_families(members, part.out)
        return members

    async def _connections(self, run: Run, repos: list[str] | None, members: list[Member] | None) -> None:
        if repos is None:
            run.skip(CONNECTION_STATES, needs=REPOSITORIES)
        elif members is None:
            run.skip(CONNECTION_STATES, needs=STATE_LIST)
        else:
            await run.part(CONNECTION_STATES, self._connection_states, repos, members)

    async def _connection_states(self, part: Part, repos: list[str], members: list[Member]) -> None:
        """Lags and queues of the repositories whose members changed state or are in lag, and a share of the sweep.

        stateList, read every run, already says which member is in lag and which is unhealthy: the lag itself
        is a detail, read where a member's state changed, again every ``lag_interval`` while it stays in lag,
        and in the sweep.
        """
        states: dict[str, set[tuple[str, str | None, bool | None]]] = {}
        for member in members:
            states.setdefault(member.repo, set()).add((_url_key(member.remote_url), member.state, member.in_lag))
        lagging = {m.repo for m in members if m.in_lag}
        held = self._lags

        def wanted(repo: str) -> bool:
            if frozenset(states.get(repo, ())) != self._states_read.get(repo):
                return True
            return repo in lagging and held.waited(repo, part.now, self.interval, self.settings.lag_interval)

        due = held.plan(repos, part.now, self.interval, self.settings.full_sweep, wanted)
        results = await part.get_each(due, _repo_path)
        others: dict[str, set[str]] = {}
        for member in members:
            others.setdefault(member.repo, set()).add(_url_key(member.remote_url))
        read = {}
        for repo, result in results.items():
            connections = parse_result(parse_connection_states, result)
            read[repo] = [conn.lag for conn in outgoing_connections(repo, connections, others.get(repo, set()))]
        held.update(read, part.now)
        held.drop(repo for repo in due if repo not in results)
        for repo in read:
            self._states_read[repo] = frozenset(states.get(repo, ()))
        for repo in set(self._states_read) - set(held.values()):
            del self._states_read[repo]
        lag_families((lag for repo in repos for lag in held.values().get(repo, ())), part.out)
        part.oldest_read = held.oldest()

    # -- legacy --------------------------------------------------------------------------------
    async def _collect_legacy(self, run: Run, probe: ApiResult) -> None:
        repos = await run.part(REPOSITORIES, self._repositories)
        await asyncio.gather(self._shared_parts(run, repos), self._legacy_service_parts(run, probe, repos))

    async def _legacy_service_parts(self, run: Run, probe: ApiResult, repos: list[str] | None) -> None:
        """The optional per-repository status first: it fills gaps in the lags and refines member states."""
        statuses: dict[str, LegacyRepoStatus] | None = None
        if self.settings.legacy_repo_status:
            if repos is None:
                run.skip(self._legacy_status_endpoint, needs=REPOSITORIES)
            else:
                statuses = await run.part(self._legacy_status_endpoint, self._legacy_statuses, repos)
        lags = await run.part(MIRRORS_LAG, self._mirrors_lag, probe, statuses or {})
        if lags is None:
            run.skip(FEDERATION_STATE, needs=MIRRORS_LAG)
        else:
            await run.part(FEDERATION_STATE, self._legacy_members, lags, statuses or {})

    async def _mirrors_lag(self, part: Part, probe: ApiResult, statuses: Mapping[str, LegacyRepoStatus]) -> list[Lag]:
        # The only part that reports lags in this mode, so a failing status part can never leave a second series.
        lags = parse_result(parse_mirrors_lag, probe)
        part.out.info(SERVICE_INFO, mode=LEGACY)
        lag_families((lag for lag in legacy_lags(lags, statuses) if self.target.repos.allows(lag.repo)), part.out)
        return lags

    async def _legacy_members(self, part: Part, lags: list[Lag], statuses: Mapping[str, LegacyRepoStatus]) -> None:
        """Member states from federation/state, unavailableMirrors and mirrorsLag (and the per-repo status)."""
        state_result, unavailable_result = await asyncio.gather(part.get(), part.get(UNAVAILABLE_MIRRORS))
        unavailable = parse_result(parse_unavailable_mirrors, unavailable_result)
        # Older versions lack federation/state: then the mirrors known from the other two are all there is.
        states = [] if state_result.unsupported else parse_result(parse_federation_state, state_result)
        members = with_repo_statuses(legacy_members(states, unavailable, lags), statuses)
        member_families((m for m in members if self.target.repos.allows(m.repo)), part.out)

    async def _legacy_statuses(self, part: Part, repos: list[str]) -> dict[str, LegacyRepoStatus]:
        results = await part.get_each(repos, _repo_path, endpoint=self._legacy_status_endpoint)
        if repos and not results and self._legacy_status_endpoint == LEGACY_REPO_STATUS_V2:
            # Before the v2 endpoint existed, v1 answers (with SYNC and OUT_OF_SYNC only).
            results = await part.get_each(repos, _repo_path, endpoint=LEGACY_REPO_STATUS_V1)
            if results:
                self._legacy_status_endpoint = LEGACY_REPO_STATUS_V1
        statuses = {repo: parse_result(parse_legacy_repo_status, result) for repo, result in results.items()}
        lag_families(legacy_queues(statuses), part.out)
        return statuses

    # -- both services -------------------------------------------------------------------------
    async def _repositories(self, part: Part) -> list[str]:
        keys = parse_result(parse_repository_keys, await part.get(params={"type": "federated"}))
        return [key for key in keys if self.target.repos.allows(key)]

    async def _shared_parts(self, run: Run, repos: list[str] | None) -> None:
        if repos is None:
            run.skip(INCONSISTENT, needs=REPOSITORIES)
            run.skip(FAILED_TASKS, needs=REPOSITORIES)
            return
        await asyncio.gather(run.part(INCONSISTENT, self._inconsistent, repos),
                             run.part(FAILED_TASKS, self._failed_tasks, repos))

    async def _inconsistent(self, part: Part, repos: list[str]) -> None:
        # Touched first: a JPD before 7.108.3 lacks the endpoint, and the families still show what they mean.
        part.out.touch(INCONSISTENT_REPOS, REPO_INCONSISTENT)
        listed = parse_result(parse_inconsistent_repos, await part.get())
        inconsistent_families([r for r in listed if self.target.repos.allows(r)], repos, part.out)

    async def _failed_tasks(self, part: Part, repos: list[str]) -> None:
        # Counted per repository in the sweep: the count changes slowly and each list is a query of its own.
        held = self._failed
        due = held.plan(repos, part.now, self.interval, self.settings.full_sweep)
        counted = await part.each(due, functools.partial(self._count_failed_tasks, part))
        failures = [(f"{part.endpoint} for {repo}", c.outcome, c.reason.removeprefix(f"{part.endpoint}: "))
                    for repo, c in zip(due, counted, strict=True) if isinstance(c, CollectionError)]
        held.update({repo: c for repo, c in zip(due, counted, strict=True) if isinstance(c, FailedTasks)}, part.now)
        error = combine(failures, len(due))
        if error is not None:
            raise error
        tasks = {repo: held.values()[repo] for repo in repos if repo in held.values()}
        failed_tasks_families(tasks, part.out)
        part.oldest_read = held.oldest()
        truncated = frozenset(repo for repo, c in tasks.items() if c.truncated)
        if truncated - self._truncated:
            names = sorted(truncated)
            log.warning("failed binary tasks counted only up to %d pages for %s",
                        self.settings.failed_tasks_max_pages,
                        ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
        self._truncated = truncated

    async def _count_failed_tasks(self, part: Part, repo: str) -> FailedTasks | CollectionError:
        """Count across pages, up to the configured number of pages; a failure is returned, to be combined."""
        size = self.settings.failed_tasks_page_size
        total = 0
        first_of_first: tuple[str, str] | None = None
        for page in range(1, self.settings.failed_tasks_max_pages + 1):
            result = await part.get(params={"repoKey": repo, "limit": size, "page": page})
            if result.unsupported:
                # Before 7.68.11, or the repository went away: nothing to count.
                return FailedTasks(None if page == 1 else total)
            try:
                count, first = parse_result(parse_failed_tasks_page, result)
            except CollectionError as exc:
                return exc
            if page == 1:
                first_of_first = first
            elif first is not None and first == first_of_first:
                # The server ignores the page parameter: the first page is all that can be counted.
                return FailedTasks(total, truncated=True)
            total += count
            if count < size:
                return FailedTasks(total)
        return FailedTasks(total, truncated=True)


async def _neither_service(part: Part) -> None:
    raise CollectionError(Outcome.UNSUPPORTED, "neither the Federation service (RTFS) nor the legacy federation "
                                               "endpoints answer on this JPD")


# -- families ----------------------------------------------------------------------------------


def summary_families(summary: Mapping[str, float], out: Emitter) -> None:
    """Every documented state (0 when absent), then any other the JPD reports."""
    for state in (*SUMMARY_STATES, *sorted(set(summary) - set(SUMMARY_STATES))):
        out.gauge(FEDERATIONS, summary.get(state, 0.0), state=state)


def member_families(members: Iterable[Member], out: Emitter) -> None:
    """One state set per member; the first report of a member wins."""
    out.touch(MEMBER_STATUS, MEMBER_IN_LAG)
    seen: set[tuple[str, str, str]] = set()
    for member in members:
        if member.key in seen:
            continue
        seen.add(member.key)
        labels = {"repo": member.repo, "remote_repo": member.remote_repo, "remote_url": member.remote_url}
        out.state(MEMBER_STATUS, member.state, **labels)
        if member.in_lag is not None:
            out.gauge(MEMBER_IN_LAG, member.in_lag, **labels)


def lag_families(lags: Iterable[Lag], out: Emitter) -> None:
    """Lag and queued events per member; the last report of a member wins."""
    out.touch(LAG, QUEUED)
    for lag in {lag.key: lag for lag in lags}.values():
        labels = {"repo": lag.repo, "remote_repo": lag.remote_repo, "remote_url": lag.remote_url}
        out.gauge(LAG, lag.lag_seconds, **labels)
        out.gauge(QUEUED, lag.queued_events, **labels)


def inconsistent_families(listed: list[str], repos: list[str], out: Emitter) -> None:
    """The count, and 1 or 0 for every federated repository (and any listed one the list of them missed)."""
    out.touch(INCONSISTENT_REPOS, REPO_INCONSISTENT)
    out.gauge(INCONSISTENT_REPOS, len(set(listed)))
    for repo in dict.fromkeys([*repos, *listed]):
        out.gauge(REPO_INCONSISTENT, repo in listed, repo=repo)


def failed_tasks_families(tasks: Mapping[str, FailedTasks], out: Emitter) -> None:
    out.touch(FAILED_BINARY_TASKS, TRUNCATED_REPOS)
    for repo, counted in tasks.items():
        out.gauge(FAILED_BINARY_TASKS, counted.count, repo=repo)
    if tasks:
        out.gauge(TRUNCATED_REPOS, sum(1 for counted in tasks.values() if counted.truncated))


# -- parsers -----------------------------------------------------------------------------------

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

_RTFS_REFUSAL = re.compile(r"\bRTFS\s+is\s+enabled\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Detection:
    """Which service to collect from; ``confirmed`` when its probe answered, else the probe is a failure."""

    #: None: neither service is on this JPD
    mode: str | None
    probe: ApiResult
    confirmed: bool


@dataclass(frozen=True, slots=True)
class FailedTasks:
    """Failed binary tasks of one repository; None where the JPD has no list to count."""

    count: int | None = None
    #: counted only up to the page bound (or the JPD ignores paging): a lower bound
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Member:
    """One remote member of a repository Federation, as seen from a local repository."""

    repo: str
    remote_repo: str
    remote_url: str
    state: str | None
    in_lag: bool | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return _member_key(self.repo, self.remote_repo, self.remote_url)


@dataclass(frozen=True, slots=True)
class Lag:
    """Lag and queued events towards one member; None where the endpoint has no value."""

    repo: str
    remote_repo: str
    remote_url: str
    lag_seconds: float | None
    queued_events: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return _member_key(self.repo, self.remote_repo, self.remote_url)


@dataclass(frozen=True, slots=True)
class Connection:
    local_repo: str
    local_url: str
    remote_repo: str
    remote_url: str
    state: str | None
    lag_seconds: float | None
    queued_events: float | None

    @property
    def lag(self) -> Lag:
        return Lag(self.local_repo, self.remote_repo, self.remote_url, self.lag_seconds, self.queued_events)


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


def probe_verdict(mode: str, result: ApiResult) -> bool | None:
    """Whether the probe of ``mode`` says that service is active; None when its answer cannot tell."""
    if result.ok:
        return True
    if result.unsupported:
        # A legacy-only JPD lacks the RTFS endpoints, and a JPD without federation both.
        return False
    # Only the legacy endpoints refuse, naming RTFS; such an answer cannot come from the RTFS ones.
    return False if mode == LEGACY and is_rtfs_refusal(result) else None


def _seconds(ms: object) -> float | None:
    value = parse_count(ms)
    return None if value is None else value / 1000.0


def _url_key(url: str) -> str:
    return safe_url(url).lower()


def _member_key(repo: str, remote_repo: str, remote_url: str) -> tuple[str, str, str]:
    return repo, remote_repo, _url_key(remote_url)


def _list(body: object, what: str) -> list[Any]:
    if not isinstance(body, list):
        raise UnexpectedShape(what, "a JSON array", body)
    return body


def _objects(items: list[Any], what: str) -> list[dict[str, Any]]:
    for item in items:
        if not isinstance(item, dict):
            raise UnexpectedShape(what, "JSON objects", item)
    return items


def parse_state_summary(body: object) -> dict[str, float]:
    """RTFS stateSummary: federations per state."""
    if not isinstance(body, dict) or not isinstance(body.get("federationStates"), dict):
        raise UnexpectedShape("stateSummary", "an object with federationStates", body)
    out: dict[str, float] = {}
    for state, count in body["federationStates"].items():
        value = parse_count(count)
        if value is not None:
            out[str(state).upper()] = value
    return out


def parse_state_list(body: object) -> list[Member]:
    """RTFS stateList: every other member of each Federation, with its aggregated status."""
    if not isinstance(body, dict) or not isinstance(body.get("federations"), list):
        raise UnexpectedShape("stateList", "an object with federations", body)
    members = []
    for federation in _objects(body["federations"], "stateList federations"):
        repo = scalar_text(federation.get("localRepoKey"))
        for info in _objects(_list(federation.get("memberInfoList") or [], "memberInfoList"), "memberInfoList"):
            raw = info.get("aggregatedStatus")
            if not raw and info.get("disabled") is True:
                raw = "DISABLED"
            in_lag = info.get("inLag")
            members.append(Member(repo, scalar_text(info.get("repoKey")), safe_url(info.get("url")),
                                  member_state(raw), in_lag if isinstance(in_lag, bool) else None))
    return members


def parse_connection_states(body: object) -> list[Connection]:
    """RTFS connectionStates/{repo}: every connection of the Federation, in both directions."""
    if not isinstance(body, dict) or not isinstance(body.get("memberConnections"), list):
        raise UnexpectedShape("connectionStates", "an object with memberConnections", body)
    return [
        Connection(
            local_repo=scalar_text(c.get("localRepoKey")),
            local_url=safe_url(c.get("localPlatformUrl")),
            remote_repo=scalar_text(c.get("remoteRepoKey")),
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


def parse_mirrors_lag(body: object) -> list[Lag]:
    """Legacy mirrorsLag (lagInMS); it has no queued events."""
    return [
        Lag(scalar_text(e.get("localRepoKey")), scalar_text(e.get("remoteRepoKey")), safe_url(e.get("remoteUrl")),
            _seconds(e.get("lagInMS", e.get("lagInMs"))))
        for e in _objects(_list(body, "mirrorsLag"), "mirrorsLag")
    ]


def parse_unavailable_mirrors(body: object) -> list[Member]:
    """Legacy unavailableMirrors: every mirror not in SYNC, with its status."""
    return [
        Member(scalar_text(e.get("localRepoKey")), scalar_text(e.get("remoteRepoKey")), safe_url(e.get("remoteUrl")),
               member_state(e.get("status")))
        for e in _objects(listed(body, "unavailableMirrors", "unavailableMirrors"), "unavailableMirrors")
    ]


_MEMBERS = "federation state: members"


def parse_federation_state(body: object) -> list[LegacyFederation]:
    """Legacy federation/state: the sync state of each Federation and its members."""
    out = []
    for entry in _objects(_list(body, "federation state"), "federation state"):
        members = [
            (scalar_text(m.get("remoteRepoKey")), safe_url(m.get("remoteUrl")))
            for m in _objects(_list(entry.get("members") or [], _MEMBERS), _MEMBERS)
        ]
        out.append(LegacyFederation(scalar_text(entry.get("localRepoKey")), member_state(entry.get("status")), members))
    return out


def parse_legacy_repo_status(body: object) -> LegacyRepoStatus:
    """Legacy status/repo/{repo}, v1 (SYNC, OUT_OF_SYNC) or v2 (HEALTHY, PENDING_FS, FS_RUNNING, ...)."""
    if not isinstance(body, dict):
        raise UnexpectedShape("federated repository status", "a JSON object", body)
    tasks = body.get("binariesTasksInfo")
    failing = parse_count(tasks.get("failingTasks")) if isinstance(tasks, dict) else None
    mirrors = []
    for m in _objects(_list(body.get("mirrorEventsStatusInfo") or [], "mirrorEventsStatusInfo"),
                      "mirrorEventsStatusInfo"):
        counts = [parse_count(m.get(k)) for k in ("createEvents", "updateEvents", "deleteEvents", "propsEvents")]
        queued = sum(c for c in counts if c is not None) if any(c is not None for c in counts) else None
        mirrors.append(LegacyMirror(scalar_text(m.get("remoteRepoKey")), safe_url(m.get("remoteUrl")),
                                    member_state(m.get("status")), queued, _seconds(m.get("lagInMS"))))
    return LegacyRepoStatus(scalar_text(body.get("localKey") or body.get("localRepoKey")), failing, mirrors)


def parse_inconsistent_repos(body: object) -> list[str]:
    """Repository keys; an entry that names none (null, an object) is not a repository."""
    return [key for key in map(scalar_text, _list(body, "inconsistentRepos")) if key]


def parse_repository_keys(body: object, repo_type: str = "federated") -> list[str]:
    """Keys from GET /api/repositories?type=...; entries of another type (if the filter is ignored) are left out."""
    keys = []
    for entry in _objects(_list(body, "repositories"), "repositories"):
        kind = entry.get("type")
        if isinstance(kind, str) and kind.strip().lower() != repo_type:
            continue
        key = scalar_text(entry.get("key"))
        if key:
            keys.append(key)
    return keys


def parse_failed_tasks_page(body: object) -> tuple[int, tuple[str, str] | None]:
    """The number of failed binary tasks on one page, and the identity of its first task."""
    tasks = _objects(_list(body, "failed binary tasks"), "failed binary tasks")
    first = (scalar_text(tasks[0].get("sha1")), scalar_text(tasks[0].get("creationTime"))) if tasks else None
    return len(tasks), first


def legacy_members(states: list[LegacyFederation], unavailable: list[Member], lags: list[Lag]) -> list[Member]:
    """Member states from the legacy endpoints.

    unavailableMirrors lists every mirror not in SYNC with its own status; any
    other known mirror is in sync unless its whole Federation is disabled or
    running a full sync (federation/state).
    """
    members: dict[tuple[str, str, str], Member] = {}

    def put(member: Member) -> None:
        members[member.key] = member

    for fed in states:
        base = fed.state if fed.state in ("disabled", "full_sync_running") else "healthy"
        for remote_repo, remote_url in fed.members:
            put(Member(fed.repo, remote_repo, remote_url, base))
    for lag in lags:
        if lag.key not in members:
            put(Member(lag.repo, lag.remote_repo, lag.remote_url, "healthy"))
    for mirror in unavailable:
        put(mirror)
    return list(members.values())


def with_repo_statuses(members: list[Member], statuses: Mapping[str, LegacyRepoStatus]) -> list[Member]:
    """The per-repository status, where it was read, has the last word on its mirrors' states."""
    by_key = {m.key: m for m in members}
    for repo, status in statuses.items():
        for mirror in status.mirrors:
            member = Member(repo, mirror.remote_repo, mirror.remote_url, mirror.state)
            by_key[member.key] = member
    return list(by_key.values())


def legacy_lags(reported: list[Lag], statuses: Mapping[str, LegacyRepoStatus]) -> list[Lag]:
    """mirrorsLag's lags, and the per-repository status's where mirrorsLag has none."""
    by_key = {lag.key: lag for lag in reported}
    for repo, status in statuses.items():
        for mirror in status.mirrors:
            lag = Lag(repo, mirror.remote_repo, mirror.remote_url, mirror.lag_seconds)
            known = by_key.get(lag.key)
            if known is None or known.lag_seconds is None:
                by_key[lag.key] = lag
    return list(by_key.values())


def legacy_queues(statuses: Mapping[str, LegacyRepoStatus]) -> list[Lag]:
    """Queued events of every mirror, from the per-repository status (their only source in legacy mode)."""
    return [Lag(repo, m.remote_repo, m.remote_url, None, m.queued_events)
            for repo, status in statuses.items() for m in status.mirrors]
