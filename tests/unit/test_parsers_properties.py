"""Every pure parser, given any decoded JSON, returns its data or raises ValueError; what it returns emits cleanly.

The bodies are arbitrary JSON (objects keyed by the field names the parsers
read, so that their branches are reached) and the documented payloads and
recorded field answers with any part left out or replaced by arbitrary JSON.
A parser's data then goes through its collector's emit function: no sample
may carry an empty identifying label, and every sample carries exactly the
labels its family declares.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter import values
from exporter.client import ApiResult
from exporter.collectors import (
    activity,
    distribution,
    federation,
    health,
    maintenance,
    replication,
    security,
    storage,
    webhooks,
    workers,
)
from exporter.families import REGISTRY, Emitter, Kind
from exporter.outcomes import CollectionError, Outcome

TESTS = Path(__file__).resolve().parents[1]
PAYLOADS = TESTS / "payloads"
FIELD = TESTS / "field"
NOW = 1_750_000_000.0

PROPERTIES = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- bodies ------------------------------------------------------------------------------------


def _documents() -> Iterator[tuple[str, Any]]:
    """(where it comes from, body): every documented payload, and every JSON body of a recorded field answer."""
    for path in sorted(PAYLOADS.rglob("*.json")):
        yield str(path.relative_to(PAYLOADS)), json.loads(path.read_text())
    for path in sorted(FIELD.glob("*.yaml")):
        answers = yaml.safe_load(path.read_text())
        if not isinstance(answers, list):  # workers-openapi.yaml is a document, not a list of answers
            continue
        for answer in answers:
            if not 200 <= answer.get("status", 0) < 300:
                continue
            try:
                body = json.loads(answer.get("body") or "")
            except ValueError:
                continue
            yield answer["request"].split(" ")[1].split("?")[0], body


DOCUMENTS = list(_documents())


def _walk(value: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, leaf) of a document; key None for list items."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        key, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.items())
        elif isinstance(item, list):
            stack.extend((None, x) for x in item)
        else:
            yield key, item


def _keys(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield from item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: field names the parsers read that no document here shows
EXTRA_FIELDS = {"version", "revision", "code", "error", "licenses", "unavailableMirrors", "testRun", "entries",
                "history", "executionHistory", "executions", "items", "historyEntryId", "entryId", "traceId",
                "workersStats", "stats", "stat.downloaded", "lastRunStatus", "policyName", "binariesSizeInBytes",
                "artifactsSizeInBytes", "usedSpaceInBytes", "totalSpaceInBytes", "freeSpaceInBytes", "startTime",
                "finishTime", "localRepoKey", "remoteRepoKey", "records", "subscriptions"}
FIELD_NAMES = sorted({k for _, doc in DOCUMENTS for k in _keys(doc)} | EXTRA_FIELDS)


def _nested(depth: int, container: Callable[[Any], Any]) -> Any:
    value: Any = None
    for _ in range(depth):
        value = container(value)
    return value


#: value shapes the parsers read specially, and values at the edges of what JSON decodes to
SHAPES: list[Any] = [
    "", " ", "N/A", "n/r", "-", "null", "1,234", "125,726", "3.48 GB", "32.22 GB (15.77%)", "0 bytes", "12 XB",
    "5.82%", ",%", "2 of 256", "1,024 / 2,048", ", of ,", "May 15, 2014", "Jul XX, 2025",
    "2015-12-27T15:08:49.050+02:00", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+0200", "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00", "Sun May 01 2019 10:00:00 GMT +02:00 (UTC)", "Mon Feb 30 2019 10:00:00 GMT +99:00",
    "1e999", "-1e999", "nan", "HEALTHY", "SYNC", "DISABLED", "STATUS_SUCCESS", "STATUS_FAIL", "true", "false",
    "TOTAL", "NA", "ok", "running", "Not in use", "http://user:pass@jpd.example/artifactory/libs?x=1#y", "a.b.", ".",
    "org.artifactory.storage.binstore.service.BinaryStoreGarbageCollectorJob", "jfrt@01/users/admin", "a/b/c",
    "No Prune task found", "RTFS is enabled", 0, -1, 1, 10**20, 10**400, -(10**400), 2**1024, 1e308,
    -1e308, 5e-324, float("inf"), float("-inf"),
]
LEAVES = sorted({repr(v): v for _, doc in DOCUMENTS for _, v in _walk(doc)}.values(), key=repr)

#: deeper than a decoder's default recursion limit allows: nothing may recurse on what the JPD sends
_DEEP = {"array": _nested(5_000, lambda v: [v]), "object": _nested(5_000, lambda v: {"key": v})}


def _deep(kind: str) -> Any:
    return _DEEP[kind]  # built once: parsers never change what they read


deep = st.sampled_from(sorted(_DEEP)).map(_deep)
#: more digits than Python prints
long_number = st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
                    st.sampled_from(SHAPES + LEAVES), deep, long_number)
field_names = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(field_names, inner, max_size=4)),
    max_leaves=10,
)


def _paths(document: Any) -> list[tuple[str | int, ...]]:
    """The path of every member and item of a document."""
    paths: list[tuple[str | int, ...]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while stack:
        path, value = stack.pop()
        children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, child in children:
            paths.append((*path, key))
            stack.append(((*path, key), child))
    return sorted(paths, key=repr)


def _has(container: Any, key: str | int) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and key < len(container)


def _parent(body: Any, path: tuple[str | int, ...]) -> Any:
    for key in path[:-1]:
        if not _has(body, key):
            return None
        body = body[key]
    return body


def near(document: Any) -> st.SearchStrategy[Any]:
    """The document with a few of its members or items left out, repeated or replaced by arbitrary JSON."""
    paths = _paths(document)

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        body = copy.deepcopy(document)
        for _ in range(draw(st.integers(1, 4)) if paths else 0):
            path = draw(st.sampled_from(paths))
            action = draw(st.sampled_from(("replace", "leave out", "repeat")))
            parent, key = _parent(body, path), path[-1]
            if not _has(parent, key):
                continue  # left out by an earlier step
            if action == "replace":
                parent[key] = draw(st.one_of(scalars, json_values))
            elif action == "leave out":
                del parent[key]
            elif isinstance(parent, list):
                parent.append(parent[key])  # the same entry twice (parsers never change what they read)
        return body

    return mutated()


def bodies(seeds: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON, and the documents whose source (payload file or request path) starts with a seed."""
    documents = [doc for where, doc in DOCUMENTS if where.startswith(seeds)]
    assert documents or not seeds, f"no document for {seeds}"
    return st.one_of(json_values, *(near(doc) for doc in documents))


