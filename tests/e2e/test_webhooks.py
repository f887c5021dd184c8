"""Collector `webhooks` over HTTP against the simulator: subscriptions, and deliveries counted once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import pytest

from exporter.collectors.webhooks import SUBSCRIPTIONS, TROUBLESHOOTING, delivery_result
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_READER_TOKEN, SimState
from exporter.simulator.webhooks_data import SECRET_MARK, SubscriptionSpec, WebhooksArea, area
from tests.conftest import make_target
from tests.support import Samples, endpoint_up, parse_exposition, series, value

DELIVERIES = "jfrog_webhook_deliveries_total"
WATERMARK = "jfrog_webhook_deliveries_watermark_timestamp_seconds"


class Poller:
    """One exporter engine kept across runs, as the scheduler keeps it."""

    def __init__(self, url: str, token: str | None = None, **settings: Any) -> None:
        settings.setdefault("settle", 0)  # up to now: the simulator's records are final at once
        target = make_target(url, collectors={"webhooks": settings}, retries=0,
                             **({"token": token} if token else {}))
        self.engine = Engine([target], only=["webhooks"])

    async def poll(self) -> Samples:
        await self.engine.run_all_once()
        assert self.engine.store.payload is not None
        return parse_exposition(self.engine.store.payload.text.decode())

    def outcome(self) -> str:
        return str(self.engine.store.run("sim", "webhooks").outcome)

    async def close(self) -> None:
        await self.engine.shutdown()


def _area(state: SimState) -> WebhooksArea:
    found = area(state.scenario)
    assert found is not None
    return found


def _busy(state: SimState) -> WebhooksArea:
    """Subscriptions that deliver every few milliseconds, some failing, so two polls apart see new records."""
    data = _area(state)
    data.origin = time.time() - 60
    data.subscriptions = [
        SubscriptionSpec("fast", period=0.011, fail_every=4, fail_status=503),
        SubscriptionSpec("flaky", domain="docker", event_types=("pushed",), period=0.017, fail_every=3,
                         fail_status=None),
        SubscriptionSpec("refused", period=0.023, fail_every=2, fail_status=404),
        SubscriptionSpec("off", enabled=False),
    ]
    return data


def truth(data: WebhooksArea, start_s: float, end_s: float) -> Counter[tuple[str, str]]:
    """What the JPD delivered in [start, end): (subscription, result) -> count."""
    records = data.deliveries(round(start_s * 1000), round(end_s * 1000), None)
    status = [(r["event"]["subscription_key"], r.get("response", {}).get("status")) for r in records]
    return Counter((key, delivery_result(code)) for key, code in status)


def counted(samples: Samples) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for labels in series(samples, DELIVERIES):
        got = value(samples, DELIVERIES, subscription=labels["subscription"], result=labels["result"])
        if got:
            out[(labels["subscription"], labels["result"])] = int(got)
    return out


async def test_deliveries_counted_once_across_polls_and_restarts(sim) -> None:
    url, state = await sim.start("healthy")
    data = _busy(state)
    poller = Poller(url)
    try:
        samples = await poller.poll()  # the first run only starts the clock: the last minute is history
        start = value(samples, WATERMARK)
        assert start is not None and abs(start - time.time()) < 5
        assert value(samples, DELIVERIES, subscription="fast", result="success") == 0
        assert value(samples, DELIVERIES, subscription="off", result="error") == 0  # listed: its 0 is there
        assert value(samples, "jfrog_webhook_subscriptions", state="enabled") == 3
        assert value(samples, "jfrog_webhook_subscription_enabled", subscription="flaky", domain="docker",
                     event_types="pushed") == 1
        await asyncio.sleep(0.3)
        await poller.poll()
        await asyncio.sleep(0.2)
        samples = await poller.poll()
        end = value(samples, WATERMARK)
        assert end is not None
        expected = truth(data, start, end)
        assert counted(samples) == expected
        assert {result for _, result in expected} == {"success", "failed_4xx", "failed_5xx", "error"}
        failures = [r for r in data.deliveries(round(start * 1000), round(end * 1000), None)
                    if r["event"]["subscription_key"] == "flaky" and "response" not in r]
        assert value(samples, "jfrog_webhook_last_failure_timestamp_seconds", subscription="flaky") == \
            pytest.approx(failures[-1]["timestamp"] / 1000)
        total = sum(expected.values())
        assert value(samples, "jfrog_webhook_delivery_duration_seconds_count") == total
        assert value(samples, "jfrog_webhook_truncated_polls_total") == 0
        assert poller.outcome() == "success"
    finally:
        await poller.close()
    # A restarted exporter starts again at 0 and counts only what happens from then on: no burst.
    restarted = Poller(url)
    try:
        samples = await restarted.poll()
        assert counted(samples) == Counter()
        again = value(samples, WATERMARK)
        assert again is not None and again >= end
        await asyncio.sleep(0.2)
        samples = await restarted.poll()
        assert counted(samples) == truth(data, again, value(samples, WATERMARK) or 0)
    finally:
        await restarted.close()


async def test_a_full_answer_is_paged_and_the_rest_read_next_run(sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="exporter.collectors.webhooks")
    url, state = await sim.start("healthy")
    data = _busy(state)
    poller = Poller(url, count=7, max_pages=3)
    try:
        samples = await poller.poll()
        start = value(samples, WATERMARK)
        assert start is not None
        await asyncio.sleep(0.3)
        frozen = time.time()
        data.clock = lambda: frozen  # nothing happens after this: the backlog is finite
        samples = await poller.poll()
        # Three pages of seven, each going on from the previous one's newest record (asked for again): at most
        # 7 + 6 + 6, everything before the watermark, and at it no more than the JPD has.
        mark = value(samples, WATERMARK) or 0
        got = sum(counted(samples).values())
        assert sum(truth(data, start, mark).values()) <= got <= sum(truth(data, start, mark + 0.001).values())
        assert 14 <= got <= 19
        assert value(samples, "jfrog_webhook_truncated_polls_total") == 1
        assert mark < frozen
        runs = 1
        while (value(samples, WATERMARK) or 0) < frozen - 0.001 and runs < 20:
            samples = await poller.poll()
            runs += 1
        assert counted(samples) == truth(data, start, frozen + 0.001)
        assert runs > 2 and value(samples, "jfrog_webhook_truncated_polls_total") == runs - 1  # all but the last
        assert value(samples, "jfrog_webhook_records_skipped_total", reason="over_limit") == 0
        said = [r.getMessage() for r in caplog.records if r.name == "exporter.collectors.webhooks"]
        assert len(said) == 2 and "did not reach the present" in said[0] and said[1].endswith("caught up")
        assert poller.outcome() == "success"
    finally:
        await poller.close()


async def test_reader_token_is_forbidden(sim) -> None:
    url, _ = await sim.start("healthy")
    poller = Poller(url, token=DEFAULT_READER_TOKEN)
    try:
        samples = await poller.poll()
        assert poller.outcome() == "forbidden"
        assert value(samples, "jfrog_exporter_collector_runs_total", collector="webhooks", outcome="forbidden") == 1
        assert value(samples, "jfrog_exporter_collector_success", collector="webhooks") == 0
        for endpoint in (SUBSCRIPTIONS, TROUBLESHOOTING):
            assert endpoint_up(samples, endpoint, "webhooks") == 0
        assert series(samples, DELIVERIES) == []
        assert series(samples, "jfrog_webhook_subscription_enabled") == []
    finally:
        await poller.close()


@pytest.mark.parametrize("scenario", ["oss", "jcr"])
async def test_editions_without_the_event_service_are_unsupported(sim, scenario: str) -> None:
    url, _ = await sim.start(scenario)
    poller = Poller(url)
    try:
        for _ in range(2):
            samples = await poller.poll()
        assert poller.outcome() == "unsupported"
        assert value(samples, "jfrog_exporter_collector_success", collector="webhooks") == 1
        assert value(samples, "jfrog_exporter_collector_runs_total", collector="webhooks", outcome="unsupported") == 2
        for endpoint in (SUBSCRIPTIONS, TROUBLESHOOTING):
            assert endpoint_up(samples, endpoint, "webhooks") == 1
        assert series(samples, DELIVERIES) == []
        assert series(samples, WATERMARK) == []
    finally:
        await poller.close()


async def test_no_secret_reaches_metrics_or_logs(sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url, state = await sim.start("degraded")
    data = _area(state)
    for spec in data.subscriptions:
        spec.period = 0.013  # many deliveries, failing ones among them, between two polls
    poller = Poller(url, count=50, max_pages=1)  # truncation warnings too
    try:
        await poller.poll()
        await asyncio.sleep(0.25)
        samples = await poller.poll()
        text = poller.engine.store.payload.text.decode() if poller.engine.store.payload else ""
    finally:
        await poller.close()
    assert {result for _, result in counted(samples)} >= {"failed_5xx", "failed_4xx", "error"}
    assert value(samples, "jfrog_webhook_truncated_polls_total") == 1
    logs = "\n".join(r.getMessage() + " " + " ".join(map(str, getattr(r, "args", ()) or ())) for r in caplog.records)
    for where in (text, logs):
        assert SECRET_MARK not in where
        assert "hooks.example.test" not in where and "ci.example.test" not in where  # no receiver URL at all
        assert "X-Team-Token" not in where and "app-" not in where  # no header names, no payload content


async def test_large_scenario_has_1000_subscriptions(sim) -> None:
    url, _ = await sim.start("large")
    poller = Poller(url)
    try:
        samples = await poller.poll()
    finally:
        await poller.close()
    assert poller.outcome() == "success"
    assert len(series(samples, "jfrog_webhook_subscription_enabled")) == 1000
    assert value(samples, "jfrog_webhook_subscriptions", state="enabled") == 950
    # Every subscription's counters start at 0, one series per result.
    assert len(series(samples, DELIVERIES)) == 5000
