"""Collector `webhooks`: parsers on the documented samples, counting at window edges, and the queries a run
makes against a mock Event service (always bounded, a stuck millisecond reported, a bad answer failing the
part while the counters stay)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from exporter.client import JfrogClient
from exporter.collectors.base import Run
from exporter.collectors.webhooks import (
    SUBSCRIPTIONS,
    TROUBLESHOOTING,
    Delivery,
    Ledger,
    Page,
    WebhooksCollector,
    WebhooksSettings,
    delivery_families,
    for_recording,
    parse_subscriptions,
    parse_troubleshooting,
    subscription_families,
)
from exporter.families import Emitter
from exporter.outcomes import Outcome
from tests.conftest import make_target
from tests.support import REPO, Samples, documented, emitted, jfrog_platform

PAYLOADS = REPO / "tests" / "payloads" / "webhooks"


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset({("target", "t"), *labels.items()})))


# -- parsers ---------------------------------------------------------------------------------------

def test_subscriptions_as_documented_keep_no_handler_detail() -> None:
    # seeds/jfrog-rest-apis.txt 4.11.2; the sample is split by a page break: SecurityAudit's handlers follow it.
    subscriptions = parse_subscriptions(documented("webhooks", "subscriptions.json"))
    assert [(s.key, s.enabled, s.domain, s.event_types) for s in subscriptions] == [
        ("QaAudit", True, "artifact", ("deployed",)),
        ("SecurityAudit", True, "artifact", ("deployed",)),
    ]
    custom = parse_subscriptions([documented("webhooks", "custom-webhook.json")])
    assert [(s.key, s.domain) for s in custom] == [("trigger_action", "artifact")]
    text = repr(subscriptions) + repr(custom)
    for secret in ("tell no one", "hush hush", "whatever", "my-company", "github.com", "secrets.token"):
        assert secret not in text
    out = Emitter("t")
    subscription_families([*subscriptions, *custom], out)
    samples = emitted(out)
    assert get(samples, "jfrog_webhook_subscription_enabled", subscription="QaAudit", domain="artifact",
               event_types="deployed") == 1
    assert get(samples, "jfrog_webhook_subscriptions", state="enabled") == 3
    assert get(samples, "jfrog_webhook_subscriptions", state="disabled") == 0


def test_subscription_fields_read_leniently() -> None:
    subscriptions = parse_subscriptions({"subscriptions": [
        {"key": "a", "enabled": False, "event_filter": {"domain": "docker", "event_types": ["pushed", "deleted"]}},
        {"key": "b"},  # enabled by default, as the Terraform provider creates them
        {"description": "no key: nothing to name it by"},
    ]})
    assert [(s.key, s.enabled, s.domain, s.event_types) for s in subscriptions] == [
        ("a", False, "docker", ("deleted", "pushed")), ("b", True, "", ())]
    with pytest.raises(ValueError):
        parse_subscriptions({"key": "not a list"})
    with pytest.raises(ValueError):
        parse_subscriptions(["not an object"])


def test_troubleshooting_records_as_documented() -> None:
    # seeds/jfrog-rest-apis.txt 4.11.11: JSON objects one after the other, not an array.
    page = parse_troubleshooting((PAYLOADS / "troubleshooting-historical.txt").read_text())
    assert [(r.at_ms, r.subscription, r.event_id, r.status, r.elapsed_ms, r.result) for r in page.records] == [
        (14354677655, "test", "01HA4MPK6XVKTD0XMS9SVM1GER", 404, 208, "failed_4xx"),
        (14354677669, "test", "01HA4MPK6XVKTD0XMSSVM1GSR", 404, 228, "failed_4xx"),
    ]
    assert page.unreadable == 0
    assert "webhook-target" not in repr(page) and "Alias" not in repr(page) and "some.log" not in repr(page)


def test_troubleshooting_other_shapes() -> None:
    records = [{"timestamp": 5, "elapsed_millis": 10, "response": {"status": 204}, "event": {"subscription_key": "a"}},
               {"timestamp": 6, "elapsed_millis": 3000, "errors": ["connection refused"],
                "event": {"subscription_key": "a", "id": "x"}},
               {"timestamp": "7", "response": {"status": 302}, "event": {"subscription_key": "b"}},
               {"timestamp": 8, "response": {"status": 500}, "event": {"subscription_key": "b"}},
               {"elapsed_millis": 1, "event": {"subscription_key": "a"}},  # no time: cannot be placed in a window
               {"timestamp": 9}]  # no subscription: marks how far the page reached, counted under none
    for body in (records, "\n".join(json.dumps(r) for r in records), json.dumps(records), ""):
        page = parse_troubleshooting(body)
        if body == "":
            assert page == Page([], 0)
            continue
        assert [(r.subscription, r.result) for r in page.records] == [
            ("a", "success"), ("a", "error"), ("b", "failed_other"), ("b", "failed_5xx"), ("", "error")]
        assert page.unreadable == 1
    with pytest.raises(ValueError):
        parse_troubleshooting('{"timestamp": 1,')
    with pytest.raises(ValueError):
        parse_troubleshooting("<html>proxy error</html>")
    with pytest.raises(ValueError):
        parse_troubleshooting("[1, 2]")


def test_recordings_keep_only_what_the_parsers_read() -> None:
    raw = (PAYLOADS / "troubleshooting-historical.txt").read_bytes()
    reduced = for_recording(TROUBLESHOOTING, raw)
    assert reduced is not None
    assert parse_troubleshooting(reduced.decode()) == parse_troubleshooting(raw.decode())
    assert b"webhook-target" not in reduced and b"Alias" not in reduced and b"some.log" not in reduced
    listed = (PAYLOADS / "subscriptions.json").read_bytes()
    reduced = for_recording(SUBSCRIPTIONS, listed)
    assert reduced is not None
    assert parse_subscriptions(json.loads(reduced)) == parse_subscriptions(json.loads(listed))
    assert b"tell no one" not in reduced and b"my-company" not in reduced and b"X-MyCompany" not in reduced
    assert for_recording(SUBSCRIPTIONS, b"<html>proxy error</html>") is None  # scrubbed like any other page
    assert for_recording("/artifactory/api/storageinfo", listed) is None


# -- counting --------------------------------------------------------------------------------------

def _delivery(at_ms: int, subscription: str = "a", status: int | None = 200, event: str = "e") -> Delivery:
    return Delivery(at_ms, subscription, f"{event}{at_ms}", status, 100.0, 0)


def test_a_record_on_the_edge_of_two_windows_counts_once() -> None:
    ledger = Ledger(watermark_ms=1000)
    edge = _delivery(2000, status=503)
    # A server comparing end inclusively answers the record at 2000 in both windows.
    assert ledger.count(Page([_delivery(1000), _delivery(1500), edge]), 1000, 2000) == 3
    ledger.advance(2000)
    assert ledger.count(Page([edge, _delivery(2500, status=None), _delivery(999)]), 2000, 3000) == 1
    ledger.advance(3000)
    assert ledger.counts == {"a": {"success": 2, "failed_5xx": 1, "error": 1}}
    assert ledger.last_failure == {"a": 2.5}
    assert list(ledger.seen) == []  # below the watermark nothing is remembered
    ledger.know(["a", "quiet"])
    out = Emitter("t")
    delivery_families(ledger, out)
    samples = emitted(out)
    assert get(samples, "jfrog_webhook_deliveries_total", subscription="quiet", result="success") == 0
    assert get(samples, "jfrog_webhook_deliveries_total", subscription="a", result="failed_4xx") == 0
    assert get(samples, "jfrog_webhook_delivery_duration_seconds_count") == 4
    assert get(samples, "jfrog_webhook_deliveries_watermark_timestamp_seconds") == 3.0


def test_subscriptions_nobody_listed_are_bounded() -> None:
    ledger = Ledger(watermark_ms=0)
    ledger.know(["a"])
    records = [_delivery(1, subscription=f"ghost-{i}", event=str(i)) for i in range(1500)]
    assert ledger.count(Page(records), 0, 10) == 1000
    assert len(ledger.counts) == 1001  # the listed one and 1,000 more
    assert ledger.skipped["unlisted"] == 500


# -- runs against a mock Event service -------------------------------------------------------------

def event_service(records: list[dict[str, Any]], queries: list[dict[str, int]],
                  status: int = 200, body: str | None = None) -> httpx.MockTransport:
    """Records at fixed times: [start, end) oldest first, at most count, as the documents say."""
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == SUBSCRIPTIONS:
            return httpx.Response(200, json=[{"key": "a", "enabled": True}])
        assert request.url.path == TROUBLESHOOTING
        query = {k: int(v[0]) for k, v in parse_qs(request.url.query.decode()).items()}
        queries.append(query)
        if status != 200 or body is not None:
            return httpx.Response(status, text=body or "")
        found = [r for r in records if query["start"] <= r["timestamp"] < query["end"]][:query["count"]]
        return httpx.Response(200, text="\n".join(json.dumps(r) for r in found))
    return jfrog_platform(handle)


async def _runs(transport: httpx.MockTransport, runs: int, **settings: Any) -> tuple[WebhooksCollector, list[Run]]:
    target = make_target("http://jpd.test", retries=0, collectors={"webhooks": {"settle": 0, **settings}})
    client = JfrogClient(target, transport=transport)
    config = target.collector_settings("webhooks")
    assert isinstance(config, WebhooksSettings)
    collector = WebhooksCollector(target, config)
    done = []
    try:
        for _ in range(runs):
            done.append(Run(target, client, "webhooks"))
            await collector.collect(done[-1])
    finally:
        await client.aclose()
    return collector, done


async def test_every_query_is_bounded_and_a_crowded_millisecond_is_reported() -> None:
    queries: list[dict[str, int]] = []
    records: list[dict[str, Any]] = []
    transport = event_service(records, queries)
    collector, _ = await _runs(transport, 1, count=3, max_pages=4)
    assert collector.ledger.watermark_ms is not None
    start = collector.ledger.watermark_ms - 100  # the next run reads from here, all of it in the past
    collector.ledger.watermark_ms = start
    # Four records in one millisecond, two after it.
    records += [{"timestamp": start + 1, "event": {"subscription_key": "a", "id": str(i)}} for i in range(4)]
    records += [{"timestamp": start + 2 + i, "event": {"subscription_key": "a", "id": f"n{i}"}} for i in range(2)]
    _, (run,) = await _runs_again(collector, transport)
    assert all({"start", "end", "count"} <= set(q) for q in queries)  # never a live stream
    assert run.parts[TROUBLESHOOTING].outcome is Outcome.SUCCESS
    # 3 of the crowded millisecond (the 4th is lost, and said so), then the 2 after it; no answer: "error".
    assert collector.ledger.counts["a"] == {"error": 5}
    assert collector.ledger.skipped["over_limit"] == 1


async def _runs_again(collector: WebhooksCollector, transport: httpx.MockTransport) -> tuple[None, list[Run]]:
    client = JfrogClient(collector.target, transport=transport)
    run = Run(collector.target, client, "webhooks")
    try:
        await collector.collect(run)
    finally:
        await client.aclose()
    return None, [run]


async def test_a_full_page_of_unreadable_records_is_not_taken_for_the_end() -> None:
    queries: list[dict[str, int]] = []
    records: list[dict[str, Any]] = []
    transport = event_service(records, queries)
    collector, _ = await _runs(transport, 1, count=2, max_pages=5)
    assert collector.ledger.watermark_ms is not None
    start = collector.ledger.watermark_ms = collector.ledger.watermark_ms - 100
    records += [{"timestamp": start + 1, "event": {}}, {"timestamp": start + 2, "event": {}},  # no subscription
                {"timestamp": start + 3, "event": {"subscription_key": "a", "id": "x"}, "response": {"status": 200}}]
    _, (run,) = await _runs_again(collector, transport)
    assert run.parts[TROUBLESHOOTING].outcome is Outcome.SUCCESS
    # A full page of records without a subscription is paged over by their time; each is skipped once.
    assert collector.ledger.skipped == {"unreadable": 2, "over_limit": 0, "unlisted": 0}
    assert collector.ledger.counts["a"] == {"success": 1}


async def test_a_bad_answer_fails_the_part_and_keeps_the_counts() -> None:
    queries: list[dict[str, int]] = []
    collector, runs = await _runs(event_service([], queries), 2)
    assert [r.parts[TROUBLESHOOTING].outcome for r in runs] == [Outcome.SUCCESS, Outcome.SUCCESS]
    collector.ledger.counts["a"] = {"success": 7}
    _, (bad,) = await _runs_again(collector, event_service([], queries, body="<html>proxy error</html>"))
    part = bad.parts[TROUBLESHOOTING]
    assert part.outcome is Outcome.BAD_RESPONSE
    assert part.families is not None  # the counters are still true, only not advanced
    values = {(s.name, s.labels.get("result")): s.value for f in part.families for s in f.samples
              if s.labels.get("subscription") == "a"}
    assert values[("jfrog_webhook_deliveries_total", "success")] == 7
    _, (down,) = await _runs_again(collector, event_service([], queries, status=503))
    assert down.parts[TROUBLESHOOTING].outcome is Outcome.ERROR
