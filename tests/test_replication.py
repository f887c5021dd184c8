"""Collector `replication`: documented payloads, then the simulator's scenarios over HTTP."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from exporter.collectors.replication import (
    ALL_CONFIGS,
    REPO_CONFIG,
    REPO_STATUS,
    STATES,
    parse_replication_configs,
    parse_replication_status,
    parse_system_replications,
    safe_url,
)
from exporter.simulator.scenarios import today_midnight
from tests.conftest import make_target
from tests.support import REPO, series, value

PAYLOADS = REPO / "tests" / "payloads" / "replication"
HOUR = 3600


def load(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def calls(engine, endpoint: str, target: str = "sim") -> int:
    stats = engine.targets[target].client.stats
    return sum(count for (ep, _), count in stats.counts.items() if ep == endpoint)


# -- parsers on the documented samples ---------------------------------------------------------------


def test_single_object_config_sample() -> None:
    # 2.3.1.1 Get Repository Replication Configuration (jfrog-rest-apis.txt line 2117), made well-formed.
    [config] = parse_replication_configs(load("config-single.json"))
    assert config.repo == "lib-repo-local"
    assert config.remote_url == "http://localhost:8081/artifactory/remote-repo"
    assert config.enabled is True
    assert config.event_based is False
    # The sample carries username "admin" and password "password": nothing of them is kept.
    assert "password" not in repr(config)


def test_multi_push_array_config_sample() -> None:
    # 2.3.1.1, the Enterprise multi-push form (line 2141): an array of the same objects.
    [config] = parse_replication_configs(load("config-multipush.json"))
    assert config.repo == "libs-release-local"
    entry = load("config-multipush.json")[0]  # type: ignore[index]
    three = [dict(entry, url=f"https://dr{i}.example.com/artifactory/libs-release-local") for i in range(3)]
    configs = parse_replication_configs(three)
    assert [c.remote_url for c in configs] == [f"https://dr{i}.example.com/artifactory/libs-release-local"
                                               for i in range(3)]
    assert {c.repo for c in configs} == {"libs-release-local"}


def test_list_of_every_config_may_nest_multi_push_arrays() -> None:
    single = load("config-single.json")
    multi = load("config-multipush.json")
    configs = parse_replication_configs([single, multi])
    assert [c.repo for c in configs] == ["lib-repo-local", "libs-release-local"]


def test_config_without_repo_key_takes_the_asked_repository() -> None:
    entry = dict(load("config-single.json"))  # type: ignore[call-overload]
    del entry["repoKey"]
    [config] = parse_replication_configs(entry, repo="asked-local")
    assert config.repo == "asked-local"
    with pytest.raises(ValueError):
        parse_replication_configs(entry)
    with pytest.raises(ValueError):
        parse_replication_configs("not a configuration")


def test_status_sample_with_offset_timestamps() -> None:
    # 2.3.1.5 Scheduled Replication Status (line 2312); its unquoted timestamp and "{status}"
    # placeholders made well-formed as the grammar above it says (quoted ISO 8601, ok).
    status = parse_replication_status(load("status.json"))
    assert status.status == "ok"
    # 15:08:49.050+02:00 is 13:08:49.050 UTC.
    assert status.last_completed == datetime(2015, 12, 27, 13, 8, 49, 50_000, tzinfo=UTC).timestamp()
    assert [(t.remote_url, t.remote_repo, t.status) for t in status.targets] == [
        ("http://remote_host/remote-libs1", "remote-libs1", "ok"),
        ("http://remote_host/remote-libs2", "remote-libs2", "ok"),
    ]
    assert status.targets[0].last_completed == datetime(2015, 12, 27, 13, 7, 49, 50_000, tzinfo=UTC).timestamp()


def test_status_null_last_completed_means_never_completed() -> None:
    # "{time}= time in ISO8601 format ..., or null if never completed" (line 2305).
    status = parse_replication_status({"status": "never_run", "lastCompleted": None, "targets": [
        {"url": "http://remote_host/x", "repoKey": "x", "status": "never_run", "lastCompleted": None}]})
    assert status.status == "never_run"
    assert status.last_completed is None
    assert status.targets[0].last_completed is None


def test_status_with_repositories_map_only() -> None:
    body = dict(load("status.json"))  # type: ignore[call-overload]
    del body["targets"]
    status = parse_replication_status(body)
    assert [(t.remote_url, t.remote_repo, t.status) for t in status.targets] == [
        ("", "remote-libs1", "ok"), ("", "remote-libs2", "ok")]
    with pytest.raises(ValueError):
        parse_replication_status([])


def test_system_replications_sample() -> None:
    # 2.3.1.12 Get Global System Replication Configuration (line 2732).
    assert parse_system_replications(load("system-replications.json")) == (False, False)
    assert parse_system_replications({"blockPullReplications": False, "blockPushReplications": True}) == (True, False)
    with pytest.raises(ValueError):
        parse_system_replications(["blockPushReplications"])


@pytest.mark.parametrize(("url", "expected"), [
    ("https://deployer:Sup3rS3cret@dr.example.com/artifactory/repo", "https://dr.example.com/artifactory/repo"),
    ("https://token@dr.example.com:8443/artifactory/repo/", "https://dr.example.com:8443/artifactory/repo"),
    ("https://u:p@ss@dr.example.com/artifactory/repo", "https://dr.example.com/artifactory/repo"),
    ("https://dr.example.com/artifactory/repo?password=x#frag", "https://dr.example.com/artifactory/repo"),
    ("http://localhost:8081/artifactory/remote-repo", "http://localhost:8081/artifactory/remote-repo"),
    (None, ""),
])
def test_user_info_never_survives(url: str | None, expected: str) -> None:
    assert safe_url(url) == expected


# -- end to end over the simulator -------------------------------------------------------------------


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
    assert "requires an admin user" in engine.store.run("sim", "replication").reason
    assert "collector=replication failed: forbidden" in caplog.text
    assert "requires an admin user" in caplog.text
    assert series(samples, "jfrog_replication_status") == []


async def test_edition_without_replication_reports_nothing(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["replication"])
    assert value(samples, "jfrog_exporter_collector_success", collector="replication") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="replication", outcome="unsupported") == 1
    assert series(samples, "jfrog_replication_status") == []


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
    from exporter.scheduler import Engine
    from tests.support import parse_exposition

    url, state = await sim.start("replication")
    engine = Engine([make_target(url, timeout=0.2, retries=0)], ["replication"])
    try:
        assert await engine.run_collector("sim", "replication") == "success"
        state.latency_ms = 400
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
