"""Collector `activity`: AQL queries bounded by the last run, counters that count each item once."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.collectors.activity import ActivityCollector, build_query, parse_aql_activity
from exporter.config import TargetConfig
from exporter.scheduler import Engine
from exporter.simulator.routes.aql import AqlError, Item, activity_log, matches, parse_query, run
from exporter.simulator.security_data import ACTIVITY_AREA
from tests.conftest import make_target
from tests.support import REPO, Samples, parse_exposition, series, value

PAYLOADS = REPO / "tests" / "payloads" / "security"
CREATED = "jfrog_artifacts_created_total"
DOWNLOADED = "jfrog_artifacts_downloaded_total"


def test_activity_is_off_unless_enabled() -> None:
    target = TargetConfig.model_validate({"url": "http://jpd.example"})
    assert "activity" not in target.enabled_collectors()
    assert "security" in target.enabled_collectors()
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
    body = json.loads((PAYLOADS / "aql-items.json").read_text())
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


# -- over HTTP against the simulator -------------------------------------------------

class Poller:
    """One exporter engine kept across runs, as the scheduler keeps it."""

    def __init__(self, url: str, **settings: Any) -> None:
        settings.setdefault("settle", 0)  # up to now: these tests write their rows at once
        fields: dict[str, Any] = {"collectors": {"activity": settings}}
        if "repos" in settings:
            fields["repos"] = settings.pop("repos")
        self.engine = Engine([make_target(url, **fields)], only=["activity"])

    async def poll(self) -> Samples:
        await self.engine.run_all_once()
        assert self.engine.store.payload is not None
        return parse_exposition(self.engine.store.payload.text.decode())

    def outcome(self) -> str:
        return str(self.engine.store.run("sim", "activity").outcome)

    async def close(self) -> None:
        await self.engine.shutdown()


async def _quiet_simulator(sim, scenario: str = "healthy"):  # type: ignore[no-untyped-def]
    url, state = await sim.start(scenario)
    log = activity_log(state)
    log.growing = False  # only what the test adds
    return url, log


async def test_items_are_counted_once_across_polls(sim) -> None:
    url, log = await _quiet_simulator(sim)
    before_start = time.time() - 5
    log.add("libs-release-local", "org/acme", "old.jar", before_start)
    poller = Poller(url)
    try:
        samples = await poller.poll()  # the first run only starts the clock
        assert value(samples, CREATED, repo="libs-release-local") == 0
        assert value(samples, CREATED, repo="maven-remote-cache") == 0  # remote repos count in their cache
        assert not series(samples, CREATED, repo="libs-release")  # virtual: holds nothing
        new = [log.add("libs-release-local", "org/acme", f"new-{i}.jar", time.time()) for i in range(3)]
        log.add("npm-remote-cache", "left-pad/-", "left-pad-1.3.0.tgz", time.time())
        samples = await poller.poll()
        assert value(samples, CREATED, repo="libs-release-local") == 3
        assert value(samples, CREATED, repo="npm-remote-cache") == 1
        # The next window starts where the last one ended: nothing is counted twice.
        samples = await poller.poll()
        assert value(samples, CREATED, repo="libs-release-local") == 3
        log.download(new[0], time.time())
        log.download(log.items[0], time.time())  # created before the start, downloaded now: a download
        samples = await poller.poll()
        assert value(samples, DOWNLOADED, repo="libs-release-local") == 2
        samples = await poller.poll()
        assert value(samples, DOWNLOADED, repo="libs-release-local") == 2
        await asyncio.sleep(0.005)
        log.download(new[0], time.time())  # downloaded again: one more
        samples = await poller.poll()
        assert value(samples, DOWNLOADED, repo="libs-release-local") == 3
        assert value(samples, CREATED, repo="libs-release-local") == 3
        assert poller.outcome() == "success"
    finally:
        await poller.close()


@pytest.mark.parametrize(("settle", "counted"), [("300ms", 1), (0, 0)])
async def test_a_row_that_shows_up_late_is_counted_within_settle(sim, settle: object, counted: int) -> None:
    url, log = await _quiet_simulator(sim)
    poller = Poller(url, settle=settle)
    try:
        await poller.poll()
        await asyncio.sleep(0.4)
        await poller.poll()
        # Recorded before that poll ran, visible only now (download statistics are flushed in batches).
        log.add("docker-local", "app/1.0", "manifest.json", time.time() - 0.2)
        await asyncio.sleep(0.35)
        samples = await poller.poll()
        assert value(samples, CREATED, repo="docker-local") == counted
        samples = await poller.poll()
        assert value(samples, CREATED, repo="docker-local") == counted
    finally:
        await poller.close()


async def test_a_restart_counts_nothing_twice(sim) -> None:
    url, log = await _quiet_simulator(sim)
    first = Poller(url)
    try:
        await first.poll()
        log.add("generic-local", "tools", "a.zip", time.time())
        samples = await first.poll()
        assert value(samples, CREATED, repo="generic-local") == 1
    finally:
        await first.close()
    # A new exporter process: counters start at zero and the item above is history.
    second = Poller(url)
    try:
        samples = await second.poll()
        assert value(samples, CREATED, repo="generic-local") == 0
        samples = await second.poll()
        assert value(samples, CREATED, repo="generic-local") == 0
        log.add("generic-local", "tools", "b.zip", time.time())
        samples = await second.poll()
        assert value(samples, CREATED, repo="generic-local") == 1
    finally:
        await second.close()


async def test_counts_match_the_simulators_growing_item_list(sim) -> None:
    url, state = await sim.start("healthy")
    area = state.scenario.areas[ACTIVITY_AREA]
    area.created_per_minute = 1200.0
    area.downloads_per_minute = 600.0
    poller = Poller(url, settle=0)
    try:
        await poller.poll()
        started = poller.engine.targets["sim"].collectors["activity"].streams[0].watermark_ms / 1000
        await asyncio.sleep(0.6)
        samples = await poller.poll()
        await asyncio.sleep(0.3)
        samples = await poller.poll()
        bound = poller.engine.targets["sim"].collectors["activity"].streams[0].watermark_ms / 1000
        items = activity_log(state).items
        expected = sum(1 for i in items if started < round(i.created * 1000) / 1000 <= bound)
        counted = sum(v for (n, _), v in samples.items() if n == CREATED)
        assert expected > 5
        assert counted == expected
        assert sum(v for (n, _), v in samples.items() if n == DOWNLOADED) > 0
    finally:
        await poller.close()


async def test_a_burst_larger_than_the_limit_is_caught_up_with_bounded_queries(sim) -> None:
    url, log = await _quiet_simulator(sim)
    poller = Poller(url, max_results=5, max_queries=40, settle=0)
    try:
        await poller.poll()
        start = time.time()
        await asyncio.sleep(1.2)
        step = (time.time() - start) / 24
        for i in range(23):
            log.add("pypi-local", "acme", f"acme-{i}.whl", start + (i + 1) * step)
        samples = await poller.poll()
        assert value(samples, CREATED, repo="pypi-local") == 23
        assert value(samples, "jfrog_activity_truncated_windows_total", kind="created") == 0
    finally:
        await poller.close()
    stats = poller.engine.targets["sim"].client.stats.counts
    assert stats[("/artifactory/api/search/aql", "200")] > 2


async def test_more_than_the_limit_at_one_instant_is_reported_not_hidden(sim) -> None:
    url, log = await _quiet_simulator(sim)
    poller = Poller(url, max_results=5, max_queries=3)
    try:
        await poller.poll()
        when = time.time()
        for i in range(12):
            log.add("npm-local", "burst", f"b-{i}.tgz", when)
        collector = poller.engine.targets["sim"].collectors["activity"]
        polls = 0
        # Each run asks at most max_queries times, halving the window towards the instant of the burst.
        while collector.streams[0].watermark_ms <= when * 1000 and polls < 40:
            samples = await poller.poll()
            polls += 1
            assert poller.outcome() == "success"
        assert polls > 1
        assert value(samples, "jfrog_activity_truncated_windows_total", kind="created") == 1
        assert value(samples, CREATED, repo="npm-local") == 5
        stats = poller.engine.targets["sim"].client.stats.counts
        assert stats[("/artifactory/api/search/aql", "200")] <= 2 * 3 * polls
    finally:
        await poller.close()


async def test_repository_filter_applies_to_counters_and_remote_caches(sim) -> None:
    url, log = await _quiet_simulator(sim)
    poller = Poller(url, repos={"exclude": ["^docker", "^maven-remote$"]})
    try:
        await poller.poll()
        for repo in ("docker-local", "maven-remote-cache", "npm-local"):
            log.add(repo, "x", "y", time.time())
        samples = await poller.poll()
        assert value(samples, CREATED, repo="npm-local") == 1
        assert not series(samples, CREATED, repo="docker-local")
        assert not series(samples, CREATED, repo="maven-remote-cache")
        assert value(samples, CREATED, repo="npm-remote-cache") == 0
    finally:
        await poller.close()


async def test_a_slow_search_times_out_without_losing_items(sim) -> None:
    url, state = await sim.start("healthy")
    log = activity_log(state)
    log.growing = False
    poller = Poller(url, query_timeout="0.3s")
    try:
        await poller.poll()
        log.add("npm-local", "x", "slow.tgz", time.time())
        state.latency_ms = 600
        await poller.poll()
        assert poller.outcome() == "timeout"
        state.latency_ms = 0
        samples = await poller.poll()
        assert poller.outcome() == "success"
        assert value(samples, CREATED, repo="npm-local") == 1
    finally:
        await poller.close()


async def test_oss_answers_the_unsorted_queries(sim) -> None:
    url, log = await _quiet_simulator(sim, "oss")
    poller = Poller(url)
    try:
        await poller.poll()
        log.add("libs-snapshot-local", "a", "b.jar", time.time())
        samples = await poller.poll()
        assert poller.outcome() == "success"
        assert value(samples, CREATED, repo="libs-snapshot-local") == 1
    finally:
        await poller.close()