# -- the parsers and what their collectors emit -------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    parse: Callable[[Any], Any]
    emit: Callable[[Any, Emitter], None]
    seeds: tuple[str, ...] = ()


def _by_repo(configs: list[replication.ReplicationConfig]) -> replication.ByRepo:
    grouped: replication.ByRepo = {}
    for config in configs:
        grouped.setdefault(config.repo, []).append(config)
    return grouped


_CONFIG = replication.ReplicationConfig("libs-release-local", "https://jpd.example/artifactory/libs-release-local",
                                        True, False)


def _replication_status(status: replication.ReplicationStatus, out: Emitter) -> None:
    replication.status_families({_CONFIG.repo: [_CONFIG]}, {_CONFIG.repo: status}, out)


def _connections(connections: list[federation.Connection], out: Emitter) -> None:
    lags = [c.lag for repo in sorted({c.local_repo for c in connections})
            for c in federation.outgoing_connections(repo, connections, set())]
    federation.lag_families(lags, out)


def _mirrors_lag(lags: list[federation.Lag], out: Emitter) -> None:
    federation.lag_families(federation.legacy_lags(lags, {}), out)
    federation.member_families(federation.legacy_members([], [], lags), out)


def _legacy_repo_status(status: federation.LegacyRepoStatus, out: Emitter) -> None:
    statuses = {status.repo: status}
    federation.member_families(federation.with_repo_statuses([], statuses), out)
    federation.lag_families(federation.legacy_queues(statuses), out)
    federation.lag_families(federation.legacy_lags([], statuses), out)


def _pud(status: int, body: Any) -> maintenance.PudStatus | None:
    """The PUD part's reading of one answer; the CollectionError of an unexpected 412 counts as a refusal."""
    try:
        return maintenance.pud_from_result(
            ApiResult(maintenance.PRUNE_STATUS, Outcome.SUCCESS, status=status, body=body))
    except CollectionError as exc:
        assert exc.outcome is Outcome.BAD_RESPONSE
        raise ValueError(exc.reason) from None


