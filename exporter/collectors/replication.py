"""Collector `replication`: configured replications, their status and the global block switches.

Replication configurations carry the username and password used to reach the
other side. Only the repository key, the target URL (without user-info,
query or fragment) and the flags are ever read from them, so no credential
can reach a label, a log line or the landing page.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from exporter import cron
from exporter.client import ApiResult
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.collectors.refresh import Refresh
from exporter.families import Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.validation import Interval
from exporter.values import UnexpectedShape, parse_iso_timestamp, safe_url, scalar_text

log = logging.getLogger(__name__)

F = Declarations("replication")
ALL_CONFIGS = F.endpoint("/artifactory/api/replications", Permission.ADMIN)
REPO_CONFIG = F.endpoint("/artifactory/api/replications/{repo}", Permission.ADMIN)
REPO_STATUS = F.endpoint("/artifactory/api/replication/{repo}", Permission.READ)
SYSTEM = F.endpoint("/artifactory/api/system/replications", Permission.ADMIN)

#: jfrog_replication_status / jfrog_replication_target_status, as the metric contract lists them
STATES = ("never_run", "incomplete", "error", "warn", "ok", "inconsistent")

PRO_NEEDED = "replication needs Artifactory Pro"

BLOCKED = F.gauge("jfrog_replication_blocked",
                  "1 if the JPD blocks all replications in this direction (push, pull).", "direction")
_CONFIG = ("repo", "remote_url")
ENABLED = F.gauge("jfrog_replication_enabled",
                  "1 if this replication configuration is enabled (polled in the background).", *_CONFIG)
EVENT_BASED = F.gauge("jfrog_replication_event_based",
                      "1 if this replication configuration replicates on events, not only on cron.", *_CONFIG)
TARGETS = F.gauge("jfrog_replication_targets",
                  "Replication configurations of a repository (several for multi-push).", "repo")
STATUS = F.state_set("jfrog_replication_status", "Replication status of a repository, as a state set.", STATES,
                     "repo")
LAST_COMPLETED = F.gauge("jfrog_replication_last_completed_timestamp_seconds",
                         "When the repository's replication last completed (absent if it never did).", "repo")
# Older answers name a target by its remote repository alone (no URL): the local repository identifies.
_TARGET = ("repo", "remote_url", "remote_repo")
TARGET_STATUS = F.state_set("jfrog_replication_target_status",
                            "Replication status per target (multi-push), as a state set.", STATES, *_TARGET)
TARGET_LAST_COMPLETED = F.gauge("jfrog_replication_target_last_completed_timestamp_seconds",
                                "When replication to this target last completed (absent if it never did).",
                                *_TARGET)

#: the configurations of each watched repository, by repository key
ByRepo = dict[str, list["ReplicationConfig"]]


#: a status read this soon after its cron fired may predate the replication's start: read it again
SETTLE = 60.0


class ReplicationSettings(CollectorSettings):
    #: query these repositories instead of discovering every configured replication
    repos: list[str] = Field(default_factory=list)
    #: every status is read at least this often, whatever its schedule (a replication run by hand shows then)
    full_sweep: Interval = 3600.0
    #: the JPD server's time zone, in which its cron expressions fire
    cron_timezone: str = "UTC"

    @field_validator("cron_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a known time zone (IANA name, e.g. Europe/Berlin)") from None
        return value


class ReplicationCollector(Collector[ReplicationSettings]):
    name = "replication"
    default_interval = 120.0
    description = "replication configurations, status per repository and target, push/pull blocking"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned: set[str] = set()
        self._held: Refresh[str, ReplicationStatus] = Refresh()
        self._zone = ZoneInfo(self.settings.cron_timezone)
        self._unreadable_crons: set[str] = set()

    async def collect(self, run: Run) -> None:
        await asyncio.gather(run.part(SYSTEM, self._system), self._configs_and_status(run))

    async def _configs_and_status(self, run: Run) -> None:
        # The status part reads the repositories the configurations name, and fills in target URLs from them.
        source = REPO_CONFIG if self.settings.repos else ALL_CONFIGS
        by_repo = await run.part(source, self._configs)
        if by_repo is None:
            run.skip(REPO_STATUS, needs=source)
            return
        await run.part(REPO_STATUS, self._statuses, by_repo)

    @staticmethod
    async def _system(part: Part) -> None:
        push, pull = parse_result(parse_system_replications, _checked(await part.get()))
        blocked_families(push, pull, part.out)

    async def _configs(self, part: Part) -> ByRepo:
        """Every watched replication configuration, grouped by repository (the target's filters applied)."""
        if self.settings.repos:
            configs = await self._listed_configs(part)
        else:
            configs = parse_result(parse_replication_configs, _checked(await part.get()))
        by_repo: ByRepo = {}
        for config in configs:
            if self.target.repos.allows(config.repo):
                by_repo.setdefault(config.repo, []).append(config)
        by_repo = {repo: by_repo[repo] for repo in sorted(by_repo)}
        config_families(by_repo, part.out)
        return by_repo

    async def _listed_configs(self, part: Part) -> list[ReplicationConfig]:
        # The target's filters apply before any per-repository call.
        repos = [repo for repo in dict.fromkeys(self.settings.repos) if self.target.repos.allows(repo)]
        results = await part.get_each(repos, path=lambda repo: {"repo": repo})
        for repo in repos:
            if repo not in results and repo not in self._warned:
                self._warned.add(repo)
                log.warning("repository %r listed in collectors.replication.repos has no "
                            "replication configuration", repo)
        if repos and not results:
            # Also what an edition without replication answers: nothing to report, not a failure.
            raise CollectionError(Outcome.UNSUPPORTED, f"{part.endpoint}: no listed repository has a replication "
                                  f"configuration (an edition without replication answers so too: {PRO_NEEDED})")
        configs: list[ReplicationConfig] = []
        for repo, result in results.items():
            configs.extend(parse_result(partial(parse_replication_configs, repo=repo), result))
        return configs

    async def _statuses(self, part: Part, by_repo: ByRepo) -> None:
        """Read the statuses that may have changed (see :meth:`_may_have_changed`) and a share of the sweep."""
        held = self._held
        due = held.plan(by_repo, part.now, self.interval, self.settings.full_sweep,
                        wanted=self._may_have_changed(by_repo, part.now))
        # A repository gone since its configuration was read answers 404: it is left out.
        results = await part.get_each(due, path=lambda repo: {"repo": repo})
        held.update({repo: parse_result(parse_replication_status, result) for repo, result in results.items()},
                    part.now)
        held.drop(repo for repo in due if repo not in results)
        status_families(by_repo, held.values(), part.out)
        part.oldest_read = held.oldest()

    def _may_have_changed(self, by_repo: ByRepo, now: float) -> set[str]:
        """Repositories whose status may differ from the one held.

        A scheduled replication changes its status only when its cron fires (or someone runs it by hand: the
        sweep). So: after each fire; again while it shows "incomplete" (running), backing off as it goes on;
        and always where it is event-based or its schedule cannot be read.
        """
        fired: dict[str, float | None] = {}
        wanted: set[str] = set()
        moment = datetime.fromtimestamp(now, self._zone)
        for repo, configs in by_repo.items():
            if all(c.enabled is False for c in configs):
                continue  # a disabled replication does not run: the sweep reads it
            if any(c.event_based for c in configs):
                wanted.add(repo)
                continue
            fires = []
            for config in configs:
                if config.cron not in fired:
                    fired[config.cron] = self._last_fire(config.cron, moment)
                fires.append(fired[config.cron])
            if any(f is None for f in fires):
                wanted.add(repo)
                continue
            last_fire = max(f for f in fires if f is not None)
            read_at = self._held.read_at(repo)
            if read_at is None or read_at < last_fire + SETTLE:
                wanted.add(repo)
            elif _running(self._held.values().get(repo)) and \
                    self._held.waited(repo, now, self.interval, max(self.interval, read_at - last_fire)):
                wanted.add(repo)  # the gap doubles: a long replication costs a read per doubling of its time
        return wanted

    def _last_fire(self, expression: str, moment: datetime) -> float | None:
        schedule = cron.parse(expression) if expression else None
        if schedule is None:
            if expression not in self._unreadable_crons:
                self._unreadable_crons.add(expression)
                log.info("cron expression %r cannot be read: its replications are read every run",
                         expression)
            return None
        fired = schedule.last_fire(moment)
        return fired.timestamp() if fired is not None else 0.0


def _running(status: ReplicationStatus | None) -> bool:
    """"incomplete": running, or interrupted (the documents' meaning)."""
    return status is not None and (status.status == "incomplete" or
                                   any(t.status == "incomplete" for t in status.targets))


def _checked(result: ApiResult) -> ApiResult:
    """The result of a call whose failure fails the part; a refusal as unsupported names the edition.
    (A 403's reason already names the permission the endpoint needs: the client adds it.)"""
    if result.unsupported:
        raise CollectionError(Outcome.UNSUPPORTED, f"{result.endpoint}: {result.reason} ({PRO_NEEDED})")
    return result


def _bool(value: bool | None) -> float | None:
    return None if value is None else 1.0 if value else 0.0


def blocked_families(push: bool | None, pull: bool | None, out: Emitter) -> None:
    out.gauge(BLOCKED, _bool(push), direction="push")
    out.gauge(BLOCKED, _bool(pull), direction="pull")


def config_families(by_repo: ByRepo, out: Emitter) -> None:
    """How many configurations each repository has; enabled and event-based once per target URL."""
    out.touch(TARGETS, ENABLED, EVENT_BASED)
    for repo, configs in by_repo.items():
        out.gauge(TARGETS, len(configs), repo=repo)
        seen: set[str] = set()
        for config in configs:
            if config.remote_url in seen:
                continue
            seen.add(config.remote_url)
            out.gauge(ENABLED, _bool(config.enabled), repo=repo, remote_url=config.remote_url)
            out.gauge(EVENT_BASED, _bool(config.event_based), repo=repo, remote_url=config.remote_url)


def status_families(by_repo: ByRepo, statuses: dict[str, ReplicationStatus], out: Emitter) -> None:
    """Each repository's status and its targets'; targets without a URL take it from the configuration."""
    out.touch(STATUS, LAST_COMPLETED, TARGET_STATUS, TARGET_LAST_COMPLETED)
    for repo, configs in by_repo.items():
        status = statuses.get(repo)
        if status is None:
            continue
        out.state(STATUS, status.status, repo=repo)
        out.gauge(LAST_COMPLETED, status.last_completed, repo=repo)
        seen: set[tuple[str, str]] = set()
        for target in status.targets:
            remote_url = target.remote_url or _url_for_remote_repo(configs, target.remote_repo)
            if (remote_url, target.remote_repo) in seen:
                continue
            seen.add((remote_url, target.remote_repo))
            labels = {"repo": repo, "remote_url": remote_url, "remote_repo": target.remote_repo}
            out.state(TARGET_STATUS, target.status, **labels)
            out.gauge(TARGET_LAST_COMPLETED, target.last_completed, **labels)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicationConfig:
    repo: str
    remote_url: str
    enabled: bool | None
    event_based: bool | None
    #: the Quartz cron expression (empty when the answer carries none)
    cron: str = ""


@dataclass(frozen=True, slots=True)
class TargetStatus:
    remote_url: str
    remote_repo: str
    status: str | None
    last_completed: float | None


@dataclass(slots=True)
class ReplicationStatus:
    status: str | None
    last_completed: float | None
    targets: list[TargetStatus] = field(default_factory=list)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _status(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip().lower()


def _config_entries(body: object) -> list[dict[str, Any]]:
    # One object, a multi-push array, or the list of every config (which may nest arrays). A stack, not
    # recursion: nesting is the JPD's to choose.
    entries: list[dict[str, Any]] = []
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            entries.append(item)
        elif isinstance(item, list):
            stack.extend(reversed(item))
        else:
            raise UnexpectedShape("replication configuration", "a JSON object or array", item)
    return entries


def parse_replication_configs(body: object, repo: str | None = None) -> list[ReplicationConfig]:
    """Every configuration in a single-object, array or list-of-all answer.

    ``repo`` is the repository asked for, used where an entry omits its
    repoKey. Credentials in the entries are never read.
    """
    configs = []
    for entry in _config_entries(body):
        key = entry.get("repoKey") or repo
        if not isinstance(key, str) or not key:
            raise UnexpectedShape("replication configuration", "a repoKey", key)
        configs.append(
            ReplicationConfig(
                repo=key,
                remote_url=safe_url(entry.get("url")),
                enabled=_flag(entry.get("enabled")),
                event_based=_flag(entry.get("enableEventReplication")),
                cron=entry["cronExp"].strip() if isinstance(entry.get("cronExp"), str) else "",
            )
        )
    return configs


def parse_replication_status(body: object) -> ReplicationStatus:
    """GET /api/replication/{repo}: the repository's status and one entry per (multi-push) target.

    Older answers carry the targets only in ``repositories`` (keyed by the
    remote repository); those targets get an empty URL, filled in by the
    caller from the configuration when it can.
    """
    if not isinstance(body, dict):
        raise UnexpectedShape("replication status", "a JSON object", body)
    status = ReplicationStatus(_status(body.get("status")), parse_iso_timestamp(body.get("lastCompleted")))
    targets = body.get("targets")
    if isinstance(targets, list) and targets:
        for entry in targets:
            if not isinstance(entry, dict):
                raise UnexpectedShape("replication status: targets", "JSON objects", entry)
            status.targets.append(
                TargetStatus(
                    remote_url=safe_url(entry.get("url")),
                    remote_repo=scalar_text(entry.get("repoKey")),
                    status=_status(entry.get("status")),
                    last_completed=parse_iso_timestamp(entry.get("lastCompleted")),
                )
            )
    else:
        repositories = body.get("repositories")
        if isinstance(repositories, dict):
            for remote_repo, entry in repositories.items():
                if isinstance(entry, dict):
                    status.targets.append(
                        TargetStatus("", str(remote_repo), _status(entry.get("status")),
                                     parse_iso_timestamp(entry.get("lastCompleted")))
                    )
    return status


def parse_system_replications(body: object) -> tuple[bool | None, bool | None]:
    """(push blocked, pull blocked) from GET /api/system/replications."""
    if not isinstance(body, dict):
        raise UnexpectedShape("system replications", "a JSON object", body)
    return _flag(body.get("blockPushReplications")), _flag(body.get("blockPullReplications"))


def _url_for_remote_repo(configs: list[ReplicationConfig], remote_repo: str) -> str:
    """The configured URL that ends in the remote repository's key, if exactly one does."""
    matches = {c.remote_url for c in configs if c.remote_url.rsplit("/", 1)[-1] == remote_repo}
    return matches.pop() if len(matches) == 1 else ""
