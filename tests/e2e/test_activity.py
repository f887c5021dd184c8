"""Collector `activity` over HTTP against the simulator: counters that count each item once across runs."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.collectors.activity import AQL, REPOSITORIES, UNLISTED_REPOS
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.simulator.core import STATE
from exporter.simulator.faults import Fault
from exporter.simulator.routes.aql import activity_log
from exporter.simulator.scenarios import Repo
from exporter.simulator.security_data import ACTIVITY_AREA
from tests.conftest import make_target
from tests.support import Samples, parse_exposition, series, value

CREATED = "jfrog_artifacts_created_total"
DOWNLOADED = "jfrog_artifacts_downloaded_total"


# -- over HTTP against the simulator -------------------------------------------------

class Poller:
    """One exporter engine kept across runs, as the scheduler keeps it."""

    def __init__(self, url: str, **settings: Any) -> None:
        settings.setdefault("settle", 0)  # up to now: these tests write their rows at once
        fields: dict[str, Any] = {"collectors": {"activity": settings}}
        for field in ("repos", "retries"):  # target settings, not the collector's
            if field in settings:
                fields[field] = settings.pop(field)
        self.engine = Engine([make_target(url, **fields)], only=["activity"])

    async def poll(self) -> Samples:
        await self.engine.run_all_once()
        assert self.engine.store.payload is not None
        return parse_exposition(self.engine.store.payload.text.decode())

    def outcome(self) -> str:
        return str(self.engine.store.run("sim", "activity").outcome)

    def reason(self) -> str:
        return self.engine.store.run("sim", "activity").reason

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


def _part(samples: Samples, name: str, endpoint: str) -> float | None:
    return value(samples, name, collector="activity", endpoint=endpoint)


async def test_failing_searches_leave_the_repository_list_current(sim) -> None:
    url, state = await sim.start("healthy")
    log = activity_log(state)
    log.growing = False
    poller = Poller(url, retries=0)
    try:
        await poller.poll()
        log.add("npm-local", "x", "a.tgz", time.time())
        before = await poller.poll()
        assert value(before, CREATED, repo="npm-local") == 1
        state.faults.append(Fault.parse(f"{AQL}=error_500"))
        log.add("npm-local", "x", "b.tgz", time.time())
        state.scenario.repos.append(Repo("added-local", "LOCAL", "Generic", 0, 0, 0))
        await asyncio.sleep(0.01)
        after = await poller.poll()
        assert _part(after, "jfrog_exporter_endpoint_up", AQL) == 0
        assert _part(after, "jfrog_exporter_endpoint_up", REPOSITORIES) == 1
        last_success = "jfrog_exporter_endpoint_last_success_timestamp_seconds"
        assert _part(after, last_success, REPOSITORIES) > _part(before, last_success, REPOSITORIES)
        assert _part(after, last_success, AQL) == _part(before, last_success, AQL)
        assert value(after, "jfrog_exporter_collector_success", collector="activity") == 0
        assert poller.outcome() == "error" and AQL in poller.reason()
        # The searches' series stay, exact up to their watermark, with the repository the list just added.
        assert value(after, CREATED, repo="npm-local") == 1
        assert value(after, CREATED, repo="added-local") == 0
        assert value(after, "jfrog_activity_watermark_timestamp_seconds", kind="created") == \
            value(before, "jfrog_activity_watermark_timestamp_seconds", kind="created")
        state.faults.clear()
        samples = await poller.poll()
        assert poller.outcome() == "success"
        assert value(samples, CREATED, repo="npm-local") == 2, "nothing is lost while the searches fail"
    finally:
        await poller.close()


async def test_a_failing_repository_list_fails_only_its_part(sim) -> None:
    url, state = await sim.start("healthy")
    log = activity_log(state)
    log.growing = False
    poller = Poller(url, retries=0)
    try:
        await poller.poll()
        state.faults.append(Fault.parse(f"{REPOSITORIES}=html_502"))
        log.add("npm-local", "x", "a.tgz", time.time())
        samples = await poller.poll()
        assert _part(samples, "jfrog_exporter_endpoint_up", REPOSITORIES) == 0
        assert _part(samples, "jfrog_exporter_endpoint_up", AQL) == 1
        assert value(samples, CREATED, repo="npm-local") == 1
        assert value(samples, CREATED, repo="docker-local") == 0, "the last list this JPD answered still counts"
        assert poller.engine.store.run("sim", "activity").outcome is Outcome.ERROR
        assert REPOSITORIES in poller.reason()
    finally:
        await poller.close()


async def test_a_jpd_naming_a_new_repository_in_every_row_cannot_grow_the_counters(sim, caplog) -> None:
    url, _ = await _quiet_simulator(sim)
    poller = Poller(url)
    try:
        listed = len(series(await poller.poll(), CREATED))
        await asyncio.sleep(1.1)
        # Between the first poll's watermark (over a second ago) and now, to the millisecond.
        at = datetime.fromtimestamp(time.time() - 0.5, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        rows = [{"repo": f"invented-{i}", "path": ".", "name": f"f{i}", "created": at,
                 "stats": [{"downloaded": at}]} for i in range(UNLISTED_REPOS + 500)]
        body = json.dumps({"results": rows, "range": {"start_pos": 0, "end_pos": len(rows), "total": len(rows)}})
        sim_state = sim.runners[-1].app[STATE]
        sim_state.faults.append(Fault(route=AQL, kind="answer", body=body))
        samples = await poller.poll()
    finally:
        await poller.close()
    assert len(series(samples, CREATED)) == listed + UNLISTED_REPOS
    assert "AQL names more repositories than the JPD lists" in caplog.text
