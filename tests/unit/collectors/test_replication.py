"""Collector `replication`: the parsers on the documented payloads, and the families built from them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.core import Metric

from exporter.collectors.replication import (
    STATES,
    ReplicationConfig,
    ReplicationStatus,
    TargetStatus,
    blocked_families,
    config_families,
    parse_replication_configs,
    parse_replication_status,
    parse_system_replications,
    status_families,
)
from exporter.families import Emitter
from exporter.values import safe_url
from tests.support import documented


def load(name: str) -> Any:
    return documented("replication", name)


def samples(families: list[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def labelled(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({"target": "t", **labels}.items())


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


# -- families ----------------------------------------------------------------------------------------


def test_blocked_directions_and_an_unknown_switch() -> None:
    out = Emitter("t")
    blocked_families(True, None, out)
    got = samples(out.families())
    assert got == {("jfrog_replication_blocked", labelled(direction="push")): 1.0}
    # The family shows its HELP even when the JPD reports neither switch.
    empty = Emitter("t")
    blocked_families(None, None, empty)
    assert [f.name for f in empty.families()] == ["jfrog_replication_blocked"]


def test_configurations_count_every_target_and_report_each_url_once() -> None:
    url = "https://dr.example.com/artifactory/libs"
    by_repo = {"libs": [ReplicationConfig("libs", url, True, False), ReplicationConfig("libs", url, False, True),
                        ReplicationConfig("libs", "https://dr2.example.com/artifactory/libs", None, True)]}
    out = Emitter("t")
    config_families(by_repo, out)
    got = samples(out.families())
    assert got[("jfrog_replication_targets", labelled(repo="libs"))] == 3
    # The first configuration of a URL wins; an unreadable flag gives no series, not a zero.
    assert got[("jfrog_replication_enabled", labelled(repo="libs", remote_url=url))] == 1
    assert got[("jfrog_replication_event_based", labelled(repo="libs", remote_url=url))] == 0
    assert ("jfrog_replication_enabled", labelled(repo="libs", remote_url="https://dr2.example.com/artifactory/libs")
            ) not in got
    assert len([k for k in got if k[0] == "jfrog_replication_enabled"]) == 1


def test_status_families_fill_a_target_url_from_the_configuration() -> None:
    configs = [ReplicationConfig("libs", "https://dr.example.com/artifactory/libs-dr", True, False),
               ReplicationConfig("libs", "https://other.example.com/artifactory/libs-x", True, False)]
    status = ReplicationStatus("warn", 1000.0, [TargetStatus("", "libs-dr", "ok", 900.0),
                                                TargetStatus("", "libs-dr", "ok", 900.0),
                                                TargetStatus("", "unknown-remote", "error", None)])
    out = Emitter("t")
    status_families({"libs": configs, "gone": []}, {"libs": status}, out)
    got = samples(out.families())
    for state in STATES:
        assert got[("jfrog_replication_status", labelled(repo="libs", status=state))] == (state == "warn")
    assert got[("jfrog_replication_last_completed_timestamp_seconds", labelled(repo="libs"))] == 1000.0
    target = labelled(repo="libs", remote_url="https://dr.example.com/artifactory/libs-dr", remote_repo="libs-dr")
    assert got[("jfrog_replication_target_last_completed_timestamp_seconds", target)] == 900.0
    # Duplicate entries give one series; a remote repository no configuration names keeps an empty URL.
    assert len([k for k in got if k[0] == "jfrog_replication_target_status"]) == 2 * len(STATES)
    assert got[("jfrog_replication_target_status",
                labelled(repo="libs", remote_url="", remote_repo="unknown-remote", status="error"))] == 1
    # A repository without a status (gone since discovery) has no series.
    assert not [k for k in got if ("repo", "gone") in k[1]]
