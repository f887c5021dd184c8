"""Collector `replication`: the simulator's scenarios over HTTP."""

from __future__ import annotations

import logging
from functools import partial

import pytest

from exporter.collectors.replication import ALL_CONFIGS, REPO_CONFIG, REPO_STATUS, STATES, SYSTEM
from exporter.scheduler import Engine
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import today_midnight
from tests.conftest import make_target
from tests.support import Clock, endpoint_last_success, endpoint_up, parse_exposition, run_and_scrape, series, value

HOUR = 3600


_up = partial(endpoint_up, collector="replication")
_last_success = partial(endpoint_last_success, collector="replication")
_run = partial(run_and_scrape, collector="replication")


def calls(engine, endpoint: str, target: str = "sim") -> int:
    stats = engine.targets[target].client.stats
    return sum(count for (ep, _), count in stats.counts.items() if ep == endpoint)


async def test_replication_scenario(sim, collect_once) -> None:
    url, _ = await sim.start("replication")
    samples, engine = await collect_once([make_target(url)], only=["replication"])
    day = today_midnight()
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 1
    assert value(samples, "jfrog_replication_blocked", direction="push") == 1
    assert value(samples, "jfrog_replication_blocked", direction="pull") == 0

    expected = {"libs-release-local": "error", "libs-snapshot-local": "ok", "docker-local": "never_run",
                "npm-local": "incomplete", "generic-local": "inconsistent", "pypi-local": "warn",
                "maven-remote": "ok"}
    for repo, current in expected.items():
        for state in STATES:
            assert value(samples, "jfrog_replication_status", repo=repo, status=state) == (state == current), (
                repo, state)
    assert value(samples, "jfrog_replication_last_completed_timestamp_seconds", repo="npm-local") == day - 48 * HOUR
    assert value(samples, "jfrog_replication_last_completed_timestamp_seconds", repo="libs-release-local") == (
        day - 1 * HOUR)
    assert series(samples, "jfrog_replication_last_completed_timestamp_seconds", repo="docker-local") == []

    # The multi-push repository: three targets, each with its own status; user-info stripped.
    assert value(samples, "jfrog_replication_targets", repo="libs-release-local") == 3
    targets = {(s["remote_url"], s["remote_repo"]) for s in
               series(samples, "jfrog_replication_target_status", repo="libs-release-local", status="ok")}
    assert targets == {
        ("https://dr-eu.example.com/artifactory/libs-release-local", "libs-release-local"),
        ("https://dr-us.example.com/artifactory/libs-release-local", "libs-release-local"),
        ("https://dr-ap.example.com/artifactory/libs-release-dr", "libs-release-dr"),
    }
    assert value(samples, "jfrog_replication_target_status", repo="libs-release-local",
                 remote_url="https://dr-us.example.com/artifactory/libs-release-local", status="error") == 1
    assert value(samples, "jfrog_replication_target_status", repo="libs-release-local",
                 remote_repo="libs-release-dr", status="never_run") == 1
    assert value(samples, "jfrog_replication_target_last_completed_timestamp_seconds", repo="libs-release-local",
                 remote_url="https://dr-us.example.com/artifactory/libs-release-local") == day - 26 * HOUR
    assert series(samples, "jfrog_replication_target_last_completed_timestamp_seconds",
                  remote_repo="libs-release-dr") == []
    assert value(samples, "jfrog_replication_enabled", repo="libs-release-local",
                 remote_url="https://dr-ap.example.com/artifactory/libs-release-dr") == 0
    assert value(samples, "jfrog_replication_enabled", repo="libs-release-local",
                 remote_url="https://dr-eu.example.com/artifactory/libs-release-local") == 1
    assert value(samples, "jfrog_replication_event_based", repo="libs-snapshot-local") == 1
    # A pull replication has a status but no push targets.
    assert value(samples, "jfrog_replication_enabled", repo="maven-remote",
                 remote_url="https://central.example.com/artifactory/maven-central") == 1
    assert series(samples, "jfrog_replication_target_status", repo="maven-remote") == []

    # One call per replicated repository, after one discovery call.
    assert calls(engine, ALL_CONFIGS) == 1
    assert calls(engine, REPO_STATUS) == len(expected)
    # The configurations carry passwords and a URL with user-info: none of it reaches the output.
    text = engine.store.payload.text.decode()
    for secret in ("Sup3rS3cret", "deployer", "Repl1cat0r-s3cret", "replicator"):
        assert secret not in text


async def test_repo_filters_apply_before_per_repo_calls(sim, collect_once) -> None:
    url, _ = await sim.start("replication")
    target = make_target(url, repos={"include": ["^libs-"], "exclude": ["snapshot"]})
    samples, engine = await collect_once([target], only=["replication"])
    assert {s["repo"] for s in series(samples, "jfrog_replication_status")} == {"libs-release-local"}
    assert calls(engine, REPO_STATUS) == 1


