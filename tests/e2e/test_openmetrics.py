"""Collector `openmetrics` over HTTP: the simulator's services, a failing one next to a working one, the
command line, and a real Prometheus scraping the exporter with passthrough on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from exporter.collectors.openmetrics import ARTIFACTORY_METRICS, RTFS_METRICS
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.server import landing_page
from exporter.simulator.core import DEFAULT_READER_TOKEN
from exporter.simulator.faults import Fault
from exporter.simulator.routes.openmetrics import OpenMetricsBodies
from exporter.simulator.scenarios import GB
from exporter.snapshot import Payload
from tests.conftest import InProcessSimulator, make_target
from tests.prometheus import exposition_problems, prometheus_server, text_format_proxy
from tests.support import REPO, Samples, exporter, parse_exposition, run_cli, scrape, series, simulator, value

CollectOnce = Callable[..., Any]

# 2.3.34 Get the Open Metrics for Artifactory (jfrog-rest-apis.txt lines 4666-4704), copied verbatim.
ARTIFACTORY_DOCUMENTED = (REPO / "tests" / "payloads" / "openmetrics" / "artifactory-documented.txt").read_text()


def _check_payload(payload: Payload) -> None:
    """Parsed by promtool and the strict OpenMetrics parser, no duplicate series, one TYPE per name."""
    text, om = payload.text.decode(), payload.openmetrics.decode()
    problems = exposition_problems(text, om)
    assert problems == [], f"{problems}\n{text}"


# -- over HTTP against the simulator ---------------------------------------------------


async def test_healthy_jpd_with_federation_service(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("healthy")
    target = make_target(url, collectors={"openmetrics": {"rtfs": True}})
    samples, engine = await collect_once([target], only=["openmetrics"])
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrt_runtime_heap_maxmemory_bytes", target="sim") == 2 * GB
    # The later of the two sys_cpu_totaltime_seconds lines of the body (the simulator's first poll).
    assert value(samples, "sys_cpu_totaltime_seconds", target="sim") == pytest.approx(1576.388 + 2.5)
    assert value(samples, "jfrt_db_connections_active_total", target="sim", pool="default") == 7
    pools = series(samples, "jfrt_http_connections_max_total", target="sim")
    assert sorted(p["pool"] for p in pools) == ["docker-remote", "maven-remote", "npm-remote"]
    assert value(samples, "jfrt_artifacts_downloads_total", repo="docker-local") is not None
    # RTFS series carry service="rtfs"; a name both services publish stays two series.
    assert value(samples, "jfrtfs_worker_lag_seconds", target="sim", service="rtfs", tenant="default") == 0.4
    assert len(series(samples, "app_disk_free_bytes", target="sim")) == 2
    assert value(samples, "jfrtfs_event_processing_seconds_bucket", le="+Inf", service="rtfs") is not None
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="rtfs") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", service="artifactory", reason="duplicate") == 1
    # pq_queue_events_left is typed counter without _total: re-exposed untyped, counted.
    assert value(samples, "jfrog_openmetrics_retyped_families", service="rtfs") == 1
    exposed = [k for k in samples if not k[0].startswith("jfrog_")]
    counted = sum(v for (n, _), v in samples.items() if n == "jfrog_openmetrics_series")
    assert counted == len(exposed)
    text = engine.store.payload.text.decode()
    help_line = next(line for line in text.splitlines() if line.startswith("# HELP app_disk_used_bytes"))
    assert help_line == '# HELP app_disk_used_bytes Used bytes of the disk holding "$JFROG_HOME" (C:\\\\ on Windows)'
    om = engine.store.payload.openmetrics.decode()
    assert '# HELP app_disk_used_bytes Used bytes of the disk holding \\"$JFROG_HOME\\" (C:\\\\ on Windows)' in om
    assert all(len(line.split("} ")[-1].split()) == 1 for line in text.splitlines()
               if line.startswith("jfrt_") and "}" in line), "no sample timestamp may be re-exposed"


async def test_metrics_disabled_on_the_jpd_is_reported(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("oss")
    samples, engine = await collect_once([make_target(url)], only=["openmetrics"])
    run = engine.store.run("sim", "openmetrics")
    assert run.outcome is Outcome.UNSUPPORTED
    assert "empty body: metrics are disabled on the JPD" in run.reason
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="openmetrics", outcome="unsupported") == 1
    assert "metrics are disabled on the JPD" in landing_page(engine.store)
    assert not [n for n, _ in samples if n.startswith(("jfrt_", "sys_", "app_"))]


async def test_rtfs_missing_while_artifactory_publishes(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, state = await sim.start("healthy")
    state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory=ARTIFACTORY_DOCUMENTED, rtfs=None)
    samples, engine = await collect_once([make_target(url, collectors={"openmetrics": {"rtfs": True}})],
                                         only=["openmetrics"])
    assert engine.store.run("sim", "openmetrics").outcome is Outcome.SUCCESS
    assert value(samples, "jfrog_openmetrics_enabled", service="rtfs") == 0
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", service="artifactory",
                 reason="unparseable") == 2
    assert value(samples, "sys_cpu_totaltime_seconds", target="sim") == 1576.388


async def test_a_page_that_is_not_metrics_fails_the_run(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, state = await sim.start("healthy")
    state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="<html>\n<body>Login</body>\n</html>\n")
    _, engine = await collect_once([make_target(url)], only=["openmetrics"])
    run = engine.store.run("sim", "openmetrics")
    assert run.outcome is Outcome.BAD_RESPONSE and "no line of the body is a metric sample" in run.reason


async def test_a_body_cut_mid_line_keeps_the_last_good_data(sim: InProcessSimulator) -> None:
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url)], only=["openmetrics"])
    try:
        state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="app_disk_free_bytes 9.599553e+10\n")
        assert await engine.run_collector("sim", "openmetrics") is Outcome.SUCCESS
        # Cut in the middle of the value: "9.59" would parse, so the missing line feed is what tells.
        state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="app_disk_free_bytes 9.59")
        assert await engine.run_collector("sim", "openmetrics") is Outcome.BAD_RESPONSE
        assert "cut off" in engine.store.run("sim", "openmetrics").reason
        kept = {f.name: f for f in engine.store.families("sim", "openmetrics")}
        assert kept["app_disk_free_bytes"].samples[0].value == 9.599553e10
    finally:
        await engine.shutdown()


async def test_non_admin_token_is_forbidden(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("healthy")
    _, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["openmetrics"])
    assert engine.store.run("sim", "openmetrics").outcome is Outcome.FORBIDDEN


async def test_hostile_jpd_next_to_a_healthy_one(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    healthy_url, _ = await sim.start("healthy")
    degraded_url, _ = await sim.start("degraded")
    settings = {"openmetrics": {"rtfs": True}}
    targets = [make_target(healthy_url, name="a", collectors=settings),
               make_target(degraded_url, name="b", collectors=settings)]
    samples, engine = await collect_once(targets, only=["health", "openmetrics"])
    # The exporter's own jfrog_up wins over the vendor's.
    assert value(samples, "jfrog_up", target="b") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="artifactory",
                 reason="reserved_name") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="artifactory",
                 reason="unparseable") == 3
    assert value(samples, "jfrt_replication_queue_size", target="b", exported_target="dr-site") == 12
    # The NaN counter and the histogram without +Inf are re-exposed untyped.
    assert value(samples, "jfrog_openmetrics_retyped_families", target="b", service="artifactory") == 2
    # b's Federation service makes sys_cpu_totaltime_seconds a counter, its Artifactory a gauge: one name,
    # one kind of family (Artifactory's is read first).
    assert series(samples, "sys_cpu_totaltime_seconds", target="b") == [{"target": "b"}]
    assert series(samples, "sys_cpu_totaltime_seconds_total") == []
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="rtfs",
                 reason="name_conflict") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="a", service="rtfs",
                 reason="name_conflict") == 0
    _check_payload(engine.store.payload)


def _part(samples: Samples, name: str, endpoint: str) -> float | None:
    return value(samples, name, collector="openmetrics", endpoint=endpoint)


async def _poll(engine: Engine) -> Samples:
    await engine.run_all_once()
    assert engine.store.payload is not None
    return parse_exposition(engine.store.payload.text.decode())


async def test_a_failing_service_keeps_its_series_while_the_other_stays_current(sim: InProcessSimulator) -> None:
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url, retries=0, collectors={"openmetrics": {"rtfs": True}})], only=["openmetrics"])
    try:
        before = await _poll(engine)
        state.faults.append(Fault.parse(f"{ARTIFACTORY_METRICS}=error_500"))
        await asyncio.sleep(0.01)
        after = await _poll(engine)
        assert _part(after, "jfrog_exporter_endpoint_up", ARTIFACTORY_METRICS) == 0
        assert _part(after, "jfrog_exporter_endpoint_up", RTFS_METRICS) == 1
        last_success = "jfrog_exporter_endpoint_last_success_timestamp_seconds"
        assert _part(after, last_success, RTFS_METRICS) > _part(before, last_success, RTFS_METRICS)
        assert _part(after, last_success, ARTIFACTORY_METRICS) == _part(before, last_success, ARTIFACTORY_METRICS)
        assert value(after, "jfrog_exporter_collector_success", collector="openmetrics") == 0
        run = engine.store.run("sim", "openmetrics")
        assert run.outcome is Outcome.ERROR and ARTIFACTORY_METRICS in run.reason
        # Artifactory's series are kept as they were; the Federation service's counter moved on.
        for name in ("sys_cpu_totaltime_seconds", "jfrt_runtime_heap_maxmemory_bytes"):
            assert value(after, name, target="sim") == value(before, name, target="sim") is not None
        assert value(after, "jfrog_openmetrics_enabled", service="artifactory") == 1
        events = "jfrtfs_events_received_from_artifactory_total"
        assert value(after, events, service="rtfs") > value(before, events, service="rtfs")
        _check_payload(engine.store.payload)
    finally:
        await engine.shutdown()


# -- command line and a real Prometheus ----------------------------------------------


def test_once_with_collector_runs_exactly_that_collector(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        result = run_cli("once", "--url", sim.url, "--collector", "openmetrics",
                         env={"JFROG_ACCESS_TOKEN": "simulator-token"})
    assert result.returncode == 0, result.stderr
    samples = parse_exposition(result.stdout)
    assert [s["collector"] for s in series(samples, "jfrog_exporter_collector_success")] == ["openmetrics"]
    assert value(samples, "jfrt_runtime_heap_maxmemory_bytes") == 2 * GB
    assert series(samples, "jfrog_storage_binaries") == []


def test_serve_with_collector_runs_only_that_optional_collector(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, \
            exporter(tmp_path, "--url", sim.url, "--collector", "openmetrics") as exp:
        samples = scrape(exp.url)
    assert [s["collector"] for s in series(samples, "jfrog_exporter_collector_success")] == ["openmetrics"]
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert series(samples, "jfrog_up") == []


def _config(tmp: Path, targets: dict[str, str]) -> Path:
    lines = ["targets:"]
    for name, url in targets.items():
        lines += [
            f"  - name: {name}",
            f"    url: {url}",
            "    auth: {token_env: SIM_TOKEN}",
            "    collectors: {health: {interval: 1s}, openmetrics: {enabled: true, rtfs: true, interval: 1s}}",
        ]
    path = tmp / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_prometheus_ingests_passthrough_in_both_formats(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as a, simulator(tmp_path, "degraded") as b:
        config = _config(tmp_path, {"a": a.url, "b": b.url})
        with exporter(tmp_path, "--config", str(config), env={"SIM_TOKEN": "simulator-token"}) as exp, \
                text_format_proxy(exp.url + "/metrics") as text_url, \
                prometheus_server(tmp_path, scrape_urls=[exp.url + "/metrics", text_url]) as prom:
            targets = prom.wait_for_scrapes(3)
            assert len(targets) == 2 and all(t["health"] == "up" for t in targets), targets
            assert prom.scrape_problems() == {}, prom.output()
            direct, via_text = urlsplit(exp.url).netloc, urlsplit(text_url).netloc
            heap = prom.query("jfrt_runtime_heap_maxmemory_bytes")
            # Two targets, each ingested once as OpenMetrics (direct) and once as text (through the proxy).
            assert sorted((r["metric"]["target"], r["metric"]["instance"]) for r in heap) == sorted(
                [("a", direct), ("a", via_text), ("b", direct), ("b", via_text)])
            assert all(r["value"] == 2 * GB for r in heap)
            for instance in (direct, via_text):
                lag = prom.query(f'jfrtfs_worker_lag_seconds{{service="rtfs",instance="{instance}"}}')
                assert sorted(r["metric"]["target"] for r in lag) == ["a", "b"]
                assert prom.value(f'jfrt_replication_queue_size{{exported_target="dr-site",instance="{instance}"}}') \
                    == 12
                assert prom.value(f'jfrog_up{{target="b",instance="{instance}"}}') == 1
            # Vendor types survive both formats (OpenMetrics names a counter family without _total).
            assert [m["type"] for m in prom.metadata("jfrt_db_connections_active_total")] == ["gauge"]
            assert [m["type"] for m in prom.metadata("jfrt_artifacts_downloads")] == ["counter"]
            assert [m["type"] for m in prom.metadata("jfrt_artifacts_downloads_total")] == ["counter"]
            # This Prometheus silently keeps the last of repeated series: check the exposition itself too.
            text = httpx.get(exp.url + "/metrics").text
            om = httpx.get(exp.url + "/metrics", headers={"Accept": "application/openmetrics-text"}).text
    assert exposition_problems(text, om) == []
    assert "jfrt_db_connections_active_total{" in text and "jfrt_db_connections_active_total{" in om


def test_prometheus_helper_reports_a_failing_scrape(tmp_path: Path) -> None:
    with prometheus_server(tmp_path, scrape_urls=["http://127.0.0.1:9/metrics"]) as prom:
        prom.wait_for_scrapes(1)
        errors = prom.scrape_errors()
        assert list(errors) == ["http://127.0.0.1:9/metrics"] and errors["http://127.0.0.1:9/metrics"]
        assert prom.value("up") == 0
