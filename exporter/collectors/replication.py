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
from functools import partial
from typing import Any

from pydantic import Field

from exporter.client import ApiResult
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome
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


class ReplicationSettings(CollectorSettings):
    #: query these repositories instead of discovering every configured replication
    repos: list[str] = Field(default_factory=list)


class ReplicationCollector(Collector[ReplicationSettings]):
    name = "replication"
    default_interval = 120.0
    description = "replication configurations, status per repository and target, push/pull blocking"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned: set[str] = set()

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

    @staticmethod
    async def _statuses(part: Part, by_repo: ByRepo) -> None:
        # A repository gone since its configuration was read answers 404: it is left out.
        results = await part.get_each(list(by_repo), path=lambda repo: {"repo": repo})
        statuses = {repo: parse_result(parse_replication_status, result) for repo, result in results.items()}
        status_families(by_repo, statuses, part.out)


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
