"""Collector `distribution`: the parsers on the documented payloads, and the families built from them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from exporter.collectors.distribution import (
    STATES,
    Distribution,
    DistributionSettings,
    Site,
    distribution_families,
    parse_distributions,
    parse_ping,
    parse_received,
    parse_system_info,
)
from exporter.families import Emitter
from exporter.values import UnexpectedShape
from tests.support import documented, emitted


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_documented_ping_answers() -> None:
    assert parse_ping(json.dumps({"status_code": 200, "message": "ok"})) is True
    assert parse_ping(json.dumps(documented("distribution", "ping-error.json"))) is False
    assert parse_ping("OK\n") is True
    # A page that is not Distribution's answer: the caller decides whether the URL is wrong.
    assert parse_ping("<html><title>Welcome</title></html>") is None
    assert parse_ping('{"errors": []}') is None


def test_documented_system_info() -> None:
    info = parse_system_info(documented("distribution", "system-info.json"))
    assert (info.version, info.status) == ("1.0", "STABLE")
    with pytest.raises(UnexpectedShape):
        parse_system_info(["1.0"])


def test_documented_distribution_status() -> None:
    distributions = parse_distributions(documented("distribution", "status.json"))
    assert [(d.bundle, d.version, d.status) for d in distributions] == [
        ("release-bundle", "1.0.0", "failed"), ("release-bundle", "1.0.1", "in_progress"),
        ("release-bundle", "0.9.0", "not_distributed")]
    first = distributions[0]
    assert first.sites == [Site("US_NY_Art01", "failed"), Site("US_NY_Art02", "completed")]
    assert (first.started, first.finished) == (_ts("2024-08-08T07:02:26.945"), _ts("2024-08-08T07:04:26.945"))
    # One distribution alone is an object (jfrog-client-go reads either); anything else is no status list.
    assert len(parse_distributions(documented("distribution", "status.json")[0])) == 1
    with pytest.raises(UnexpectedShape):
        parse_distributions({"errors": [{"status": 500}]})


def test_families_count_every_status_and_keep_only_current_failures_most_recent_first() -> None:
    def dist(ident: int, bundle: str, status: str, started: float, *sites: tuple[str, str]) -> Distribution:
        return Distribution(ident, bundle, "1.0", status, started, started + 10,
                            [Site(name, state) for name, state in sites])

    distributions = [
        dist(1, "a", "failed", 100, ("eu", "failed"), ("us", "completed")),
        dist(2, "a", "completed", 200, ("eu", "completed")),  # the retry to eu cleared that failure
        dist(3, "b", "failed", 300, ("eu", "failed"), ("us", "failed")),
        dist(4, "c", "in_progress", 50, ("eu", "in_progress")),
        dist(5, "c", "in_progress", 400, ("us", "in_progress")),
        dist(6, "d", "In queue", 500),  # undocumented: counted as unknown
    ]
    out = Emitter("t")
    distribution_families(distributions, 1, out)
    samples = emitted(out)

    def get(name: str, **labels: str) -> float | None:
        return samples.get((name, frozenset({"target": "t", **labels}.items())))

    assert {s: get("jfrog_distribution_distributions", status=s) for s in (*STATES, "unknown")} == {
        "not_distributed": 0, "in_progress": 2, "completed": 1, "failed": 2, "unknown": 1}
    assert get("jfrog_distribution_failed_sites") == 2
    # max_failures=1: only the most recent failure has a series; its value is when it finished.
    failed = [(dict(labels), v) for (n, labels), v in samples.items()
              if n == "jfrog_distribution_site_failed_timestamp_seconds"]
    assert len(failed) == 1
    labels, when = failed[0]
    assert (labels["release_bundle"], labels["site"], when) == ("b", "eu", 310)
    assert get("jfrog_distribution_oldest_in_progress_start_timestamp_seconds") == 50


def test_documented_received_bundles_total_may_be_a_string() -> None:
    assert parse_received(documented("distribution", "received.json")) == (2, 2)
    assert parse_received({"release_bundles": [], "total": 0}) == (0, 0)
    assert parse_received({"release_bundles": [{}, {}]}) == (None, 2)
    assert parse_received({"release_bundles": [], "total": "1e999"}) == (None, 0)


def test_settings_accept_distributions_own_url_with_or_without_its_context() -> None:
    assert DistributionSettings(url="https://dist.example:8082/distribution/").url == "https://dist.example:8082"
    assert DistributionSettings(url="https://dist.example").url == "https://dist.example"
    with pytest.raises(ValueError, match="credentials must not be part of the URL"):
        DistributionSettings(url="https://user:secret@dist.example")