async def test_explicit_repo_list(sim, collect_once, caplog: pytest.LogCaptureFixture) -> None:
    url, _ = await sim.start("replication")
    target = make_target(url, repos={"exclude": ["^pypi-"]},
                         collectors={"replication": {"repos": ["npm-local", "libs-release-local", "pypi-local",
                                                                 "no-such-local"]}})
    with caplog.at_level(logging.WARNING):
        samples, engine = await collect_once([target], only=["replication"])
    assert {s["repo"] for s in series(samples, "jfrog_replication_status")} == {"npm-local", "libs-release-local"}
    assert value(samples, "jfrog_replication_targets", repo="libs-release-local") == 3
    assert value(samples, "jfrog_replication_status", repo="npm-local", status="incomplete") == 1
    # No discovery call; the excluded repository is never asked for.
    assert calls(engine, ALL_CONFIGS) == 0
    assert calls(engine, REPO_CONFIG) == 3
    assert "'no-such-local' listed in collectors.replication.repos has no replication" in caplog.text


async def test_non_admin_token_is_forbidden_and_says_why(sim, collect_once, caplog) -> None:
    url, _ = await sim.start("replication")
    with caplog.at_level(logging.WARNING):
        samples, engine = await collect_once([make_target(url, token="simulator-reader-token")],
                                             only=["replication"])
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="replication", outcome="forbidden") == 1
    reason = engine.store.run("sim", "replication").reason
    # Said once: the client names the permission an endpoint needs.
    assert reason.count("needs an admin user") == 1, reason
    assert any(getattr(r, "collector", None) == "replication" and r.getMessage().startswith("failed: forbidden")
               for r in caplog.records)
    assert "needs an admin user" in caplog.text
    assert series(samples, "jfrog_replication_status") == []


async def test_edition_without_replication_reports_nothing(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["replication"])
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="replication", outcome="unsupported") == 1
    assert series(samples, "jfrog_replication_status") == []


async def test_edition_without_replication_and_a_repository_list_reports_nothing(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    target = make_target(url, collectors={"replication": {"repos": ["libs-release-local"]}})
    samples, engine = await collect_once([target], only=["replication"])
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="replication", outcome="unsupported") == 1
    assert "replication needs Artifactory Pro" in engine.store.run("sim", "replication").reason
    assert series(samples, "jfrog_replication_targets") == []


async def test_undocumented_state_is_unknown_not_dropped(sim, collect_once, caplog) -> None:
    # 2.3.1.5 also lists partial_failure, which the metric contract's state set does not have.
    url, state = await sim.start("replication")
    state.scenario.areas["replication"].repos[1].status = "partial_failure"
    with caplog.at_level(logging.WARNING):
        samples, _ = await collect_once([make_target(url)], only=["replication"])
    assert value(samples, "jfrog_replication_status", repo="libs-snapshot-local", status="unknown") == 1
    assert value(samples, "jfrog_replication_status", repo="libs-snapshot-local", status="ok") == 0
    assert "partial_failure" in caplog.text


async def test_slow_jpd_times_out_and_keeps_the_last_data(sim) -> None:
    url, state = await sim.start("replication")
    # A timeout with room for a loaded machine's first calls; the JPD then answers well past it.
    engine = Engine([make_target(url, timeout=1.0, retries=0)], ["replication"])
    try:
        assert await engine.run_collector("sim", "replication") == "success"
        state.latency_ms = 2000
        assert await engine.run_collector("sim", "replication") == "timeout"
        await engine.render_now()
    finally:
        await engine.shutdown()
    samples = parse_exposition(engine.store.payload.text.decode())
    assert value(samples, "jfrog_replication_status", repo="npm-local", status="incomplete") == 1
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 0


async def test_large_scenario(sim, collect_once) -> None:
    url, state = await sim.start("large")
    samples, engine = await collect_once([make_target(url, max_concurrency=16)], only=["replication"])
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 1
    repos = {s["repo"] for s in series(samples, "jfrog_replication_status", status="ok")}
    assert len(repos) == 2000
    assert calls(engine, REPO_STATUS) == 2000
    # Every tenth push repository pushes to three targets.
    multi = [r.key for r in state.scenario.areas["replication"].repos if len(r.targets) == 3]
    assert multi
    assert all(value(samples, "jfrog_replication_targets", repo=key) == 3 for key in multi[:20])








