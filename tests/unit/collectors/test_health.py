"""Collector `health`: documented payloads, recorded field answers, parts that fail alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.collectors.health import (
    FederationTarget,
    parse_access_federation,
    parse_licenses,
    parse_ping,
    parse_readiness,
    parse_router_health,
    parse_service_probe,
    parse_version,
)
from tests.support import documented


def test_ping_and_readiness_samples() -> None:
    # 4.2.2 and 4.2.3 (jfrog-rest-apis.txt lines 19108-19160).
    assert parse_ping("OK")
    assert parse_ping("OK\n")
    assert not parse_ping("<html>Bad gateway</html>")
    assert parse_readiness({"code": "OK"})
    assert not parse_readiness({"code": "UNAVAILABLE"})
    assert not parse_readiness("OK")


def test_service_probe_samples() -> None:
    # JFConnect answers "Ok" (4.10.1, 4.10.3), Access "OK": plain text either way.
    assert parse_service_probe("Ok")
    assert parse_service_probe("OK\n")
    assert not parse_service_probe("<html><title>Sign in</title></html>")
    assert not parse_service_probe({"code": "OK"})


def test_access_federation_sample_keeps_no_secret() -> None:
    # 4.7.7.1 sample: the URL loses its trailing slash; filters are not kept.
    assert parse_access_federation(documented("core", "access-federation.json")) == [
        FederationTarget("access-2", "https://access.example.com/access", ("groups", "permissions", "users"), True)]
    [target] = parse_access_federation({"configurations": [
        {"name": "dr", "url": "https://sync:pa55@dr.example/access/?token=t0k", "entities": ["users"]}]})
    assert (target.url, target.active) == ("https://dr.example/access", None)
    assert parse_access_federation({"configurations": []}) == []
    with pytest.raises(ValueError):
        parse_access_federation({"federations": []})


def test_router_health_unhealthy_sample_reports_each_service() -> None:
    # 4.3.1: the 503 answer carries the same JSON body.
    body = documented("core", "router-health-unhealthy.json")
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
    licenses = parse_licenses(documented("core", "licenses-ha.json"))
    assert sorted(lic.node_id for lic in licenses) == ["", "art1"]
    assert all(lic.expires == datetime(2018, 5, 15, tzinfo=UTC).timestamp() for lic in licenses)


def test_cloud_license_has_no_expiry() -> None:
    [lic] = parse_licenses({"type": "Enterprise+", "validThrough": "N/R", "licensedTo": "Acme"})
    assert lic.expires is None


