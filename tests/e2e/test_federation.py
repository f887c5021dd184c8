"""Collector `federation`: the simulator's scenarios over HTTP, both services, a switch, failing parts."""

from __future__ import annotations

import logging
from functools import partial

import httpx

from exporter.collectors.federation import (
    CONNECTION_STATES,
    FAILED_TASKS,
    FEDERATION_STATE,
    INCONSISTENT,
    LEGACY_REPO_STATUS_V1,
    LEGACY_REPO_STATUS_V2,
    MIRRORS_LAG,
    REPOSITORIES,
    STATE_LIST,
    STATE_SUMMARY,
    UNAVAILABLE_MIRRORS,
)
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_TOKEN
from exporter.simulator.faults import Fault
from exporter.simulator.federation_data import area
from tests.conftest import make_target
from tests.support import Clock, endpoint_last_success, endpoint_up, run_and_scrape, series, value

US = "https://art-us.example.com/artifactory"
AP = "https://art-ap.example.com/artifactory"
RTFS_PARTS = {STATE_SUMMARY, STATE_LIST, REPOSITORIES, INCONSISTENT, CONNECTION_STATES, FAILED_TASKS}
LEGACY_PARTS = {MIRRORS_LAG, REPOSITORIES, INCONSISTENT, FAILED_TASKS, FEDERATION_STATE}


up = partial(endpoint_up, collector="federation")
last_success = partial(endpoint_last_success, collector="federation")
collect = partial(run_and_scrape, collector="federation")


def calls(engine: Engine, endpoint: str, code: str | None = None) -> int:
    stats = engine.targets["sim"].client.stats
    return sum(n for (ep, c), n in stats.counts.items() if ep == endpoint and (code is None or c == code))


def parts(engine: Engine) -> set[str]:
    """The parts the last run had."""
    return {p.endpoint for p in engine.store.run("sim", "federation").parts}