def _pud_families(pud: maintenance.PudStatus | None, out: Emitter) -> None:
    if pud is not None:
        maintenance.pud_families(pud, out)


_LISTED_BUNDLE = maintenance.CleanupPolicy("bundles", "keep-90-days", True, detailed=False)


def _bundle_policy(detail: maintenance.CleanupPolicy | None, out: Emitter) -> None:
    merged = _LISTED_BUNDLE if detail is None else maintenance.merge_policy_detail(_LISTED_BUNDLE, detail)
    maintenance.cleanup_families([merged], out)


def _history(executions: list[workers.Execution], out: Emitter) -> None:
    history = workers.WorkerHistory()
    history.observe([])  # first sight: from now on every entry counts
    history.observe(executions)
    worker = workers.Worker("my-worker", True, "BEFORE_DOWNLOAD")
    workers.history_families([worker], {worker.key: history}, out)


def _streams() -> tuple[activity.Stream, activity.Stream]:
    return activity.Stream("created", "created", watermark_ms=0), activity.Stream("downloaded", "stat.downloaded",
                                                                                  watermark_ms=0)


def _aql(kind: int, found: list[activity.Activity], out: Emitter) -> None:
    streams = _streams()
    streams[kind].count(found, -(2**63), 2**63, lambda _: True)
    activity.activity_families(streams, out)


def _repositories(repos: list[tuple[str, str]], out: Emitter) -> None:
    known, _ = activity.counted_repositories(repos)
    streams = _streams()
    for stream in streams:
        stream.know(known)
    activity.activity_families(streams, out)


def _deliveries(page: webhooks.Page, out: Emitter) -> None:
    ledger = webhooks.Ledger(watermark_ms=0)
    ledger.count(page, 0, 2**63)
    ledger.advance(2**63)
    ledger.know(["listed-but-quiet"])
    webhooks.delivery_families(ledger, out)


