"""Collector `federation`: documented payloads of both services, then the simulator's scenarios over HTTP."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from exporter.client import ApiResult, Outcome
from exporter.collectors.federation import (
    CONNECTION_STATES,
    FAILED_TASKS,
    LEGACY_REPO_STATUS_V1,
    LEGACY_REPO_STATUS_V2,
    MEMBER_STATES,
    MIRRORS_LAG,
    STATE_SUMMARY,
    is_rtfs_refusal,
    legacy_members,
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
)
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_TOKEN
from tests.conftest import make_target
from tests.support import REPO, parse_exposition, series, value

PAYLOADS = REPO / "tests" / "payloads" / "federation"
US = "https://art-us.example.com/artifactory"
AP = "https://art-ap.example.com/artifactory"


def load(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def calls(engine: Engine, endpoint: str, code: str | None = None) -> int:
    stats = engine.targets["sim"].client.stats
    return sum(n for (ep, c), n in stats.counts.items() if ep == endpoint and (code is None or c == code))


def current_state(samples, **labels: str) -> str:
    """The one status of a member state set that is 1."""
    on = [s["status"] for s in series(samples, "jfrog_federation_member_status", **labels)
          if value(samples, "jfrog_federation_member_status", **labels, status=s["status"]) == 1]
    assert len(on) == 1, (labels, on)
    return on[0]


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
    assert [(m.repo, m.remote_repo, m.remote_url, m.lag_seconds) for m in lags] == [
        ("example-repo-local", "test1-repo", "http://docker.for.mac.localhost:10103/artifactory", 1.5),
        ("example-repo-local", "test2-repo", "http://docker.for.mac.localhost:10102/artifactory", 5.2),
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


def test_rtfs_refusal_is_recognised_whatever_the_status() -> None:
    text = "RTFS is enabled therefore get unavailable mirrors is not allowed"
    assert is_rtfs_refusal(ApiResult("/x", Outcome.ERROR, 400, text, f"HTTP 400: {text}"))
    assert is_rtfs_refusal(ApiResult("/x", Outcome.BAD_RESPONSE, 200, text, "expected JSON, got text"))
    assert not is_rtfs_refusal(ApiResult("/x", Outcome.ERROR, 500, "Internal error", "HTTP 500: Internal error"))
    assert not is_rtfs_refusal(ApiResult("/x", Outcome.SUCCESS, 200, [], ""))


# -- end to end over the simulator -------------------------------------------------------------------


async def test_rtfs_scenario(sim, collect_once) -> None:
    url, _ = await sim.start("federation-rtfs")
    samples, engine = await collect_once([make_target(url)], only=["federation"])
    assert value(samples, "jfrog_exporter_collector_success", collector="federation") == 1
    assert value(samples, "jfrog_federation_service_info", mode="rtfs") == 1
    assert series(samples, "jfrog_federation_service_info", mode="legacy") == []
    # Each Federation counts under its most severe member state.
    assert {s["state"]: value(samples, "jfrog_federation_federations", state=s["state"])
            for s in series(samples, "jfrog_federation_federations")} == {
        "HEALTHY": 2, "NOT_AVAILABLE": 1, "DELAYED": 1, "PENDING_FS": 1, "FULL_SYNC_RUNNING": 1, "ERROR": 1,
        "DISABLED": 1}
    assert current_state(samples, repo="fed-maven-eu", remote_repo="fed-maven-us") == "healthy"
    assert current_state(samples, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "delayed"
    assert current_state(samples, repo="fed-docker", remote_url=US) == "pending_full_sync"
    assert current_state(samples, repo="fed-npm", remote_url=US) == "full_sync_running"
    assert current_state(samples, repo="fed-generic", remote_url=US) == "error"
    assert current_state(samples, repo="fed-generic", remote_url=AP) == "disabled"
    assert current_state(samples, repo="fed-pypi", remote_url=US) == "not_available"
    assert current_state(samples, repo="fed-helm", remote_url=US) == "disabled"
    assert len(series(samples, "jfrog_federation_member_status", status="healthy")) == 12
    assert value(samples, "jfrog_federation_member_in_lag", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 1
    # Lag and queue of this JPD's outgoing connections, lagInMs in seconds.
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-ap",
                 remote_url=AP) == 95.0
    assert value(samples, "jfrog_federation_queued_events", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 42
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-generic", remote_url=US) == 3600.0
    assert value(samples, "jfrog_federation_queued_events", repo="fed-generic", remote_url=US) == 1234
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-us") == 0.12
    assert len(series(samples, "jfrog_federation_lag_seconds")) == 12
    # Connections between the other members (lag 777 s in the simulator) are not this JPD's.
    assert all(v != 777.0 for (n, _), v in samples.items() if n == "jfrog_federation_lag_seconds")
    assert value(samples, "jfrog_federation_inconsistent_repos") == 2
    assert value(samples, "jfrog_federation_repo_inconsistent", repo="fed-docker") == 1
    assert value(samples, "jfrog_federation_repo_inconsistent", repo="fed-npm") == 0
    # 2,500 failed tasks over pages of 1,000; three on one page.
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2500
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-maven-eu") == 3
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-go") == 0
    assert value(samples, "jfrog_federation_failed_binary_tasks_truncated_repos") == 0
    assert calls(engine, FAILED_TASKS) == 8 + 2
    assert calls(engine, CONNECTION_STATES) == 8
    # The legacy endpoints are never asked on an RTFS JPD that answered.
    assert calls(engine, MIRRORS_LAG) == 0


async def test_legacy_scenario(sim, collect_once) -> None:
    url, _ = await sim.start("federation-legacy")
    samples, engine = await collect_once([make_target(url)], only=["federation"])
    assert value(samples, "jfrog_exporter_collector_success", collector="federation") == 1
    assert value(samples, "jfrog_federation_service_info", mode="legacy") == 1
    assert series(samples, "jfrog_federation_federations") == []
    assert current_state(samples, repo="fed-maven-eu", remote_repo="fed-maven-us") == "healthy"
    assert current_state(samples, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "out_of_sync"
    assert current_state(samples, repo="fed-docker", remote_url=US) == "pending_full_sync"
    assert current_state(samples, repo="fed-npm", remote_url=US) == "full_sync_running"
    assert current_state(samples, repo="fed-generic", remote_url=US) == "error"
    assert current_state(samples, repo="fed-helm", remote_url=US) == "disabled"
    assert current_state(samples, repo="libs-federated", remote_url=US) == "healthy"
    # lagInMS in seconds; the legacy trailing slash is not part of the label.
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-ap",
                 remote_url=AP) == 5.2
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-generic") == 7200.0
    # Queued events come only from the heavy per-repository endpoint, which is not called by default.
    assert series(samples, "jfrog_federation_queued_events") == []
    assert calls(engine, LEGACY_REPO_STATUS_V2) == calls(engine, LEGACY_REPO_STATUS_V1) == 0
    assert value(samples, "jfrog_federation_inconsistent_repos") == 2
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2500
    # The first run asked the Federation service first: one 404, then the legacy endpoints.
    assert calls(engine, STATE_SUMMARY, "404") == 1


async def test_legacy_per_repo_status_when_enabled(sim, collect_once) -> None:
    url, _ = await sim.start("federation-legacy")
    target = make_target(url, collectors={"federation": {"legacy_repo_status": True}})
    samples, engine = await collect_once([target], only=["federation"])
    assert calls(engine, LEGACY_REPO_STATUS_V2) == 6
    assert value(samples, "jfrog_federation_queued_events", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 40
    assert value(samples, "jfrog_federation_queued_events", repo="fed-generic") == 900
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 5.2
    assert current_state(samples, repo="fed-generic", remote_url=US) == "error"
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2500


async def test_rtfs_jpd_refuses_the_legacy_endpoints_in_plain_text(sim) -> None:
    url, _ = await sim.start("federation-rtfs")
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"}) as http:
        response = await http.get(MIRRORS_LAG)
    assert response.headers["content-type"].startswith("text/plain")
    assert "RTFS is enabled therefore" in response.text


async def test_mode_is_detected_again_after_an_upgrade(sim) -> None:
    url, state = await sim.start("federation-legacy")
    engine = Engine([make_target(url)], ["federation"])
    try:
        assert await engine.run_collector("sim", "federation") == "success"
        state.switch("federation-rtfs")
        assert await engine.run_collector("sim", "federation") == "success"
        await engine.render_now()
    finally:
        await engine.shutdown()
    samples = parse_exposition(engine.store.payload.text.decode())
    assert value(samples, "jfrog_federation_service_info", mode="rtfs") == 1
    assert series(samples, "jfrog_federation_service_info", mode="legacy") == []
    # The second run asked the legacy service first, was refused, and was not counted as a failure.
    assert calls(engine, MIRRORS_LAG, "400") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="federation", outcome="success") == 2
    assert value(samples, "jfrog_federation_federations", state="DELAYED") == 1


async def test_failed_task_pages_are_bounded(sim, collect_once, caplog) -> None:
    url, _ = await sim.start("federation-rtfs")
    target = make_target(url, collectors={"federation": {"failed_tasks_max_pages": 2}})
    with caplog.at_level(logging.WARNING):
        samples, engine = await collect_once([target], only=["federation"])
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2000
    assert value(samples, "jfrog_federation_failed_binary_tasks_truncated_repos") == 1
    assert calls(engine, FAILED_TASKS) == 8 + 1
    assert "counted only up to 2 pages for fed-generic" in caplog.text


async def test_repo_filters_apply_before_per_repo_calls(sim, collect_once) -> None:
    url, _ = await sim.start("federation-rtfs")
    samples, engine = await collect_once([make_target(url, repos={"include": ["^fed-maven"]})], only=["federation"])
    assert {s["repo"] for s in series(samples, "jfrog_federation_member_status")} == {"fed-maven-eu"}
    assert {s["repo"] for s in series(samples, "jfrog_federation_failed_binary_tasks")} == {"fed-maven-eu"}
    assert calls(engine, CONNECTION_STATES) == 1
    assert calls(engine, FAILED_TASKS) == 1
    assert value(samples, "jfrog_federation_inconsistent_repos") == 0


async def test_non_admin_token_is_forbidden_and_says_why(sim, collect_once, caplog) -> None:
    url, _ = await sim.start("federation-rtfs")
    with caplog.at_level(logging.WARNING):
        samples, engine = await collect_once([make_target(url, token="simulator-reader-token")],
                                             only=["federation"])
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="federation", outcome="forbidden") == 1
    assert "requires an admin user" in engine.store.run("sim", "federation").reason
    assert "collector=federation failed: forbidden" in caplog.text
    assert "requires an admin user" in caplog.text
    # Forbidden says nothing about the mode: the legacy endpoints were not tried.
    assert calls(engine, MIRRORS_LAG) == 0


async def test_edition_without_federation_reports_nothing(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["federation"])
    assert value(samples, "jfrog_exporter_collector_success", collector="federation") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="federation", outcome="unsupported") == 1
    assert series(samples, "jfrog_federation_member_status") == []


async def test_large_scenario(sim, collect_once) -> None:
    url, state = await sim.start("large")
    samples, engine = await collect_once([make_target(url, max_concurrency=16)], only=["federation"])
    assert value(samples, "jfrog_exporter_collector_success", collector="federation") == 1
    assert len(series(samples, "jfrog_federation_member_status", status="healthy")) == 500 * 3
    assert len(series(samples, "jfrog_federation_lag_seconds")) == 500 * 3
    assert calls(engine, CONNECTION_STATES) == 500
    # The repository with 25,000 failed tasks is counted up to the default bound of 10 pages of 1,000.
    first = state.scenario.areas["federation"].repos[0].key
    assert value(samples, "jfrog_federation_failed_binary_tasks", repo=first) == 10_000
    assert value(samples, "jfrog_federation_failed_binary_tasks_truncated_repos") == 1
    assert sum(s for (n, _), s in samples.items() if n == "jfrog_federation_federations") == 500
