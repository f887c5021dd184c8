"""Collector `distribution` (and Distribution's Open Metrics through `openmetrics`): the simulator over HTTP."""

from __future__ import annotations

import json
import time

import pytest

from exporter.collectors.distribution import (
    DISTRIBUTIONS,
    INFO,
    PING,
    RECEIVED,
    RECEIVED_MAX_PAGES,
    RECEIVED_PAGE,
)
from exporter.simulator import distribution_data
from exporter.simulator.core import DEFAULT_READER_TOKEN
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import build
from tests.conftest import make_target
from tests.support import endpoint_up, run_and_scrape, series, value

HOUR = 3600
PARTS = (PING, INFO, DISTRIBUTIONS, RECEIVED)


def _runs(samples, outcome: str) -> float | None:
    return value(samples, "jfrog_exporter_collector_runs_total", collector="distribution", outcome=outcome)


async def test_healthy_distribution(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, _ = await collect_once([make_target(url)], only=["distribution"])
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 1
    assert value(samples, "jfrog_distribution_up") == 1
    assert value(samples, "jfrog_distribution_info", version="2.28.1") == 1
    assert value(samples, "jfrog_distribution_stable") == 1
    counts = {s["status"]: value(samples, "jfrog_distribution_distributions", status=s["status"])
              for s in series(samples, "jfrog_distribution_distributions")}
    assert counts == {"not_distributed": 0, "in_progress": 1, "completed": 4, "failed": 0}
    assert value(samples, "jfrog_distribution_failed_sites") == 0
    assert series(samples, "jfrog_distribution_site_failed_timestamp_seconds") == []
    assert time.time() - value(samples, "jfrog_distribution_oldest_in_progress_start_timestamp_seconds") \
        == pytest.approx(5 * 60, abs=60)
    assert value(samples, "jfrog_distribution_received_release_bundles") == 3


async def test_failed_and_stuck_distributions_and_an_unhealthy_service(sim, collect_once) -> None:
    url, state = await sim.start("distribution")
    samples, engine = await collect_once([make_target(url)], only=["distribution"])
    now = time.time()
    assert value(samples, "jfrog_distribution_distributions", status="failed") == 2
    assert value(samples, "jfrog_distribution_distributions", status="not_distributed") == 1
    # web-app 1.1.0 failed to edge-us and was retried there with success: only payments 2.4.0's two sites remain.
    failed = {(s["release_bundle"], s["version"], s["site"])
              for s in series(samples, "jfrog_distribution_site_failed_timestamp_seconds")}
    assert failed == {("payments", "2.4.0", "edge-us"), ("payments", "2.4.0", "edge-ap")}
    assert value(samples, "jfrog_distribution_failed_sites") == 2
    assert now - value(samples, "jfrog_distribution_site_failed_timestamp_seconds", site="edge-us") \
        == pytest.approx(30 * 60, abs=60)
    assert now - value(samples, "jfrog_distribution_oldest_in_progress_start_timestamp_seconds") \
        == pytest.approx(3 * HOUR, abs=60)
    # No user, error text or tracker id reaches a label.
    assert engine.store.payload is not None
    text = engine.store.payload.text.decode()
    assert "release-manager" not in text and "Connection refused" not in text

    # Distribution loses a service it needs: ping answers 500 with its reason. A current fact, not a failure.
    area = distribution_data.area(state.scenario)
    assert area is not None
    area.healthy = False
    samples, _ = await collect_once([make_target(url)], only=["distribution"])
    assert value(samples, "jfrog_distribution_up") == 0
    assert value(samples, "jfrog_distribution_stable") == 0
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 1


async def test_editions_without_distribution_are_unsupported_not_failed(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, engine = await collect_once([make_target(url)], only=["distribution"])
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 1
    assert _runs(samples, "unsupported") == 1
    for endpoint in PARTS:
        assert endpoint_up(samples, endpoint, "distribution") == 1, endpoint
    assert series(samples, "jfrog_distribution_up") == []
    # One call tells: the ping's 404 (and the platform's ping that proves it is a JPD); nothing else is asked.
    asked = {endpoint for endpoint, _ in engine.targets["sim"].client.stats.counts}
    assert asked & set(PARTS) == {PING}


async def test_a_reader_token_is_forbidden_the_admin_endpoint_and_reads_the_rest(sim, collect_once) -> None:
    url, _ = await sim.start("distribution")
    samples, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["distribution"])
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 0
    assert _runs(samples, "forbidden") == 1
    assert endpoint_up(samples, RECEIVED, "distribution") == 0
    for endpoint in (PING, INFO, DISTRIBUTIONS):
        assert endpoint_up(samples, endpoint, "distribution") == 1, endpoint
    assert value(samples, "jfrog_distribution_distributions", status="failed") == 2
    assert series(samples, "jfrog_distribution_received_release_bundles") == []
    reason = engine.store.run("sim", "distribution").parts
    [received] = [p for p in reason if p.endpoint == RECEIVED]
    assert "needs an admin user" in received.reason


async def test_a_distribution_of_its_own_url_and_its_open_metrics(sim, collect_once) -> None:
    platform, _ = await sim.start("oss")  # the platform URL has no Distribution
    dist, _ = await sim.start("distribution")
    target = make_target(platform, collectors={
        "distribution": {"url": f"{dist}/distribution/"},
        "openmetrics": {"distribution": True},
    })
    samples, engine = await collect_once([target], only=["distribution", "openmetrics"])
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 1
    assert value(samples, "jfrog_distribution_up") == 1
    assert value(samples, "jfrog_distribution_distributions", status="failed") == 2
    # Calls to Distribution's URL count with the target's.
    counted = engine.targets["sim"].client.stats.counts
    assert counted[(DISTRIBUTIONS, "200")] == 1
    # Distribution's own series through the passthrough, told apart by service="distribution".
    assert value(samples, "jfds_number_of_distributions_per_status_total", service="distribution",
                 status="failed") == 2
    assert value(samples, "jfds_redis_tasks", service="distribution", queue="pending") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="distribution") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 0  # OSS: metrics disabled


