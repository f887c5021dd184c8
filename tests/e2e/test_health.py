"""Collector `health`: the simulator's editions over HTTP."""

from __future__ import annotations

from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_READER_TOKEN
from exporter.simulator.scenarios import DAY, today_midnight
from tests.conftest import make_target
from tests.support import parse_exposition, value


async def test_healthy_ha_pair(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_up", target="sim") == 1
    assert value(samples, "jfrog_ready", target="sim") == 1
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="router") == 1
    assert value(samples, "jfrog_router_service_healthy", node_id="art2", service_id="jfrt@01h01nodeart2") == 1
    assert value(samples, "jfrog_artifactory_info", version="7.104.3", revision="77403900") == 1
    day = today_midnight()
    assert value(samples, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == day + 400 * DAY
    assert value(samples, "jfrog_license_expiry_timestamp_seconds", node_id="art2") == day + 200 * DAY
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1


async def test_degraded_router_answers_503_with_data(sim, collect_once) -> None:
    url, _ = await sim.start("degraded")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_ready") == 0
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="jffe@01h00nodeart1") == 0
    assert value(samples, "jfrog_router_service_healthy", node_id="art2", service_id="jffe@01h01nodeart2") == 1
    # A 503 from the router is data, not a failed run.
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1
    assert value(samples, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == today_midnight() + 5 * DAY


async def test_oss_has_no_license_and_succeeds(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_license_info") is None
    assert value(samples, "jfrog_artifactory_info", version="7.77.5") == 1
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1


async def test_jcr_single_license_object(sim, collect_once) -> None:
    url, _ = await sim.start("jcr")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_license_info", license_type="JCR Edition", node_id="") == 1
    assert value(samples, "jfrog_license_expiry_timestamp_seconds") is None


async def test_cloud_license_without_expiry(sim, collect_once) -> None:
    url, _ = await sim.start("cloud")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_license_info", license_type="Enterprise+", licensed_to="Acme Corp") == 1
    assert value(samples, "jfrog_license_expiry_timestamp_seconds") is None
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1


async def test_wrong_token_is_unauthorized_but_the_jpd_is_up(sim, collect_once) -> None:
    # jfrog_up describes the JPD: ping needs no credentials, so a rejected token never makes it 0.
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token="wrong")], only=["health"])
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 0
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="health", outcome="unauthorized") == 1
    assert value(samples, "jfrog_exporter_credentials_accepted") == 0
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/ping") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/version") == 0
    assert "check the configured credentials" in engine.store.run("sim", "health").reason


async def test_non_admin_token_fails_only_the_license_part(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["health"])
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_ready") == 1
    assert value(samples, "jfrog_artifactory_info", version="7.104.3") == 1
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="router") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 0
    assert value(samples, "jfrog_exporter_credentials_accepted") == 1
    run = engine.store.run("sim", "health")
    assert run.outcome.value == "forbidden"
    assert run.reason.startswith("1 of 5 parts failed; first: /artifactory/api/system/licenses: HTTP 403")
    # Some parts answer: the JPD is not in trouble, so the collector keeps its interval.
    assert run.consecutive_outages == 0


async def test_unreachable_jpd_is_down_and_keeps_its_license(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    engine = Engine([make_target(url)], ["health"])
    try:
        await engine.run_all_once()
        await sim.runners.pop().cleanup()  # the JPD goes away
        await engine.run_all_once()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
    finally:
        await engine.shutdown()
    assert value(samples, "jfrog_up") == 0
    assert value(samples, "jfrog_ready") == 0
    assert value(samples, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == today_midnight() + 400 * DAY
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 0
    assert engine.store.run("sim", "health").outcome.value == "unreachable"