CASES = [
    # health
    Case("ping", health.parse_ping, lambda up, out: out.gauge(health.UP, up)),
    Case("readiness", health.parse_readiness, lambda ready, out: out.gauge(health.READY, ready),
         ("/artifactory/api/v1/system/readiness",)),
    Case("router_health", health.parse_router_health, health.router_families,
         ("core/router-health", "/router/api/v1/system/health")),
    Case("version", health.parse_version, health.version_families, ("/artifactory/api/system/version",)),
    Case("licenses", health.parse_licenses, health.license_families,
         ("core/licenses", "/artifactory/api/system/license")),
    Case("service_probe", health.parse_service_probe,
         lambda up, out: out.gauge(health.SERVICE_UP, up, service="jfconnect")),
    Case("access_federation", health.parse_access_federation, health.federation_families,
         ("core/access-federation", "/access/api/v1/system/federation")),
    # storage
    Case("storage_info", storage.parse_storage_info, storage.storage_families,
         ("core/storageinfo", "/artifactory/api/storageinfo")),
    # replication
    Case("replication_configs", replication.parse_replication_configs,
         lambda configs, out: replication.config_families(_by_repo(configs), out),
         ("replication/config", "/artifactory/api/replications")),
    Case("replication_configs_of_repo", partial(replication.parse_replication_configs, repo="libs-release-local"),
         lambda configs, out: replication.config_families(_by_repo(configs), out),
         ("replication/config", "/artifactory/api/replications/")),
    Case("replication_status", replication.parse_replication_status, _replication_status,
         ("replication/status", "/artifactory/api/replication/")),
    Case("system_replications", replication.parse_system_replications,
         lambda blocked, out: replication.blocked_families(*blocked, out),
         ("replication/system", "/artifactory/api/system/replications")),
    # federation
    Case("state_summary", federation.parse_state_summary, federation.summary_families,
         ("federation/state-summary", "/artifactory/api/federation/status/stateSummary")),
    Case("state_list", federation.parse_state_list, federation.member_families,
         ("federation/state-list", "/artifactory/api/federation/status/stateList")),
    Case("connection_states", federation.parse_connection_states, _connections,
         ("federation/connection-states", "/artifactory/api/federation/status/connectionStates")),
    Case("mirrors_lag", federation.parse_mirrors_lag, _mirrors_lag,
         ("federation/mirrors-lag", "/artifactory/api/federation/status/mirrorsLag")),
    Case("unavailable_mirrors", federation.parse_unavailable_mirrors,
         lambda mirrors, out: federation.member_families(federation.legacy_members([], mirrors, []), out),
         ("federation/unavailable-mirrors", "/artifactory/api/federation/status/unavailableMirrors")),
    Case("federation_state", federation.parse_federation_state,
         lambda states, out: federation.member_families(federation.legacy_members(states, [], []), out),
         ("federation/federation-state", "/artifactory/api/federation/state")),
    Case("legacy_repo_status", federation.parse_legacy_repo_status, _legacy_repo_status,
         ("federation/repo-status", "/artifactory/api/v2/federation/status/repo/")),
    Case("inconsistent_repos", federation.parse_inconsistent_repos,
         lambda listed, out: federation.inconsistent_families(listed, [], out),
         ("federation/inconsistent-repos", "/artifactory/api/federation/inconsistentRepos")),
    Case("repository_keys", federation.parse_repository_keys,
         lambda keys, out: federation.inconsistent_families([], keys, out),
         ("federation/repositories", "/artifactory/api/repositories")),
    Case("failed_tasks_page", federation.parse_failed_tasks_page,
         lambda page, out: federation.failed_tasks_families({"libs-federated": federation.FailedTasks(page[0])}, out),
         ("federation/failed-binary-tasks", "/artifactory/api/federation/binaries/failures/list")),
    # maintenance
    Case("pud_status", maintenance.parse_pud_status, maintenance.pud_families,
         ("maintenance/pud-status", "/artifactory/api/system/storage/prune/status")),
    Case("pud_answer_200", partial(_pud, 200), _pud_families,
         ("maintenance/pud-status", "/artifactory/api/system/storage/prune/status")),
    Case("pud_answer_412", partial(_pud, 412), _pud_families, ("maintenance/pud-status-never-run",)),
    Case("package_policies", partial(maintenance.parse_cleanup_policies, kind="packages"),
         maintenance.cleanup_families,
         ("maintenance/package-policies", "/artifactory/api/cleanup/packages/policies")),
    Case("bundle_policies", partial(maintenance.parse_cleanup_policies, kind="bundles"),
         maintenance.cleanup_families,
         ("maintenance/bundle-policies", "/artifactory/api/cleanup/bundles/policies")),
    Case("bundle_policy", partial(maintenance.parse_cleanup_policy, kind="bundles"), _bundle_policy,
         ("maintenance/bundle-policy.json",)),
    Case("background_tasks", maintenance.parse_background_tasks,
         lambda tasks, out: maintenance.task_families(tasks, out, NOW),
         ("maintenance/tasks", "/artifactory/api/tasks")),
    Case("archive_executions", maintenance.parse_archive_executions, maintenance.archive_families,
         ("maintenance/archive-executions", "/artifactory/api/retention/archive/executions")),
    Case("retention", maintenance.parse_retention_enabled,
         lambda enabled, out: out.gauge(maintenance.RETENTION, enabled), ("maintenance/retention-enable",)),
    # workers
    Case("workers", workers.parse_workers, workers.worker_families,
         ("workers/workers-", "/worker/api/v1/workers")),
    Case("history", workers.parse_history, _history,
         ("workers/history-entry", "workers/rerun-response", "/worker/api/v1/execution_history")),
    Case("execute", workers.parse_execute,
         lambda ok, out: workers.probe_families(workers.ProbeResult("my-worker", ok, 0.25), out),
         ("workers/execute-response",)),
    # security
    Case("users_page", security.parse_users_page, lambda page, out: security.users_families(page[0], out),
         ("security/users", "/access/api/v2/users")),
    Case("groups_page", security.parse_groups_page,
         lambda page, out: out.gauge(security.GROUPS_COUNT, page[0]), ("security/groups", "/access/api/v2/groups")),
    Case("certificates", security.parse_certificates, security.certificate_families,
         ("security/certificates", "/artifactory/api/system/security/certificates")),
    Case("tokens", security.parse_tokens,
         lambda tokens, out: security.token_families(security.summarise_tokens(tokens, NOW, 20), out),
         ("security/tokens", "/access/api/v1/tokens")),
    # activity
    Case("aql_created", partial(activity.parse_aql_activity, time_field="created"), partial(_aql, 0),
         ("security/aql-items", "/artifactory/api/search/aql")),
    Case("aql_downloaded", partial(activity.parse_aql_activity, time_field="stat.downloaded"), partial(_aql, 1),
         ("security/aql-items", "/artifactory/api/search/aql")),
    Case("repositories", activity.parse_repositories, _repositories,
         ("federation/repositories", "/artifactory/api/repositories")),
    # distribution
    Case("distribution_ping", distribution.parse_ping, lambda up, out: out.gauge(distribution.UP, up),
         ("distribution/ping-error", "/distribution/api/v1/system/ping")),
    Case("distribution_info", distribution.parse_system_info, distribution.info_families,
         ("distribution/system-info", "/distribution/api/v1/system/info")),
    Case("distributions", distribution.parse_distributions,
         lambda found, out: distribution.distribution_families(found, 5, out),
         ("distribution/status", "/distribution/api/v1/release_bundle/distribution")),
    Case("received_bundles", distribution.parse_received,
         lambda received, out: out.gauge(distribution.RECEIVED_FAMILY, received[0]),
         ("distribution/received", "/distribution/api/v2/release_bundle/received")),
    # webhooks
    Case("subscriptions", webhooks.parse_subscriptions, webhooks.subscription_families,
         ("webhooks/subscriptions", "webhooks/custom-webhook", "/event/api/v1/subscriptions")),
    Case("troubleshooting", webhooks.parse_troubleshooting, _deliveries,
         ("webhooks/troubleshooting-record", "/event/api/v1/troubleshooting")),
]

