"""Collector `health`: the simulator's editions over HTTP."""

from __future__ import annotations

from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_READER_TOKEN
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import DAY, today_midnight
from tests.conftest import make_target
from tests.support import Clock, Samples, endpoint_last_success, endpoint_up, parse_exposition, run_and_scrape, value


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
    # JFConnect wants a token: refused, it is not reported down but not known either. Access answers anyone.
    assert value(samples, "jfrog_service_up", service="jfconnect") is None
    assert value(samples, "jfrog_service_up", service="access") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/jfconnect/api/v1/system/ping") == 0
    parts = {p.endpoint: p.outcome.value for p in engine.store.run("sim", "health").parts}
    assert parts["/jfconnect/api/v1/system/ping"] == "unauthorized"


async def test_non_admin_token_fails_only_the_license_part(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["health"])
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_ready") == 1
    assert value(samples, "jfrog_artifactory_info", version="7.104.3") == 1
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="router") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 0
    assert value(samples, "jfrog_exporter_credentials_accepted") == 1
    # The services' probes work for any user; only Access Federation's targets need an admin.
    assert value(samples, "jfrog_service_up", service="jfconnect") == 1
    assert value(samples, "jfrog_service_ready", service="jfconnect") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/access/api/v1/system/federation") == 0
    assert value(samples, "jfrog_access_federation_targets") is None
    run = engine.store.run("sim", "health")
    assert run.outcome.value == "forbidden"
    assert {p.endpoint for p in run.parts if p.outcome.value == "forbidden"} == {
        "/artifactory/api/system/licenses", "/access/api/v1/system/federation"}
    assert run.reason.startswith("2 of 9 parts failed; first: ")
    # Some parts answer: the JPD is not in trouble, so the collector keeps its interval.
    assert run.consecutive_outages == 0