async def test_one_endpoint_fails_the_others_stay_current(sim) -> None:
    url, state = await sim.start("replication")
    clock = Clock()
    engine = Engine([make_target(url, retries=0)], ["replication"], clock=clock)
    try:
        before = await _run(engine)
        assert value(before, "jfrog_exporter_collector_success", collector="replication") == 1
        state.faults.append(Fault.parse(f"{SYSTEM}=error_500"))
        data = state.scenario.areas["replication"]
        data.block_pull = True
        data.repos[3].status = "ok"  # npm-local, incomplete before
        clock.advance(2 * 3600)  # its cron (every two hours) fired since
        after = await _run(engine)
    finally:
        await engine.shutdown()
    assert _up(after, SYSTEM) == 0
    assert _last_success(after, SYSTEM) == _last_success(before, SYSTEM)
    for endpoint in (ALL_CONFIGS, REPO_STATUS):
        assert _up(after, endpoint) == 1
        assert _last_success(after, endpoint) > _last_success(before, endpoint)
    # The failed part keeps its last good values; the others report the change.
    assert value(after, "jfrog_replication_blocked", direction="push") == 1
    assert value(after, "jfrog_replication_blocked", direction="pull") == 0
    assert value(after, "jfrog_replication_status", repo="npm-local", status="ok") == 1
    assert value(after, "jfrog_exporter_collector_success", collector="replication") == 0
    run = engine.store.run("sim", "replication")
    assert run.outcome == "error"
    assert SYSTEM in run.reason


async def test_failed_configurations_keep_the_statuses_they_feed(sim) -> None:
    url, state = await sim.start("replication")
    engine = Engine([make_target(url, retries=0)], ["replication"])
    try:
        before = await _run(engine)
        state.faults.append(Fault.parse(f"{ALL_CONFIGS}=html_502"))
        data = state.scenario.areas["replication"]
        data.block_pull = True
        data.repos[3].status = "ok"
        after = await _run(engine)
    finally:
        await engine.shutdown()
    # The status part needs the configurations: it is not read, and both keep their last good data.
    for endpoint in (ALL_CONFIGS, REPO_STATUS):
        assert _up(after, endpoint) == 0
        assert _last_success(after, endpoint) == _last_success(before, endpoint)
    assert calls(engine, REPO_STATUS) == len(data.repos)  # the first run's only
    assert value(after, "jfrog_replication_status", repo="npm-local", status="incomplete") == 1
    assert value(after, "jfrog_replication_targets", repo="libs-release-local") == 3
    assert _up(after, SYSTEM) == 1
    assert value(after, "jfrog_replication_blocked", direction="pull") == 1
    run = engine.store.run("sim", "replication")
    assert run.outcome == "error"
    assert f"first: {ALL_CONFIGS}:" in run.reason


def _status_calls(samples) -> float:
    return sum(v for (name, labels), v in samples.items()
               if name == "jfrog_exporter_api_requests_total" and ("endpoint", REPO_STATUS) in labels)


async def test_statuses_are_read_when_their_cron_fires_and_in_between_only_where_they_may_change(sim) -> None:
    """Seven replicated repositories, scheduled every two hours; two of them are also event-based."""
    url, state = await sim.start("replication")
    clock = Clock(today_midnight() + 10 * 3600 + 300)  # five minutes after the 10:00 fire
    engine = Engine([make_target(url)], ["replication"], clock=clock)
    repos = state.scenario.areas["replication"].repos
    try:
        first = await _run(engine)
        assert _status_calls(first) == len(repos)
        clock.advance(120)
        repos[2].status = "error"  # docker-local, scheduled only: cannot change before its next fire
        second = await _run(engine)
        # The event-based repositories only; the others keep the status read last.
        assert _status_calls(second) - _status_calls(first) == 2
        assert value(second, "jfrog_replication_status", repo="docker-local", status="never_run") == 1
        assert value(second, "jfrog_replication_status", repo="npm-local", status="incomplete") == 1
        assert value(second, "jfrog_exporter_endpoint_up", collector="replication", endpoint=REPO_STATUS) == 1
        # The self-report tells how old the oldest status it reports is.
        assert value(second, "jfrog_exporter_endpoint_oldest_read_timestamp_seconds", collector="replication",
                     endpoint=REPO_STATUS) == clock.now - 120
        clock.advance(2 * 3600 - 420 + 90)  # 12:01:30: the cron fired
        third = await _run(engine)
        assert _status_calls(third) - _status_calls(second) == len(repos)
        assert value(third, "jfrog_replication_status", repo="docker-local", status="error") == 1
        # npm-local still runs ("incomplete"): read again after one interval, then at doubling gaps.
        total, npm_reads = _status_calls(third), []
        for _ in range(6):
            clock.advance(120)
            now = _status_calls(await _run(engine))
            npm_reads.append(now - total - 2)  # beside the two event-based ones
            total = now
        assert npm_reads == [1, 0, 1, 0, 0, 0]
    finally:
        await engine.shutdown()