DECLARED = {family.name: family for family in REGISTRY.families()}


def assert_clean(out: Emitter) -> None:
    """Every sample carries its family's declared labels, and none of its identifying labels is empty."""
    for metric in out.families():
        family = DECLARED[metric.name]
        for sample in metric.samples:
            labels = dict(sample.labels)
            if family.kind is Kind.HISTOGRAM and sample.name.endswith("_bucket"):
                labels.pop("le")
            assert tuple(labels) == family.labels, f"{sample.name}: labels {tuple(labels)}"
            empty = [k for k in family.key if not labels[k].strip()]
            assert not empty, f"{sample.name}: empty identifying label {empty}: {labels}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_parser_returns_or_raises_value_error_and_what_it_returns_emits_cleanly(case: Case) -> None:
    @PROPERTIES
    @given(body=bodies(case.seeds))
    def check(body: Any) -> None:
        try:
            data = case.parse(body)
        except ValueError as exc:
            assert str(exc), "a parser's error says what it saw"
            return
        out = Emitter("t")
        case.emit(data, out)
        assert_clean(out)

    check()


@PROPERTIES
@given(value=st.one_of(scalars, json_values))
def test_the_value_readers_take_any_json_value(value: Any) -> None:
    """The readers every parser builds on: a number, a time, a text, or nothing; never an exception."""
    for read in (values.parse_count, values.parse_size, values.parse_percent_ratio, values.parse_license_date,
                 values.parse_iso_timestamp, security.parse_certificate_date):
        result = read(value)
        assert result is None or isinstance(result, float), read.__name__
    times = (values.parse_iso_timestamp(value), values.parse_license_date(value))
    assert all(t is None or math.isfinite(t) for t in times)
    for text in (values.scalar_text, values.lower_or_empty, values.safe_url, values.json_type, values.json_text,
                 workers.normalise_status, maintenance.short_type):
        assert isinstance(text(value), str), text.__name__
    assert federation.member_state(value) is None or isinstance(federation.member_state(value), str)
    assert maintenance.parse_progress(value) is not None
    try:
        assert isinstance(values.listed(value, "entries", "items"), list)
    except ValueError as exc:
        assert "entries: expected a JSON array" in str(exc)


_ARRAY, _OBJECT, _HUGE = _DEEP["array"], _DEEP["object"], 10**400