async def test_unreachable_jpd_is_down_and_keeps_its_license(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    engine = Engine([make_target(url, retries=0)], ["health"])
    try:
        await engine.run_all_once()
        await sim.runners.pop().cleanup()  # the JPD goes away
        await engine.run_all_once()
        await engine.run_all_once()  # its ping failed: the details are read again, and fail too
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
    finally:
        await engine.shutdown()
    assert value(samples, "jfrog_up") == 0
    assert value(samples, "jfrog_ready") == 0
    # The services are down with it; the federation targets configured stay as last read.
    assert value(samples, "jfrog_service_up", service="jfconnect") == 0
    assert value(samples, "jfrog_service_up", service="access") == 0
    assert value(samples, "jfrog_service_ready", service="jfconnect") == 0
    assert value(samples, "jfrog_access_federation_targets") == 2
    assert value(samples, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == today_midnight() + 400 * DAY
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 0
    assert engine.store.run("sim", "health").outcome.value == "unreachable"


# -- platform services: JFConnect, Access, Access Federation -------------------------------------

JFCONNECT_PING = "/jfconnect/api/v1/system/ping"
ACCESS_FEDERATION = "/access/api/v1/system/federation"


async def test_services_up_and_federation_targets_without_secrets(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_service_up", service="jfconnect") == 1
    assert value(samples, "jfrog_service_up", service="access") == 1
    assert value(samples, "jfrog_service_ready", service="jfconnect") == 1
    assert value(samples, "jfrog_access_federation_targets") == 2
    assert value(samples, "jfrog_access_federation_target_info", server_name="access-eu",
                 url="https://access-eu.acme.example/access", entities="groups,permissions,users") == 1
    # User-info and query are stripped; the inactive target says so.
    assert value(samples, "jfrog_access_federation_target_info", server_name="access-dr",
                 url="https://dr.acme.example/access") == 1
    assert value(samples, "jfrog_access_federation_target_active", server_name="access-dr") == 0
    text = engine.store.payload.text.decode()
    assert "Fed3rat10n-s3cret" not in text and "s3cret-q" not in text and "federation@" not in text
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1


async def test_jfconnect_not_ready_is_data(sim, collect_once) -> None:
    url, _ = await sim.start("degraded")
    samples, engine = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_service_up", service="jfconnect") == 1
    assert value(samples, "jfrog_service_ready", service="jfconnect") == 0
    assert engine.store.run("sim", "health").outcome.value == "success"


async def test_edition_without_the_services_reports_them_unsupported(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, _ = await collect_once([make_target(url)], only=["health"])
    assert value(samples, "jfrog_service_up", service="access") == 1
    assert value(samples, "jfrog_service_up", service="jfconnect") is None
    assert value(samples, "jfrog_service_ready", service="jfconnect") is None
    assert value(samples, "jfrog_access_federation_targets") is None
    for endpoint in (JFCONNECT_PING, "/jfconnect/api/v1/system/readiness", ACCESS_FEDERATION):
        assert value(samples, "jfrog_exporter_endpoint_up", endpoint=endpoint) == 1
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 1


async def test_a_proxy_page_is_no_answer_and_a_failing_service_is_down(sim, collect_once) -> None:
    # A 200 page where "Ok" belongs says nothing about JFConnect: bad_response, no series. Access answering
    # 502 through the router is Access down while Artifactory answers.
    url, state = await sim.start("healthy")
    state.faults += [Fault(route=JFCONNECT_PING, kind="answer", body="<html><title>Sign in</title></html>",
                           content_type="text/html"),
                     Fault(route="/access/api/v1/system/ping", kind="html_502")]
    samples, engine = await collect_once([make_target(url, retries=0)], only=["health"])
    parts = {p.endpoint: p for p in engine.store.run("sim", "health").parts}
    assert parts[JFCONNECT_PING].outcome.value == "bad_response"
    assert "expected OK, got '<html>" in parts[JFCONNECT_PING].reason
    assert value(samples, "jfrog_service_up", service="jfconnect") is None
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint=JFCONNECT_PING) == 0
    assert parts["/access/api/v1/system/ping"].outcome.value == "error"
    assert value(samples, "jfrog_service_up", service="access") == 0
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_service_ready", service="jfconnect") == 1


# -- the details (version, licenses, Access Federation targets): read every details_interval -------------

PING = "/artifactory/api/system/ping"
VERSION = "/artifactory/api/system/version"
LICENSES = "/artifactory/api/system/licenses"
DETAILS = (VERSION, LICENSES, ACCESS_FEDERATION)


def _oldest_read(samples: Samples, endpoint: str) -> float | None:
    return value(samples, "jfrog_exporter_endpoint_oldest_read_timestamp_seconds", collector="health",
                 endpoint=endpoint)


async def test_details_are_held_between_reads_with_the_time_they_were_read(sim) -> None:
    url, state = await sim.start("healthy")
    clock = Clock()
    engine = Engine([make_target(url)], ["health"], clock=clock)
    try:
        first_read = clock.now
        first = await run_and_scrape(engine, "health")
        after_first = state.requests  # JFConnect is asked without credentials first, once
        clock.advance(30)
        second = await run_and_scrape(engine, "health")
        assert state.requests - after_first == 6  # the probes only
        clock.advance(870)  # 15 minutes after the first read
        third = await run_and_scrape(engine, "health")
        assert state.requests - after_first == 6 + 9
    finally:
        await engine.shutdown()
    # Held: still there, still a success, as old as the read, and its last success not moved.
    assert value(second, "jfrog_artifactory_info", version="7.104.3") == 1
    assert value(second, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == today_midnight() + 400 * DAY
    assert value(second, "jfrog_access_federation_targets") == 2
    assert value(second, "jfrog_exporter_collector_success", collector="health") == 1
    for endpoint in DETAILS:
        assert endpoint_up(second, endpoint, "health") == 1
        assert _oldest_read(second, endpoint) == first_read
        assert endpoint_last_success(second, endpoint, "health") == endpoint_last_success(first, endpoint, "health")
        assert _oldest_read(third, endpoint) == first_read + 900
        assert endpoint_last_success(third, endpoint, "health") > endpoint_last_success(first, endpoint, "health")
    assert endpoint_last_success(second, PING, "health") > endpoint_last_success(first, PING, "health")
    assert _oldest_read(second, PING) is None


async def test_details_are_read_again_when_the_jpd_answers_its_ping_again(sim) -> None:
    url, state = await sim.start("healthy")
    clock = Clock()
    engine = Engine([make_target(url, retries=0)], ["health"], clock=clock)
    try:
        await run_and_scrape(engine, "health")
        state.faults.append(Fault(route=PING, kind="error_500"))  # restarting
        clock.advance(30)
        down = await run_and_scrape(engine, "health")
        state.faults.clear()
        state.scenario.version = "7.111.4"  # it was an upgrade
        clock.advance(30)
        before = state.requests
        back = await run_and_scrape(engine, "health")
        assert state.requests - before == 9
    finally:
        await engine.shutdown()
    assert value(down, "jfrog_up") == 0
    assert value(back, "jfrog_up") == 1
    assert value(back, "jfrog_artifactory_info", version="7.111.4") == 1
    assert value(back, "jfrog_artifactory_info", version="7.104.3") is None
    assert _oldest_read(back, VERSION) == clock.now


async def test_a_failed_details_read_shows_and_is_retried_in_the_next_run(sim) -> None:
    url, state = await sim.start("healthy")
    clock = Clock()
    engine = Engine([make_target(url, retries=0)], ["health"], clock=clock)
    try:
        first = await run_and_scrape(engine, "health")
        clock.advance(900)
        state.faults.append(Fault(route=LICENSES, kind="error_500"))
        failed = await run_and_scrape(engine, "health")
        state.faults.clear()
        clock.advance(30)
        before = state.requests
        retried = await run_and_scrape(engine, "health")
        assert state.requests - before == 7  # the probes and the licenses
    finally:
        await engine.shutdown()
    # The failure shows, with the last good license and its age; the next run reads it again.
    assert endpoint_up(failed, LICENSES, "health") == 0
    assert value(failed, "jfrog_exporter_collector_success", collector="health") == 0
    assert value(failed, "jfrog_license_expiry_timestamp_seconds", node_id="art1") == today_midnight() + 400 * DAY
    assert _oldest_read(failed, LICENSES) == _oldest_read(first, LICENSES)
    assert endpoint_up(retried, LICENSES, "health") == 1
    assert _oldest_read(retried, LICENSES) == clock.now
    assert value(retried, "jfrog_exporter_collector_success", collector="health") == 1
