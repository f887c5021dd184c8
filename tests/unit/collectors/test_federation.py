"""Collector `federation`: documented payloads of both services, the families built from them, mode probes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from exporter.client import ApiResult, JfrogClient
from exporter.collectors.base import Run
from exporter.collectors.federation import (
    FAILED_TASKS,
    LEGACY,
    LEGACY_REPO_STATUS_V1,
    LEGACY_REPO_STATUS_V2,
    MEMBER_STATES,
    MIRRORS_LAG,
    RTFS,
    STATE_SUMMARY,
    FailedTasks,
    FederationCollector,
    FederationSettings,
    Lag,
    LegacyMirror,
    LegacyRepoStatus,
    Member,
    failed_tasks_families,
    inconsistent_families,
    is_rtfs_refusal,
    lag_families,
    legacy_lags,
    legacy_members,
    legacy_queues,
    member_families,
    member_state,
    outgoing_connections,
    parse_connection_states,
    parse_failed_tasks_page,
    parse_federation_state,
    parse_inconsistent_repos,
    parse_legacy_repo_status,
    parse_mirrors_lag,
    parse_repository_keys,
    parse_state_list,
    parse_state_summary,
    parse_unavailable_mirrors,
    probe_verdict,
    summary_families,
    with_repo_statuses,
)
from exporter.families import Emitter
from exporter.outcomes import Outcome
from tests.conftest import make_target
from tests.support import documented, jfrog_platform

US = "https://art-us.example.com/artifactory"
AP = "https://art-ap.example.com/artifactory"

Built = dict[tuple[str, frozenset[tuple[str, str]]], float]


def load(name: str) -> Any:
    return documented("federation", name)


def built(out: Emitter) -> Built:
    """The samples an emitter holds, without the target label."""
    return {(s.name, frozenset((k, v) for k, v in s.labels.items() if k != "target")): s.value
            for family in out.families() for s in family.samples}


def names(out: Emitter) -> set[str]:
    return {family.name for family in out.families()}


# -- parsers on the documented samples ---------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    # metrics.md: HEALTHY/SYNC/SYNCING -> healthy, ..., N/A -> not_available
    ("HEALTHY", "healthy"), ("SYNC", "healthy"), ("SYNCING", "healthy"), ("DELAYED", "delayed"),
    ("PENDING_FS", "pending_full_sync"), ("FULL_SYNC_RUNNING", "full_sync_running"),
    ("FS_RUNNING", "full_sync_running"), ("OUT_OF_SYNC", "out_of_sync"), ("ERROR", "error"),
    ("EXHAUSTED", "error"), ("DISABLED", "disabled"), ("N/A", "not_available"), ("NOT_AVAILABLE", "not_available"),
    ("UP_TO_DATE", "up_to_date"), (None, None), ("", None),
])
def test_member_states_of_both_services_map_onto_one_set(raw: str | None, expected: str | None) -> None:
    assert member_state(raw) == expected
    if expected not in (None, "up_to_date"):
        assert expected in MEMBER_STATES


def test_state_summary_sample() -> None:
    # 2.11.10.3 Get Federation State Summaries (jfrog-rest-apis.txt line 16328).
    assert parse_state_summary(load("state-summary.json")) == {
        "HEALTHY": 6, "NOT_AVAILABLE": 1, "DELAYED": 2, "PENDING_FS": 1, "FULL_SYNC_RUNNING": 1, "ERROR": 0,
        "DISABLED": 0}
    with pytest.raises(ValueError):
        parse_state_summary({"HEALTHY": 6})


def test_state_list_sample() -> None:
    # 2.11.10.2 Get Federation State Details (line 16200; split by a page header, joined).
    members = parse_state_list(load("state-list.json"))
    got = {(m.repo, m.remote_url): (m.state, m.in_lag) for m in members}
    blue, green = "https://my-ci-blue.jfrog.io/artifactory", "https://my-ci-green.jfrog.io/artifactory"
    assert got == {
        ("rtfs-dev-master-maven-local-2", blue): ("healthy", False),
        ("rtfs-dev-master-maven-local-2", green): ("not_available", False),
        ("artifactory-federation-1", blue): ("delayed", True),
        ("artifactory-federation-1", green): ("pending_full_sync", True),
        ("rtfs-dev-master-docker-local-1", blue): ("error", True),
        ("rtfs-dev-master-docker-local-1", green): ("disabled", False),
    }
    assert {m.remote_repo for m in members if m.repo == "artifactory-federation-1"} == {"artifactory-federation-1"}


def test_connection_states_sample_and_the_local_side() -> None:
    # 2.11.10.1 Get Federation Connection Details (line 16113; the second entry joined across the page break).
    connections = parse_connection_states(load("connection-states.json"))
    assert [(c.local_repo, c.remote_repo, c.state, c.lag_seconds, c.queued_events) for c in connections] == [
        ("priority_test_repo_1", "repo_1_high", "healthy", 0.0, 0.0),
        ("repo_1_high", "priority_test_repo_1", "not_available", 0.0, 0.0),
    ]
    blue = "https://my-ci-blue.jfrog.io/artifactory"
    [mine] = outgoing_connections("priority_test_repo_1", connections, {blue})
    assert (mine.remote_repo, mine.remote_url) == ("repo_1_high", blue)
    assert mine.lag == Lag("priority_test_repo_1", "repo_1_high", blue, 0.0, 0.0)
    # Without stateList, connections from a repository of the asked key are kept.
    assert len(outgoing_connections("priority_test_repo_1", connections, set())) == 1


def test_outgoing_connections_with_the_same_key_on_every_member() -> None:
    local, b, c = "https://a.example.com/artifactory", "https://b.example.com/artifactory", \
        "https://c.example.com/artifactory"

    def conn(src: str, dst: str, lag: int) -> dict[str, object]:
        return {"localRepoKey": "fed", "localPlatformUrl": src, "remoteRepoKey": "fed", "remotePlatformUrl": dst,
                "status": "HEALTHY", "lagInMs": lag, "queuedEvents": 0}

    body = {"memberConnections": [conn(b, local, 9_000), conn(local, b, 1_000), conn(c, b, 8_000),
                                  conn(local, c, 2_000), conn(b, c, 7_000), conn(c, local, 6_000)]}
    mine = outgoing_connections("fed", parse_connection_states(body), {b.lower(), c.lower()})
    assert sorted((x.remote_url, x.lag_seconds) for x in mine) == [(b, 1.0), (c, 2.0)]


def test_mirrors_lag_sample() -> None:
    # 2.11.11.4 Get Federation Mirror Lag Time (line 16705): lagInMS in milliseconds.
    lags = parse_mirrors_lag(load("mirrors-lag.json"))
    assert [(m.repo, m.remote_repo, m.remote_url, m.lag_seconds, m.queued_events) for m in lags] == [
        ("example-repo-local", "test1-repo", "http://docker.for.mac.localhost:10103/artifactory", 1.5, None),
        ("example-repo-local", "test2-repo", "http://docker.for.mac.localhost:10102/artifactory", 5.2, None),
    ]


def test_unavailable_mirrors_sample() -> None:
    # 2.11.11.5 Get Unavailable Mirrors (line 16775).
    [mirror] = parse_unavailable_mirrors(load("unavailable-mirrors.json"))
    assert (mirror.repo, mirror.remote_repo, mirror.state) == ("example-repo-local", "test3-repo", "out_of_sync")


def test_federation_state_sample() -> None:
    # 2.11.11.3 Get Federation Sync State (line 16624; its missing and trailing commas fixed).
    states = parse_federation_state(load("federation-state.json"))
    assert [(s.repo, s.state, len(s.members)) for s in states] == [
        ("generic-fed-a", "out_of_sync", 2), ("generic-fed-b", "disabled", 0),
        ("generic-fed-c", "full_sync_running", 1)]


def test_legacy_member_states_combine_the_legacy_endpoints() -> None:
    states = parse_federation_state(load("federation-state.json"))
    unavailable = parse_unavailable_mirrors([
        {"localRepoKey": "generic-fed-a", "remoteUrl": "http://docker.for.mac.localhost:10105/artifactory/",
         "remoteRepoKey": "generic-fed-a", "status": "OUT_OF_SYNC"}])
    lags = parse_mirrors_lag(load("mirrors-lag.json"))
    got = {(m.repo, m.remote_url.rsplit(":", 1)[-1]): m.state for m in legacy_members(states, unavailable, lags)}
    assert got == {
        # In the out-of-sync Federation, the mirror not listed as unavailable is in SYNC.
        ("generic-fed-a", "10104/artifactory"): "healthy",
        ("generic-fed-a", "10105/artifactory"): "out_of_sync",
        ("generic-fed-c", "10104/artifactory"): "full_sync_running",
        ("example-repo-local", "10103/artifactory"): "healthy",
        ("example-repo-local", "10102/artifactory"): "healthy",
    }


def test_legacy_repo_status_v1_sample() -> None:
    # 2.11.11.1 Get Federated Repository Status (line 16440): statuses SYNC / OUT_OF_SYNC.
    status = parse_legacy_repo_status(load("repo-status-v1.json"))
    assert status.repo == "generic-repo-federated0"
    assert status.failing_tasks == 0
    [mirror] = status.mirrors
    assert (mirror.state, mirror.queued_events, mirror.lag_seconds) == ("healthy", 9463, 46.628)
    body = load("repo-status-v1.json")
    body["mirrorEventsStatusInfo"][0]["status"] = "OUT_OF_SYNC"  # type: ignore[index]
    assert parse_legacy_repo_status(body).mirrors[0].state == "out_of_sync"


@pytest.mark.parametrize(("status", "expected"), [
    ("HEALTHY", "healthy"), ("PENDING_FS", "pending_full_sync"), ("FS_RUNNING", "full_sync_running"),
    ("OUT_OF_SYNC", "out_of_sync"), ("EXHAUSTED", "error"), ("DISABLED", "disabled")])
def test_legacy_repo_status_v2_sample_and_statuses(status: str, expected: str) -> None:
    # 2.11.11.2 Get Federated Repository Status (v2) (line 16527) and its status list.
    body = load("repo-status-v2.json")
    assert [m.state for m in parse_legacy_repo_status(body).mirrors] == ["healthy", "healthy"]
    body["mirrorEventsStatusInfo"][1]["status"] = status  # type: ignore[index]
    assert parse_legacy_repo_status(body).mirrors[1].state == expected


def test_inconsistent_repos_failed_tasks_and_repository_list_samples() -> None:
    # 2.11.4 (line 15854), 2.11.12 (line 16823), 2.10.4 (line 14123).
    assert parse_inconsistent_repos(load("inconsistent-repos.json")) == ["fed82", "fed-east-r3"]
    assert parse_failed_tasks_page(load("failed-binary-tasks.json")) == (
        1, ("5c9449b779eae6c85b5d7b74c4c7d5c2fd0705ae", "1694003288367"))
    assert parse_failed_tasks_page([]) == (0, None)
    # Entries of another type than asked for are left out (a server that ignores ?type=).
    assert parse_repository_keys(load("repositories.json")) == []
    assert parse_repository_keys(load("repositories.json"), "local") == ["libs-releases-local", "libs-snapshots-local"]
    with pytest.raises(ValueError):
        parse_inconsistent_repos({"repos": []})
    with pytest.raises(ValueError):
        parse_failed_tasks_page([{"sha1": "a"}, "not an object"])


def test_rtfs_refusal_is_recognised_whatever_the_status() -> None:
    text = "RTFS is enabled therefore get unavailable mirrors is not allowed"
    assert is_rtfs_refusal(ApiResult("/x", Outcome.ERROR, 400, text, f"HTTP 400: {text}"))
    assert is_rtfs_refusal(ApiResult("/x", Outcome.BAD_RESPONSE, 200, text, "expected JSON, got text"))
    assert not is_rtfs_refusal(ApiResult("/x", Outcome.ERROR, 500, "Internal error", "HTTP 500: Internal error"))
    assert not is_rtfs_refusal(ApiResult("/x", Outcome.SUCCESS, 200, [], ""))


# -- which service is active ---------------------------------------------------------------------------

REFUSAL = "RTFS is enabled therefore get mirrors lag is not allowed"


@pytest.mark.parametrize(("mode", "result", "active"), [
    (RTFS, ApiResult(STATE_SUMMARY, Outcome.SUCCESS, 200, {"federationStates": {}}), True),
    (RTFS, ApiResult(STATE_SUMMARY, Outcome.UNSUPPORTED, 404, "", "HTTP 404"), False),
    (RTFS, ApiResult(STATE_SUMMARY, Outcome.ERROR, 500, "", "HTTP 500"), None),
    (RTFS, ApiResult(STATE_SUMMARY, Outcome.FORBIDDEN, 403, None, "HTTP 403"), None),
    # Only the legacy endpoints refuse naming RTFS: from the RTFS ones such a text proves nothing.
    (RTFS, ApiResult(STATE_SUMMARY, Outcome.ERROR, 400, REFUSAL, f"HTTP 400: {REFUSAL}"), None),
    (LEGACY, ApiResult(MIRRORS_LAG, Outcome.SUCCESS, 200, []), True),
    (LEGACY, ApiResult(MIRRORS_LAG, Outcome.UNSUPPORTED, 404, "", "HTTP 404"), False),
    (LEGACY, ApiResult(MIRRORS_LAG, Outcome.ERROR, 400, REFUSAL, f"HTTP 400: {REFUSAL}"), False),
    (LEGACY, ApiResult(MIRRORS_LAG, Outcome.ERROR, 500, "", "HTTP 500"), None),
    (LEGACY, ApiResult(MIRRORS_LAG, Outcome.TIMEOUT, None, None, "no answer"), None),
])
def test_probe_verdict(mode: str, result: ApiResult, active: bool | None) -> None:
    assert probe_verdict(mode, result) is active


# -- legacy per-repository status ------------------------------------------------------------------------


def test_per_repo_status_fills_only_the_lags_mirrors_lag_lacks_and_adds_queued_events() -> None:
    status = LegacyRepoStatus("fed", None, [
        LegacyMirror("fed-us", US, "healthy", 3, 9.0),
        LegacyMirror("fed-ap", AP, "out_of_sync", 40, 8.0),
        LegacyMirror("fed-xx", "https://xx.example.com/artifactory", "healthy", 0, 7.0),
    ])
    reported = [Lag("fed", "fed-us", US, 1.5), Lag("fed", "fed-ap", AP, None), Lag("other", "other", US, 2.0)]
    lags = {(lag.repo, lag.remote_repo): lag.lag_seconds for lag in legacy_lags(reported, {"fed": status})}
    # mirrorsLag's own lag wins; where it has none, the status has the word.
    assert lags == {("fed", "fed-us"): 1.5, ("fed", "fed-ap"): 8.0, ("fed", "fed-xx"): 7.0, ("other", "other"): 2.0}
    assert legacy_lags(reported, {}) == reported
    queues = {(lag.remote_repo, lag.lag_seconds, lag.queued_events) for lag in legacy_queues({"fed": status})}
    assert queues == {("fed-us", None, 3), ("fed-ap", None, 40), ("fed-xx", None, 0)}


def test_per_repo_status_has_the_last_word_on_member_states() -> None:
    members = [Member("fed", "fed-us", US, "healthy"), Member("fed", "fed-ap", AP, "out_of_sync"),
               Member("other", "other", US, "disabled")]
    status = LegacyRepoStatus("fed", 0, [LegacyMirror("fed-ap", AP + "/", "pending_full_sync", 1, 0.0),
                                         LegacyMirror("fed-eu", US, "error", 0, 0.0)])
    got = {(m.repo, m.remote_repo): m.state for m in with_repo_statuses(members, {"fed": status})}
    assert got == {("fed", "fed-us"): "healthy", ("fed", "fed-ap"): "pending_full_sync",
                   ("other", "other"): "disabled", ("fed", "fed-eu"): "error"}
    assert with_repo_statuses(members, {}) == members


# -- families ------------------------------------------------------------------------------------------


def test_summary_families_report_every_documented_state_and_any_other() -> None:
    out = Emitter("t")
    summary_families({"HEALTHY": 6, "DELAYED": 2, "SPLIT_BRAIN": 1}, out)
    got = {dict(labels)["state"]: v for (_, labels), v in built(out).items()}
    assert got == {"HEALTHY": 6, "NOT_AVAILABLE": 0, "DELAYED": 2, "PENDING_FS": 0, "FULL_SYNC_RUNNING": 0,
                   "ERROR": 0, "DISABLED": 0, "SPLIT_BRAIN": 1}


def test_member_families_one_state_set_per_member() -> None:
    out = Emitter("t")
    member_families([
        Member("fed", "fed-us", US, "delayed", in_lag=True),
        Member("fed", "fed-us", US + "/", "healthy", in_lag=False),  # the same member again: the first wins
        Member("fed", "fed-ap", AP, "split_brain"),  # undocumented: reported as unknown
        Member("fed", "fed-xx", "https://xx.example.com/artifactory", None),
    ], out)
    samples = built(out)
    labels = {"repo": "fed", "remote_repo": "fed-us", "remote_url": US}
    on = [dict(lbls)["status"] for (name, lbls), v in samples.items()
          if name == "jfrog_federation_member_status" and v == 1 and dict(lbls)["remote_repo"] == "fed-us"]
    assert on == ["delayed"]
    assert len([k for k in samples if dict(k[1])["remote_repo"] == "fed-us"]) == len(MEMBER_STATES) + 1
    assert samples[("jfrog_federation_member_in_lag", frozenset(labels.items()))] == 1
    assert samples[("jfrog_federation_member_status", frozenset({**labels, "remote_repo": "fed-ap",
                                                                 "remote_url": AP, "status": "unknown"}.items()))] == 1
    # No state known: every documented state 0, no unknown series.
    xx = [(dict(k[1])["status"], v) for k, v in samples.items() if dict(k[1])["remote_repo"] == "fed-xx"]
    assert sorted(xx) == sorted((s, 0.0) for s in MEMBER_STATES)
    # Without inLag (legacy) no in_lag series, but its HELP still shows.
    assert ("jfrog_federation_member_in_lag", frozenset({**labels, "remote_repo": "fed-ap",
                                                         "remote_url": AP}.items())) not in samples
    empty = Emitter("t")
    member_families([], empty)
    assert names(empty) == {"jfrog_federation_member_status", "jfrog_federation_member_in_lag"}


def test_lag_families_last_report_wins_and_no_value_is_no_series() -> None:
    out = Emitter("t")
    lag_families([Lag("fed", "fed-us", US, 1.0, 5), Lag("fed", "fed-us", US, 2.0, 6),
                  Lag("fed", "fed-ap", AP, None, 7), Lag("fed", "fed-xx", AP, 3.0)], out)
    got = {(name, dict(lbls)["remote_repo"]): v for (name, lbls), v in built(out).items()}
    assert got == {
        ("jfrog_federation_lag_seconds", "fed-us"): 2.0, ("jfrog_federation_queued_events", "fed-us"): 6,
        ("jfrog_federation_queued_events", "fed-ap"): 7, ("jfrog_federation_lag_seconds", "fed-xx"): 3.0,
    }


def test_inconsistent_families() -> None:
    out = Emitter("t")
    inconsistent_families(["fed-b", "fed-b", "fed-gone"], ["fed-a", "fed-b"], out)
    assert built(out) == {
        ("jfrog_federation_inconsistent_repos", frozenset()): 2,
        ("jfrog_federation_repo_inconsistent", frozenset({("repo", "fed-a")})): 0,
        ("jfrog_federation_repo_inconsistent", frozenset({("repo", "fed-b")})): 1,
        ("jfrog_federation_repo_inconsistent", frozenset({("repo", "fed-gone")})): 1,
    }


def test_failed_tasks_families() -> None:
    out = Emitter("t")
    failed_tasks_families({"fed-a": FailedTasks(3), "fed-b": FailedTasks(2000, truncated=True),
                           "fed-old": FailedTasks(None)}, out)
    assert built(out) == {
        ("jfrog_federation_failed_binary_tasks", frozenset({("repo", "fed-a")})): 3,
        ("jfrog_federation_failed_binary_tasks", frozenset({("repo", "fed-b")})): 2000,
        ("jfrog_federation_failed_binary_tasks_truncated_repos", frozenset()): 1,
    }
    none = Emitter("t")
    failed_tasks_families({}, none)
    assert built(none) == {}
    assert names(none) == {"jfrog_federation_failed_binary_tasks",
                           "jfrog_federation_failed_binary_tasks_truncated_repos"}


# -- the collector against a mocked legacy JPD without the v2 status endpoint ----------------------------


def legacy_jpd_without_v2(calls: list[str]) -> httpx.MockTransport:
    answers: dict[str, object] = {
        "/artifactory/api/federation/status/mirrorsLag": [
            {"localRepoKey": "fed", "remoteUrl": US + "/", "remoteRepoKey": "fed-us", "lagInMS": 1500}],
        "/artifactory/api/federation/status/unavailableMirrors": [],
        "/artifactory/api/federation/state": [
            {"localRepoKey": "fed", "status": "SYNCING",
             "members": [{"remoteUrl": US + "/", "remoteRepoKey": "fed-us"}]}],
        "/artifactory/api/repositories": [{"key": "fed", "type": "FEDERATED"}],
        "/artifactory/api/federation/binaries/failures/list": [],
        "/artifactory/api/federation/status/repo/fed": {
            "localKey": "fed", "mirrorEventsStatusInfo": [
                {"remoteUrl": US, "remoteRepoKey": "fed-us", "status": "OUT_OF_SYNC", "createEvents": 4,
                 "lagInMS": 9000}]},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path in answers:
            return httpx.Response(200, json=answers[request.url.path])
        return httpx.Response(404, json={"errors": [{"status": 404, "message": "Not Found"}]})

    return jfrog_platform(handle)


async def test_legacy_status_falls_back_to_v1_and_remembers_it() -> None:
    target = make_target("http://jpd.test", retries=0, collectors={"federation": {"legacy_repo_status": True}})
    calls: list[str] = []
    client = JfrogClient(target, transport=legacy_jpd_without_v2(calls))
    settings = target.collector_settings("federation")
    assert isinstance(settings, FederationSettings)
    collector = FederationCollector(target, settings)
    try:
        first = Run(target, client, "federation")
        await collector.collect(first)
        second = Run(target, client, "federation")
        calls.clear()
        await collector.collect(second)
    finally:
        await client.aclose()
    # The first run's part is the v2 one (it found v1); the next runs ask v1 alone.
    assert LEGACY_REPO_STATUS_V2 in first.parts
    assert first.parts[LEGACY_REPO_STATUS_V2].outcome is Outcome.SUCCESS
    assert LEGACY_REPO_STATUS_V2 not in second.parts
    assert second.parts[LEGACY_REPO_STATUS_V1].outcome is Outcome.SUCCESS
    assert "/artifactory/api/v2/federation/status/repo/fed" not in calls
    assert all(p.outcome in (Outcome.SUCCESS, Outcome.UNSUPPORTED) for p in second.parts.values())
    assert second.parts[FAILED_TASKS].outcome is Outcome.SUCCESS
    status = second.parts[LEGACY_REPO_STATUS_V1].families
    lags = second.parts[MIRRORS_LAG].families
    assert status is not None
    assert lags is not None
    # The status adds the queue; the lag is mirrorsLag's, reported by its part alone.
    assert {(s.name, s.labels["remote_repo"]): s.value for f in status for s in f.samples} == {
        ("jfrog_federation_queued_events", "fed-us"): 4}
    assert {(s.name, s.labels.get("remote_repo", "")): s.value for f in lags for s in f.samples} == {
        ("jfrog_federation_service_info", ""): 1, ("jfrog_federation_lag_seconds", "fed-us"): 1.5}
    members = second.parts["/artifactory/api/federation/state"].families
    assert members is not None
    on = [s.labels["status"] for f in members for s in f.samples if s.value == 1]
    assert on == ["out_of_sync"]