#: bodies that made a parser raise something else than ValueError (or made a series without its key)
REGRESSIONS = [
    ("router_health", {"services": 1}),  # TypeError: not iterable
    ("router_health", {"router": {"state": _ARRAY}, "services": [{"service_id": _ARRAY}]}),  # RecursionError
    ("readiness", {"code": _ARRAY}),
    ("version", {"version": _ARRAY}),
    ("licenses", {"type": _ARRAY}),
    ("storage_info", {"binariesSummary": {"binariesCount": _HUGE}}),  # OverflowError: int too large for a float
    ("storage_info", {"repositoriesSummaryList": [{"repoKey": "TOTAL", "repoType": _ARRAY}, {"repoKey": _OBJECT}]}),
    ("replication_configs", _ARRAY),
    ("replication_status", {"lastCompleted": _HUGE, "targets": [{"repoKey": _ARRAY}]}),
    ("state_summary", {"federationStates": {"HEALTHY": _HUGE}}),
    ("state_list", {"federations": [{"localRepoKey": _ARRAY}]}),
    ("connection_states", {"memberConnections": [{"lagInMs": _HUGE}]}),
    ("mirrors_lag", [{"localRepoKey": "fed", "lagInMS": _HUGE}]),
    ("unavailable_mirrors", [{"localRepoKey": _ARRAY}]),
    ("federation_state", [{"members": [{"remoteRepoKey": _ARRAY}]}]),
    ("legacy_repo_status", {"binariesTasksInfo": {"failingTasks": _HUGE}}),
    ("inconsistent_repos", [_ARRAY, None, "fed"]),
    ("repository_keys", [{"key": _ARRAY}]),
    ("failed_tasks_page", [{"sha1": _ARRAY}]),
    ("pud_status", {"status": "running", "report": {"totalBinariesCleaned": _HUGE},
                    "timing": {"startedAtMillis": _HUGE}}),
    ("pud_status", {"status": "error", "error": _ARRAY}),
    ("pud_status", {"status": "error", "error": _OBJECT}),
    ("pud_answer_412", _OBJECT),
    ("package_policies", [{"key": _ARRAY}, {"key": "p", "durationInMinutes": _HUGE}]),
    ("background_tasks", {"tasks": [{"type": _ARRAY}, {"type": "t", "started": _HUGE}]}),
    ("archive_executions", [{"policyKey": "p", "startTime": _HUGE}, {"policyKey": _ARRAY}]),
    ("workers", {"workers": [{"key": _ARRAY}, {"key": "w", "action": _ARRAY}]}),
    ("history", [{"startTimeMillis": _HUGE}, {"testRun": _ARRAY, "id": _ARRAY, "executionStatus": _ARRAY}]),
    ("certificates", [{"certificateAlias": "a", "validUntil": _HUGE}, {"certificateAlias": _ARRAY}]),
    ("tokens", {"tokens": [{"subject": "s", "expiry": _HUGE}, {"subject": _ARRAY}]}),
    ("aql_created", {"results": [{"repo": "r", "created": float("inf")}, {"repo": "r", "created": _HUGE},
                                 {"repo": "r", "created": 1, "path": _ARRAY}]}),  # OverflowError from round(inf)
    ("repositories", [{"key": _ARRAY}]),
]
CASE = {case.name: case for case in CASES}


@pytest.mark.parametrize(("name", "body"), REGRESSIONS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(REGRESSIONS)])
def test_shapes_that_broke_a_parser(name: str, body: Any) -> None:
    case = CASE[name]
    try:
        data = case.parse(body)
    except ValueError:
        return
    out = Emitter("t")
    case.emit(data, out)
    assert_clean(out)


def test_every_parser_has_a_case() -> None:
    """A new parse_* function joins the cases above."""
    modules = (activity, federation, health, maintenance, replication, security, storage, workers)
    parsers = {f"{m.__name__}.{name}" for m in modules for name, fn in vars(m).items()
               if name.startswith("parse_") and getattr(fn, "__module__", None) == m.__name__}
    covered = {f"{c.parse.func.__module__}.{c.parse.func.__name__}" if isinstance(c.parse, partial)
               else f"{c.parse.__module__}.{c.parse.__name__}" for c in CASES}
    # Read through the cases that cover them: a license date, a certificate date, a history entry, an archive entry.
    indirect = {"exporter.collectors.security.parse_certificate_date", "exporter.collectors.workers.parse_execution",
                "exporter.collectors.maintenance.parse_archive_execution",
                "exporter.collectors.maintenance.parse_progress"}
    assert parsers - covered - indirect == set()
