"""Collector `replication`: configured replications, their status and the global block switches.

Replication configurations carry the username and password used to reach the
other side. Only the repository key, the target URL (without user-info,
query or fragment) and the flags are ever read from them, so no credential
can reach a label, a log line or the landing page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

from prometheus_client.core import Metric
from pydantic import Field

from exporter.client import ApiResult, CollectionError, JfrogClient, Outcome
from exporter.collectors.base import Collector, CollectorSettings, parse_result, run_bounded
from exporter.metrics import MetricSet
from exporter.values import parse_iso_timestamp, safe_url

log = logging.getLogger(__name__)

ALL_CONFIGS = "/artifactory/api/replications"
REPO_CONFIG = "/artifactory/api/replications/{repo}"
REPO_STATUS = "/artifactory/api/replication/{repo}"
SYSTEM = "/artifactory/api/system/replications"

#: jfrog_replication_status / jfrog_replication_target_status, as the metric contract lists them
STATES = ("never_run", "incomplete", "error", "warn", "ok", "inconsistent")

ADMIN_NEEDED = "requires an admin user (Artifactory answers 403 to other users)"

# Everything between "scheme://" and the last "@" of the authority is user-info.




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


def _config_entries(body: object) -> Iterator[dict[str, Any]]:
    # One object, a multi-push array, or the list of every config (which may nest arrays).
    if isinstance(body, dict):
        yield body
    elif isinstance(body, list):
        for item in body:
            yield from _config_entries(item)
    else:
        raise ValueError("replication configuration: expected a JSON object or array")


def parse_replication_configs(body: object, repo: str | None = None) -> list[ReplicationConfig]:
    """Every configuration in a single-object, array or list-of-all answer.

    ``repo`` is the repository asked for, used where an entry omits its
    repoKey. Credentials in the entries are never read.
    """
    configs = []
    for entry in _config_entries(body):
        key = entry.get("repoKey") or repo
        if not isinstance(key, str) or not key:
            raise ValueError("replication configuration without repoKey")
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
        raise ValueError("replication status: expected a JSON object")
    status = ReplicationStatus(_status(body.get("status")), parse_iso_timestamp(body.get("lastCompleted")))
    targets = body.get("targets")
    if isinstance(targets, list) and targets:
        for entry in targets:
            if not isinstance(entry, dict):
                raise ValueError("replication status: targets must be objects")
            status.targets.append(
                TargetStatus(
                    remote_url=safe_url(entry.get("url")),
                    remote_repo=str(entry.get("repoKey") or ""),
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
        raise ValueError("system replications: expected a JSON object")
    return _flag(body.get("blockPushReplications")), _flag(body.get("blockPullReplications"))


def _url_for_remote_repo(configs: list[ReplicationConfig], remote_repo: str) -> str:
    """The configured URL that ends in the remote repository's key, if exactly one does."""
    matches = {c.remote_url for c in configs if c.remote_url.rsplit("/", 1)[-1] == remote_repo}
    return matches.pop() if len(matches) == 1 else ""


H = {
    "jfrog_replication_blocked": "1 if the JPD blocks all replications in this direction (push, pull).",
    "jfrog_replication_enabled": "1 if this replication configuration is enabled (polled in the background).",
    "jfrog_replication_event_based": "1 if this replication configuration replicates on events, not only on cron.",
    "jfrog_replication_targets": "Replication configurations of a repository (several for multi-push).",
    "jfrog_replication_status": "Replication status of a repository, as a state set.",
    "jfrog_replication_last_completed_timestamp_seconds":
        "When the repository's replication last completed (absent if it never did).",
    "jfrog_replication_target_status": "Replication status per target (multi-push), as a state set.",
    "jfrog_replication_target_last_completed_timestamp_seconds":
        "When replication to this target last completed (absent if it never did).",
}


def _failure(result: ApiResult, needs: str) -> CollectionError:
    """The run's error for a failed call; a 403 says which permission is missing."""
    if result.outcome is Outcome.FORBIDDEN:
        return CollectionError(Outcome.FORBIDDEN, f"{result.endpoint} {needs}: {result.reason}")
    return CollectionError(result.outcome, f"{result.endpoint}: {result.reason}")


class ReplicationSettings(CollectorSettings):
    #: query these repositories instead of discovering every configured replication
    repos: list[str] = Field(default_factory=list)