def current_state(samples, **labels: str) -> str:
    """The one status of a member state set that is 1."""
    on = [s["status"] for s in series(samples, "jfrog_federation_member_status", **labels)
          if value(samples, "jfrog_federation_member_status", **labels, status=s["status"]) == 1]
    assert len(on) == 1, (labels, on)
    return on[0]


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
    assert parts(engine) == RTFS_PARTS
    assert all(up(samples, endpoint) == 1 for endpoint in RTFS_PARTS)
    # The probe's answer is the stateSummary part's: one call.
    assert calls(engine, STATE_SUMMARY) == 1


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
    assert calls(engine, MIRRORS_LAG) == 1
    assert parts(engine) == LEGACY_PARTS


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
    assert parts(engine) == LEGACY_PARTS | {LEGACY_REPO_STATUS_V2}
    assert calls(engine, LEGACY_REPO_STATUS_V1) == 0


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
        before = await collect(engine)
        state.switch("federation-rtfs")
        samples = await collect(engine)
    finally:
        await engine.shutdown()
    assert value(before, "jfrog_federation_lag_seconds", repo="fed-generic", remote_url=US) == 7200.0
    assert value(samples, "jfrog_federation_service_info", mode="rtfs") == 1
    # The legacy parts were not run: their families and their endpoints' records are gone, not kept.
    assert parts(engine) == RTFS_PARTS
    assert up(samples, MIRRORS_LAG) is None
    assert up(samples, FEDERATION_STATE) is None
    assert value(samples, "jfrog_federation_lag_seconds", repo="fed-generic", remote_url=US) == 3600.0
    assert len(series(samples, "jfrog_federation_member_status", status="healthy")) == 12
    assert current_state(samples, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "delayed"
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
    reason = engine.store.run("sim", "federation").reason
    # Said once: the client names the permission an endpoint needs.
    assert reason.count("needs an admin user") == 1, reason
    assert any(getattr(r, "collector", None) == "federation" and r.getMessage().startswith("failed: forbidden")
               for r in caplog.records)
    assert "needs an admin user" in caplog.text
    # Forbidden says nothing about the mode: the legacy endpoints were not tried.
    assert calls(engine, MIRRORS_LAG) == 0
    # Nor were the other calls, which would be refused too; their parts ended as the probe did.
    assert calls(engine, STATE_LIST) == calls(engine, FAILED_TASKS) == calls(engine, REPOSITORIES) == 0
    assert parts(engine) == RTFS_PARTS
    assert all(up(samples, endpoint) == 0 for endpoint in RTFS_PARTS)


async def test_edition_without_federation_reports_nothing(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, engine = await collect_once([make_target(url)], only=["federation"])
    assert value(samples, "jfrog_exporter_collector_success", collector="federation") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="federation", outcome="unsupported") == 1
    assert series(samples, "jfrog_federation_member_status") == []
    assert parts(engine) == {STATE_SUMMARY}
    assert "neither the Federation service (RTFS) nor the legacy" in engine.store.run("sim", "federation").reason


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


# -- one part fails, the others stay current ---------------------------------------------------------


async def test_one_endpoint_fails_the_others_stay_current(sim) -> None:
    url, state = await sim.start("federation-rtfs")
    clock = Clock()
    engine = Engine([make_target(url, retries=0)], ["federation"], clock=clock)
    try:
        before = await collect(engine)
        state.faults.append(Fault.parse(f"{FAILED_TASKS}=error_500"))
        fed = area(state.scenario)
        assert fed is not None
        maven = fed.find("fed-maven-eu")
        assert maven is not None
        maven.failed_binary_tasks = 5
        maven.members[1].state, maven.members[1].lag_ms = "HEALTHY", 1_000
        fed.find("fed-npm").inconsistent = True  # type: ignore[union-attr]
        clock.advance(3600)  # the sweep reads every repository's details again
        after = await collect(engine)
    finally:
        await engine.shutdown()
    assert up(after, FAILED_TASKS) == 0
    assert last_success(after, FAILED_TASKS) == last_success(before, FAILED_TASKS)
    for endpoint in RTFS_PARTS - {FAILED_TASKS}:
        assert up(after, endpoint) == 1, endpoint
        assert last_success(after, endpoint) > last_success(before, endpoint), endpoint
    # The failed part's series are kept as they were.
    assert value(after, "jfrog_federation_failed_binary_tasks", repo="fed-maven-eu") == 3
    assert value(after, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2500
    assert value(after, "jfrog_federation_failed_binary_tasks_truncated_repos") == 0
    # The others report the change.
    assert value(after, "jfrog_federation_federations", state="DELAYED") == 0
    assert current_state(after, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "healthy"
    assert value(after, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 1.0
    assert value(after, "jfrog_federation_repo_inconsistent", repo="fed-npm") == 1
    assert value(after, "jfrog_exporter_collector_success", collector="federation") == 0
    reason = engine.store.run("sim", "federation").reason
    assert f"first: {FAILED_TASKS}: 8 of 8 calls failed; first: {FAILED_TASKS} for " in reason
    assert "HTTP 500" in reason


async def test_a_failing_step_fails_the_part_named_after_the_family_set(sim) -> None:
    # Legacy member states come from federation/state, unavailableMirrors and mirrorsLag: one part.
    url, state = await sim.start("federation-legacy")
    engine = Engine([make_target(url, retries=0)], ["federation"])
    try:
        before = await collect(engine)
        state.faults.append(Fault.parse(f"{UNAVAILABLE_MIRRORS}=html_502"))
        fed = area(state.scenario)
        assert fed is not None
        maven = fed.find("fed-maven-eu")
        assert maven is not None
        maven.members[1].state, maven.members[1].lag_ms = "HEALTHY", 6_000
        after = await collect(engine)
    finally:
        await engine.shutdown()
    assert current_state(before, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "out_of_sync"
    assert up(after, FEDERATION_STATE) == 0
    assert last_success(after, FEDERATION_STATE) == last_success(before, FEDERATION_STATE)
    assert current_state(after, repo="fed-maven-eu", remote_repo="fed-maven-ap") == "out_of_sync"
    for endpoint in LEGACY_PARTS - {FEDERATION_STATE}:
        assert up(after, endpoint) == 1, endpoint
        assert last_success(after, endpoint) > last_success(before, endpoint), endpoint
    assert value(after, "jfrog_federation_lag_seconds", repo="fed-maven-eu", remote_repo="fed-maven-ap") == 6.0
    reason = engine.store.run("sim", "federation").reason
    assert f"first: {FEDERATION_STATE}: {UNAVAILABLE_MIRRORS}: " in reason
    assert "HTTP 502" in reason


async def test_connections_wait_for_the_member_list_that_tells_them_apart(sim) -> None:
    url, state = await sim.start("federation-rtfs")
    clock = Clock()
    engine = Engine([make_target(url, retries=0)], ["federation"], clock=clock)
    try:
        before = await collect(engine)
        state.faults.append(Fault.parse(f"{STATE_LIST}=wrong_type"))
        fed = area(state.scenario)
        assert fed is not None
        generic = fed.find("fed-generic")
        assert generic is not None
        generic.members[0].lag_ms, generic.failed_binary_tasks = 60_000, 7
        clock.advance(3600)  # the sweep reads every repository's details again
        after = await collect(engine)
    finally:
        await engine.shutdown()
    assert up(after, STATE_LIST) == 0
    assert up(after, CONNECTION_STATES) == 0
    # Not called at all in the second run: its lags are the first run's.
    assert calls(engine, CONNECTION_STATES) == 8
    assert value(after, "jfrog_federation_lag_seconds", repo="fed-generic", remote_url=US) == 3600.0
    assert len(series(after, "jfrog_federation_member_status", status="healthy")) == 12
    assert value(after, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 7
    assert up(after, FAILED_TASKS) == 1
    run = engine.store.run("sim", "federation")
    assert f"first: {STATE_LIST}: unexpected shape" in run.reason
    [connections] = [p for p in run.parts if p.endpoint == CONNECTION_STATES]
    assert connections.reason == f"not read: {STATE_LIST} failed"
    assert connections.outcome == "bad_response"
    assert value(before, "jfrog_federation_lag_seconds", repo="fed-generic", remote_url=US) == 3600.0


async def test_a_probe_that_cannot_tell_lets_the_remembered_service_run(sim, caplog) -> None:
    url, state = await sim.start("federation-rtfs")
    engine = Engine([make_target(url, retries=0)], ["federation"])
    try:
        before = await collect(engine)
        state.faults.append(Fault.parse(f"{STATE_SUMMARY}=error_500"))
        fed = area(state.scenario)
        assert fed is not None
        fed.find("fed-go").members[0].state = "ERROR"  # type: ignore[union-attr]
        with caplog.at_level(logging.INFO):
            after = await collect(engine)
    finally:
        await engine.shutdown()
    # The legacy service refused, so this is still the Federation service; its summary alone is not current.
    assert calls(engine, MIRRORS_LAG, "400") == 1
    assert parts(engine) == RTFS_PARTS
    assert up(after, STATE_SUMMARY) == 0
    assert value(after, "jfrog_federation_service_info", mode="rtfs") == 1
    assert value(after, "jfrog_federation_federations", state="ERROR") == value(before,
                                                                               "jfrog_federation_federations",
                                                                               state="ERROR") == 1
    assert current_state(after, repo="fed-go", remote_url=US) == "error"
    assert all(up(after, endpoint) == 1 for endpoint in RTFS_PARTS - {STATE_SUMMARY})
    assert "federation service is now" not in caplog.text


async def test_a_failing_per_repo_status_leaves_one_series_per_member(sim) -> None:
    url, state = await sim.start("federation-legacy")
    target = make_target(url, retries=0, collectors={"federation": {"legacy_repo_status": True}})
    engine = Engine([target], ["federation"])
    try:
        before = await collect(engine)
        state.faults.append(Fault.parse("/artifactory/api/v2/federation/status/repo/*=error_500"))
        fed = area(state.scenario)
        assert fed is not None
        generic = fed.find("fed-generic")
        assert generic is not None
        generic.members[0].queued_events, generic.members[0].lag_ms = 5, 60_000
        after = await collect(engine)
    finally:
        await engine.shutdown()
    assert up(after, LEGACY_REPO_STATUS_V2) == 0
    assert all(up(after, endpoint) == 1 for endpoint in LEGACY_PARTS)
    # Queued events are the status part's, kept; lags are mirrorsLag's, current (value() refuses duplicates).
    assert value(before, "jfrog_federation_queued_events", repo="fed-generic") == 900
    assert value(after, "jfrog_federation_queued_events", repo="fed-generic") == 900
    assert value(after, "jfrog_federation_lag_seconds", repo="fed-generic") == 60.0
    assert current_state(after, repo="fed-generic", remote_url=US) == "error"
    assert f"first: {LEGACY_REPO_STATUS_V2}: 6 of 6 calls failed" in engine.store.run("sim", "federation").reason


async def test_details_are_read_where_a_member_changed_or_lags_and_in_the_sweep(sim) -> None:
    url, state = await sim.start("federation-rtfs")
    clock = Clock()
    engine = Engine([make_target(url)], ["federation"], clock=clock)
    fed = area(state.scenario)
    assert fed is not None
    repos = {repo.key for repo in fed.repos}
    lagging = {repo.key for repo in fed.repos if any(m.in_lag for m in repo.members)}
    assert lagging and lagging != repos
    try:
        await collect(engine)
        assert calls(engine, CONNECTION_STATES) == len(repos)
        failed_task_calls = calls(engine, FAILED_TASKS)  # a page or more per repository
        clock.advance(60)
        quiet = next(r for r in fed.repos if r.key not in lagging and r.members[0].state == "HEALTHY")
        quiet.members[0].state, quiet.members[0].lag_ms = "ERROR", 7_000
        generic = fed.find("fed-generic")
        assert generic is not None
        generic.failed_binary_tasks = 9
        changed = await collect(engine)
        # The member that changed state, right away: its state and its lag.
        assert calls(engine, CONNECTION_STATES) == len(repos) + 1
        member = {"repo": quiet.key, "remote_url": quiet.members[0].url}
        assert current_state(changed, **member) == "error"
        assert value(changed, "jfrog_federation_lag_seconds", **member) == 7.0
        # Failed binary tasks wait for the sweep; what was counted stays.
        assert calls(engine, FAILED_TASKS) == failed_task_calls
        assert value(changed, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 2500
        clock.advance(300)
        await collect(engine)
        # Members in lag: their lag again after lag_interval (5 minutes).
        assert calls(engine, CONNECTION_STATES) == len(repos) + 1 + len(lagging)
        clock.advance(3600)
        swept = await collect(engine)
        assert value(swept, "jfrog_federation_failed_binary_tasks", repo="fed-generic") == 9
        assert up(swept, FAILED_TASKS) == 1
    finally:
        await engine.shutdown()