async def test_a_wrong_distribution_url_is_the_exporters_fault(sim) -> None:
    platform, _ = await sim.start("distribution")
    elsewhere, _ = await sim.start("oss")
    from exporter.scheduler import Engine

    engine = Engine([make_target(platform, collectors={"distribution": {"url": elsewhere}})], only=["distribution"])
    try:
        samples = await run_and_scrape(engine, "distribution")
    finally:
        await engine.shutdown()
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 0
    assert _runs(samples, "misconfigured") == 1
    parts = {p.endpoint: p for p in engine.store.run("sim", "distribution").parts}
    assert "collectors.distribution.url" in parts[PING].reason
    assert "does not lead to JFrog Distribution" in parts[PING].reason
    assert series(samples, "jfrog_distribution_up") == []


async def test_received_bundles_without_a_total_are_paged_within_a_bound(sim, collect_once, caplog) -> None:
    # An answer that never says how many there are and always fills the page: the pages stop at the bound.
    url, state = await sim.start("distribution")
    page = json.dumps({"release_bundles": [{"name": f"rb-{i}"} for i in range(RECEIVED_PAGE)]})
    state.faults.append(Fault(route=RECEIVED, kind="answer", body=page))
    samples, engine = await collect_once([make_target(url)], only=["distribution"])
    assert value(samples, "jfrog_distribution_received_release_bundles") == RECEIVED_PAGE * RECEIVED_MAX_PAGES
    assert engine.targets["sim"].client.stats.counts[(RECEIVED, "200")] == RECEIVED_MAX_PAGES
    assert any("counted the first" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
async def test_large_distribution_history_keeps_failures_bounded(sim, collect_once) -> None:
    url, state = await sim.start("large")
    area = distribution_data.area(state.scenario)
    assert area is not None and len(area.distributions) == 10_000
    started = time.perf_counter()
    samples, _ = await collect_once([make_target(url, collectors={"distribution": {"max_failures": 50}})],
                                    only=["distribution"])
    elapsed = time.perf_counter() - started
    assert value(samples, "jfrog_exporter_collector_success", collector="distribution") == 1
    assert value(samples, "jfrog_distribution_distributions", status="failed") == 1_000
    assert value(samples, "jfrog_distribution_failed_sites") == 1_000
    assert len(series(samples, "jfrog_distribution_site_failed_timestamp_seconds")) == 50
    distribution_series = sum(1 for name, _ in samples if name.startswith("jfrog_distribution_"))
    assert distribution_series < 70
    assert value(samples, "jfrog_distribution_received_release_bundles") == 1_000
    # The simulator encodes the 12 MB status list once and serves the bytes from then on.
    assert area.encoded is not None and len(area.encoded) > 10_000_000
    # About 5 s on 2 idle cores (the first encoding included); far more would mean something grew quadratic.
    assert elapsed < 30, elapsed


def test_the_large_scenario_grows_its_distributions_with_its_scale() -> None:
    area = distribution_data.area(build("large", scale=100))
    assert area is not None and len(area.distributions) == 100