class ReplicationCollector(Collector):
    name = "replication"
    default_interval = 120.0
    description = "replication configurations, status per repository and target, push/pull blocking"
    settings_model = ReplicationSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned: set[str] = set()

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    async def collect(self, client: JfrogClient) -> list[Metric]:
        settings = cast(ReplicationSettings, self.settings)
        system, (configs, missing) = await asyncio.gather(client.get(SYSTEM), self._configs(client, settings.repos))
        if system.unsupported and not configs:
            raise CollectionError(Outcome.UNSUPPORTED, f"{SYSTEM}: {system.reason} (replication needs Artifactory Pro)")
        for repo in missing:
            self._warn_once(repo, "target=%s: repository %r listed in collectors.replication.repos has no "
                            "replication configuration", self.target.name, repo)
        if not (system.ok or system.unsupported):
            raise _failure(system, ADMIN_NEEDED)
        push_blocked, pull_blocked = parse_result(parse_system_replications, system) if system.ok else (None, None)

        by_repo: dict[str, list[ReplicationConfig]] = {}
        for config in configs or []:
            if self.target.repos.allows(config.repo):
                by_repo.setdefault(config.repo, []).append(config)
        repos = sorted(by_repo)
        results = await run_bounded([partial(client.get, REPO_STATUS, path={"repo": repo}) for repo in repos],
                                    self.target.max_concurrency)
        statuses: dict[str, ReplicationStatus] = {}
        failures: list[tuple[str, ApiResult]] = []
        for repo, result in zip(repos, results, strict=True):
            if result.ok:
                statuses[repo] = parse_result(parse_replication_status, result)
            elif not result.unsupported:  # 404: the repository went away since discovery
                failures.append((repo, result))
        if failures:
            repo, first = next(((r, f) for r, f in failures if f.outcome is Outcome.FORBIDDEN), failures[0])
            if first.outcome is Outcome.FORBIDDEN:
                raise CollectionError(Outcome.FORBIDDEN, f"{first.endpoint} for {repo} requires read permission "
                                      f"on the repository: {first.reason}")
            raise CollectionError(first.outcome, f"{len(failures)} of {len(repos)} replication status calls "
                                  f"failed; first: {first.endpoint} for {repo}: {first.reason}")

        metrics = MetricSet(self.target.name)
        for name, help_text in H.items():
            metrics.declare(name, help_text)
        metrics.gauge("jfrog_replication_blocked", H["jfrog_replication_blocked"], _bool(push_blocked),
                      direction="push")
        metrics.gauge("jfrog_replication_blocked", H["jfrog_replication_blocked"], _bool(pull_blocked),
                      direction="pull")
        for repo in repos:
            repo_configs = by_repo[repo]
            metrics.gauge("jfrog_replication_targets", H["jfrog_replication_targets"], len(repo_configs), repo=repo)
            seen: set[str] = set()
            for config in repo_configs:
                if config.remote_url in seen:
                    continue
                seen.add(config.remote_url)
                labels = {"repo": repo, "remote_url": config.remote_url}
                metrics.gauge("jfrog_replication_enabled", H["jfrog_replication_enabled"], _bool(config.enabled),
                              **labels)
                metrics.gauge("jfrog_replication_event_based", H["jfrog_replication_event_based"],
                              _bool(config.event_based), **labels)
            status = statuses.get(repo)
            if status is None:
                continue
            metrics.state_set("jfrog_replication_status", H["jfrog_replication_status"], STATES, status.status,
                              repo=repo)
            metrics.gauge("jfrog_replication_last_completed_timestamp_seconds",
                          H["jfrog_replication_last_completed_timestamp_seconds"], status.last_completed, repo=repo)
            seen_targets: set[tuple[str, str]] = set()
            for target in status.targets:
                remote_url = target.remote_url or _url_for_remote_repo(repo_configs, target.remote_repo)
                if (remote_url, target.remote_repo) in seen_targets:
                    continue
                seen_targets.add((remote_url, target.remote_repo))
                labels = {"repo": repo, "remote_url": remote_url, "remote_repo": target.remote_repo}
                metrics.state_set("jfrog_replication_target_status", H["jfrog_replication_target_status"], STATES,
                                  target.status, **labels)
                metrics.gauge("jfrog_replication_target_last_completed_timestamp_seconds",
                              H["jfrog_replication_target_last_completed_timestamp_seconds"],
                              target.last_completed, **labels)
        return metrics.families()

    async def _configs(self, client: JfrogClient, explicit: list[str]) -> tuple[list[ReplicationConfig] | None,
                                                                                 list[str]]:
        """Every replication configuration to watch (``None``: no replication API), and the listed
        repositories that have none."""
        if not explicit:
            result = await client.get(ALL_CONFIGS)
            if result.unsupported:
                return None, []
            if not result.ok:
                raise _failure(result, ADMIN_NEEDED)
            return parse_result(parse_replication_configs, result), []
        # The target's filters apply before any per-repository call.
        repos = [repo for repo in dict.fromkeys(explicit) if self.target.repos.allows(repo)]
        results = await run_bounded([partial(client.get, REPO_CONFIG, path={"repo": repo}) for repo in repos],
                                    self.target.max_concurrency)
        configs: list[ReplicationConfig] = []
        missing: list[str] = []
        for repo, result in zip(repos, results, strict=True):
            if result.unsupported:
                missing.append(repo)
                continue
            if not result.ok:
                raise _failure(result, ADMIN_NEEDED)
            configs.extend(parse_result(partial(parse_replication_configs, repo=repo), result))
        return configs, missing


def _bool(value: bool | None) -> float | None:
    return None if value is None else 1.0 if value else 0.0
