"""Collector `activity`: the AQL it sends, the answers it reads, the counting state and the families."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.collectors.activity import (
    CREATED,
    DOWNLOADED,
    TRUNCATED,
    WATERMARK,
    Activity,
    ActivityCollector,
    Stream,
    activity_families,
    build_query,
    counted_repositories,
    parse_aql_activity,
    parse_repositories,
)
from exporter.config import TargetConfig
from exporter.families import Emitter
from exporter.simulator.routes.aql import AqlError, Item, matches, parse_query, run
from tests.support import documented


def test_activity_is_off_unless_enabled() -> None:
    target = TargetConfig.model_validate({"url": "http://jpd.example"})
    assert "activity" not in target.enabled_collectors()
    assert "health" in target.enabled_collectors()
    enabled = TargetConfig.model_validate({"url": "http://jpd.example", "collectors": {"activity": {"enabled": True}}})
    assert "activity" in enabled.enabled_collectors()
    assert ActivityCollector.default_interval == 300


def test_settings_accept_no_overlap_and_refuse_nonsense() -> None:
    target = TargetConfig.model_validate({"url": "http://jpd.example",
                                          "collectors": {"activity": {"settle": 0, "query_timeout": "90s"}}})
    settings = target.collector_settings("activity")
    assert (settings.settle, settings.query_timeout) == (0.0, 90.0)
    with pytest.raises(ValueError):
        TargetConfig.model_validate({"url": "http://jpd.example", "collectors": {"activity": {"max_results": 0}}})


def test_query_is_bounded_in_time_and_size() -> None:
    after = round(datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC).timestamp() * 1000)
    text = build_query("stat.downloaded", after, after + 300_000, 5000)
    assert text.startswith("items.find(")
    assert text.endswith(".limit(5000)")
    assert '"$gt":"2024-05-01T10:00:00.250+00:00"' in text
    assert '"$lte":"2024-05-01T10:05:00.250+00:00"' in text
    assert '.include("repo","path","name","stat.downloaded")' in text
    # The simulator reads it like AQL does (9.2 syntax): criteria, include, limit.
    query = parse_query(text)
    assert (query.limit, query.include, query.sort) == (5000, ["repo", "path", "name", "stat.downloaded"], None)
    inside = Item("r", "p", "n", 0, downloaded=(after + 1) / 1000, downloads=1)
    at_start = Item("r", "p", "n", 0, downloaded=after / 1000, downloads=1)
    at_end = Item("r", "p", "n", 0, downloaded=(after + 300_000) / 1000, downloads=1)
    assert matches(inside, query.criteria) and matches(at_end, query.criteria)
    assert not matches(at_start, query.criteria)


def test_documented_aql_output_is_read() -> None:
    # 2.8.1 sample output (jfrog-rest-apis.txt line 10990); its dates carry no zone: UTC.
    body = documented("security", "aql-items.json")
    [act] = parse_aql_activity(body, "created")
    assert (act.repo, act.path, act.name) == ("libs-release-local", "org/jfrog/artifactory", "artifactory.war")
    assert act.at_ms == datetime(2015, 1, 1, 10, 10, 10, tzinfo=UTC).timestamp() * 1000


def test_stat_fields_come_nested_and_items_without_a_time_are_skipped() -> None:
    # 9.7.2: stat fields are output next to the item's; the server nests them as "stats": [{...}].
    body = {"results": [
        {"repo": "npm-remote-cache", "path": "left-pad/-", "name": "left-pad-1.3.0.tgz",
         "stats": [{"downloaded": "2024-05-01T10:00:00.123Z", "downloads": 3}]},
        {"repo": "npm-remote-cache", "path": "x", "name": "never.tgz", "stats": [{"downloads": 0}]},
    ]}
    [act] = parse_aql_activity(body, "stat.downloaded")
    assert act.at_ms == round(datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC).timestamp() * 1000)
    with pytest.raises(ValueError):
        parse_aql_activity({"range": {}}, "created")


def test_simulator_refuses_sorting_on_oss_like_artifactory() -> None:
    query = parse_query('items.find({"repo":"a"}).include("repo","path","name").sort({"$asc":["name"]})')
    with pytest.raises(AqlError):
        run(query, [Item("a", "p", "n", 0)], oss=True)
    assert len(run(query, [Item("a", "p", "n", 0)], oss=False)["results"]) == 1


def test_activity_is_counted_in_local_federated_and_remote_caches() -> None:
    repos = parse_repositories([
        {"key": "libs-release-local", "type": "LOCAL"}, {"key": "maven-remote", "type": "REMOTE"},
        {"key": "libs-release", "type": "VIRTUAL"}, {"key": "libs-federated", "type": "federated"},
        {"type": "LOCAL"}, "junk",
    ])
    known, remote_of = counted_repositories(repos)
    assert known == ["libs-release-local", "maven-remote-cache", "libs-federated"]
    assert remote_of == {"maven-remote-cache": "maven-remote"}
    with pytest.raises(ValueError):
        parse_repositories({"key": "a"})


def test_a_stream_counts_each_item_once_inside_its_window() -> None:
    stream = Stream("created", "created")
    stream.start(1000)
    assert stream.bounds(5000, 1000) == (1000, 4000)
    found = [Activity("a", "p", "x", 1000), Activity("a", "p", "y", 2000), Activity("b", "p", "z", 4000),
             Activity("a", "p", "late", 4001)]
    assert stream.count(found, 1000, 4000, lambda repo: repo != "b") == 1
    # Asked again (a window halved after a full answer): what was counted is not counted twice.
    assert stream.count(found, 1000, 4000, lambda repo: True) == 0
    stream.advance(4000)
    assert (stream.watermark_ms, stream.counts, stream.seen) == (4000, {"a": 1}, {})


def test_a_full_window_is_halved_then_grows_back() -> None:
    stream = Stream("created", "created")
    stream.start(0)
    assert stream.shrink(1000)
    assert stream.bounds(10_000, 0) == (0, 500)
    stream.advance(500)
    assert stream.bounds(10_000, 0) == (500, 1500)
    stream.window_ms = None
    assert not stream.shrink(501), "a window of one millisecond cannot be split"


def test_families_show_every_known_repository_and_how_far_each_kind_got() -> None:
    created, downloaded = Stream("created", "created"), Stream("downloaded", "stat.downloaded")
    created.start(1_700_000_000_000)
    created.counts["npm-local"] = 3
    downloaded.truncated = 2
    for stream in (created, downloaded):
        stream.know(["docker-local", "npm-local"])
    out = Emitter("t")
    activity_families((created, downloaded), out)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in out.families() for s in f.samples}
    assert samples[(CREATED.exposed_name, (("repo", "npm-local"), ("target", "t")))] == 3
    assert samples[(CREATED.exposed_name, (("repo", "docker-local"), ("target", "t")))] == 0
    assert samples[(DOWNLOADED.exposed_name, (("repo", "npm-local"), ("target", "t")))] == 0
    assert samples[(WATERMARK.name, (("kind", "created"), ("target", "t")))] == 1_700_000_000
    assert (WATERMARK.name, (("kind", "downloaded"), ("target", "t"))) not in samples, "no watermark yet"
    assert samples[(TRUNCATED.exposed_name, (("kind", "downloaded"), ("target", "t")))] == 2
    # A known repository keeps its counter.
    created.know([])
    assert created.counts["docker-local"] == 0


def test_counters_show_their_help_before_anything_is_counted() -> None:
    out = Emitter("t")
    activity_families((Stream("created", "created"), Stream("downloaded", "stat.downloaded")), out)
    families = {f.name: f for f in out.families()}
    assert families[CREATED.name].samples == [] and families[CREATED.name].type == "counter"
    assert families[DOWNLOADED.name].samples == []
