"""Collector `health`: documented payloads, then the simulator's editions over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from exporter.collectors.health import (
    parse_licenses,
    parse_ping,
    parse_readiness,
    parse_router_health,
    parse_version,
)
from exporter.simulator.scenarios import DAY, today_midnight
from tests.conftest import make_target
from tests.support import REPO, value

PAYLOADS = REPO / "tests" / "payloads" / "core"


def test_ping_and_readiness_samples() -> None:
    # 4.2.2 and 4.2.3 (jfrog-rest-apis.txt lines 19108-19160).
    assert parse_ping("OK")
    assert parse_ping("OK\n")
    assert not parse_ping("<html>Bad gateway</html>")
    assert parse_readiness({"code": "OK"})
    assert not parse_readiness({"code": "UNAVAILABLE"})
    assert not parse_readiness("OK")


def test_router_health_unhealthy_sample_reports_each_service() -> None:
    # 4.3.1: the 503 answer carries the same JSON body.
    body = json.loads((PAYLOADS / "router-health-unhealthy.json").read_text())
    services = {(s.node_id, s.service_id): s.healthy for s in parse_router_health(body)}
    assert services == {
        ("12345-defg-6789", "router"): True,
        ("12345-defg-6789", "jfrt@1234"): False,
        ("12345-defg-6789", "jffe@9876"): False,
    }


def test_version_sample() -> None:
    assert parse_version({"version": "2.2.2", "revision": "10427", "addons": ["build"]}) == ("2.2.2", "10427")
    with pytest.raises(ValueError):
        parse_version(["2.2.2"])


def test_single_license_sample() -> None:
    # 4.2.9 sample.
    [lic] = parse_licenses({"type": "Commercial", "validThrough": "May 15, 2014", "licensedTo": "JFrog inc."})
    assert (lic.license_type, lic.licensed_to, lic.node_id) == ("Commercial", "JFrog inc.", "")
    assert lic.expires == datetime(2014, 5, 15, tzinfo=UTC).timestamp()


def test_ha_licenses_sample_and_unassigned_node() -> None:
    # 4.2.11 sample: the second license is "Not in use".
    licenses = parse_licenses(json.loads((PAYLOADS / "licenses-ha.json").read_text()))
    assert sorted(lic.node_id for lic in licenses) == ["", "art1"]
    assert all(lic.expires == datetime(2018, 5, 15, tzinfo=UTC).timestamp() for lic in licenses)


def test_cloud_license_has_no_expiry() -> None:
    [lic] = parse_licenses({"type": "Enterprise+", "validThrough": "N/R", "licensedTo": "Acme"})
    assert lic.expires is None


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


async def test_wrong_token_is_unauthorized_and_down(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token="wrong")], only=["health"])
    assert value(samples, "jfrog_up") == 0
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 0
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="health", outcome="unauthorized") == 1
    assert "check the configured credentials" in engine.store.run("sim", "health").reason
