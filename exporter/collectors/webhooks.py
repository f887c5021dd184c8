"""Collector `webhooks`: the Event service's webhook subscriptions and what their deliveries did.

Deliveries come from the historical troubleshooting data of the Event service
(``GET /event/api/v1/troubleshooting?start=&end=&count=``, one record per
delivery, kept in a ring of the last 10,000). Each run asks only for the
window since the previous one, ``[watermark, now - settle]`` in epoch
milliseconds, at most ``count`` records per query:

* the first run only sets the watermark: deliveries from before the exporter
  started are history, not a burst (a restarted exporter starts its counters
  at 0 again, which ``rate()`` reads as a reset, and counts nothing twice);
* a record counts when its timestamp lies in the window and its key (time,
  subscription, event id, retries, status) was not counted before: a record
  on the boundary of two windows, which a server comparing inclusively
  answers twice, counts once;
* an answer of ``count`` records may be cut: the next query starts at the
  newest record's timestamp (the ring is read oldest first), up to
  ``max_pages`` queries per run; what is left is read by the next run, and
  the run says so in ``jfrog_webhook_truncated_polls_total``. Only records
  sharing one millisecond beyond ``count`` cannot be paged over: they are
  counted as lost in ``jfrog_webhook_records_skipped_total{reason="over_limit"}``.

The query always names ``end`` and ``count``: without them the service
streams live records and never ends the answer.

Where the documents say nothing or print a malformed sample (tests/field/webhooks.yaml):
timestamps are epoch milliseconds, ``start`` includes and ``end`` excludes, the
records come oldest first, an empty body is an empty window, and a record
without a ``response`` had no HTTP answer ("error"). Windows follow the
exporter's clock: ``settle`` also covers a JPD whose clock is a little behind.

Records and subscriptions carry URLs (with secrets in query strings or
user-info), custom headers, secrets and payloads: the parsers never read them,
so they can reach neither a label nor a log line.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import DURATION_BUCKETS, Declarations, Emitter, Histogram, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.validation import Delay
from exporter.values import UnexpectedShape, listed, scalar_text

log = logging.getLogger(__name__)

F = Declarations("webhooks")
SUBSCRIPTIONS = F.endpoint("/event/api/v1/subscriptions", Permission.ADMIN)
TROUBLESHOOTING = F.endpoint("/event/api/v1/troubleshooting", Permission.ADMIN)

#: how a delivery ended: a 2xx answer, another answer by its class, or no HTTP answer at all
RESULTS = ("success", "failed_4xx", "failed_5xx", "failed_other", "error")

SUBSCRIPTION_ENABLED = F.gauge(
    "jfrog_webhook_subscription_enabled",
    "1 if the webhook subscription is enabled (domain and event_types: what it fires on; its URL, headers and "
    "secrets are never exposed).", "subscription", "domain", "event_types")
SUBSCRIPTION_COUNT = F.gauge("jfrog_webhook_subscriptions", "Webhook subscriptions by state (enabled, disabled).",
                             "state")
DELIVERIES = F.counter(
    "jfrog_webhook_deliveries",
    "Webhook deliveries by subscription and result (success: 2xx; failed_4xx, failed_5xx, failed_other: the "
    "receiver's answer; error: no HTTP answer), each troubleshooting record counted once from the exporter's "
    "start on.", "subscription", "result")
DELIVERY_DURATION = F.histogram(
    "jfrog_webhook_delivery_duration_seconds",
    "Time the deliveries counted in jfrog_webhook_deliveries_total took (elapsed_millis).")
LAST_FAILURE = F.gauge("jfrog_webhook_last_failure_timestamp_seconds",
                       "When the subscription's newest failed delivery counted since the exporter started happened.",
                       "subscription")
WATERMARK = F.gauge("jfrog_webhook_deliveries_watermark_timestamp_seconds",
                    "How far the delivery counters have been counted, as a Unix timestamp.")
TRUNCATED = F.counter("jfrog_webhook_truncated_polls",
                      "Runs that left deliveries unread because every query returned count records: the counters "
                      "lag behind and catch up in the following runs.")
SKIPPED = F.counter("jfrog_webhook_records_skipped",
                    "Troubleshooting records not counted (reason: unreadable, without a time or subscription; "
                    "over_limit, once per millisecond holding more than count records: at least one of them; "
                    "unlisted, of subscriptions beyond the listed ones and 1,000 more).", "reason")

SKIP_REASONS = ("unreadable", "over_limit", "unlisted")
#: subscriptions counted beyond those the JPD lists (created since the list was read, or deleted)
UNLISTED_SUBSCRIPTIONS = 1000


class WebhooksSettings(CollectorSettings):
    count: int = Field(1000, ge=1, le=10_000, description="records per troubleshooting query (the ring keeps 10,000)")
    max_pages: int = Field(10, ge=1, le=100, description="troubleshooting queries per run at most")
    # A failing delivery may wait for several timeouts and retries before its record is written.
    settle: Delay = Field(120.0, ge=0, description="how far behind now each query stops, for deliveries in flight")


class WebhooksCollector(Collector[WebhooksSettings]):
    name = "webhooks"
    default_interval = 120.0
    description = "webhook subscriptions and their deliveries (Event service troubleshooting data)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger = Ledger()
        self._known: list[str] = []

    async def collect(self, run: Run) -> None:
        # The list first: its subscriptions get their 0 counters; the deliveries are counted without it too.
        await run.part(SUBSCRIPTIONS, self._subscriptions)
        await run.part(TROUBLESHOOTING, self._deliveries)

    async def _subscriptions(self, part: Part) -> None:
        subscriptions = parse_result(parse_subscriptions, await part.get())
        self._known = [s.key for s in subscriptions]
        subscription_families(subscriptions, part.out)

    async def _deliveries(self, part: Part) -> None:
        now_ms = round(time.time() * 1000)
        ledger = self.ledger
        ledger.know(self._known)  # the last list this JPD answered, if this run's failed
        if ledger.watermark_ms is None:
            start = now_ms - round(self.settings.settle * 1000)
            # One record just before the start: proves the service answers and the credentials may read it,
            # so a first run reports what the next ones will; nothing before the start is counted.
            parse_result(parse_troubleshooting, await part.get(
                params={"start": start - 1, "end": start, "count": 1}, expect="text"))
            ledger.watermark_ms = start
        else:
            try:
                await self._catch_up(part, now_ms)
            except CollectionError as exc:
                if exc.outcome is Outcome.UNSUPPORTED:
                    raise  # no Event service: no counters, not counters stuck at 0
                # What was counted up to the watermark stays true.
                delivery_families(ledger, part.out)
                part.current_on_failure = True
                raise
        delivery_families(ledger, part.out)

    async def _catch_up(self, part: Part, now_ms: int) -> None:
        ledger = self.ledger
        assert ledger.watermark_ms is not None
        end = now_ms - round(self.settings.settle * 1000)
        count = self.settings.count
        for _ in range(self.settings.max_pages):
            start = ledger.watermark_ms
            if end <= start:
                return
            result = await part.get(params={"start": start, "end": end, "count": count}, expect="text")
            page = parse_result(parse_troubleshooting, result)
            ledger.count(page, start, end)
            if len(page.records) + page.unreadable < count:
                ledger.advance(end)
                if ledger.lagging:
                    ledger.lagging = False
                    log.info("webhook deliveries: caught up")
                return
            # A full page may be cut: go on from its newest record (that millisecond is asked for again).
            newest = max((r.at_ms for r in page.records), default=start)
            if newest <= start:
                # How many more share it is unknown: at least one is not counted.
                ledger.skipped["over_limit"] += 1
                log.warning("webhook deliveries: more than %d records at one millisecond (%d); some are not counted",
                            count, start)
                ledger.advance(start + 1)
            else:
                ledger.advance(newest)
        ledger.truncated += 1
        if not ledger.lagging:  # once while it lags, not every run
            ledger.lagging = True
            log.warning("webhook deliveries: %d queries of %d records did not reach the present; the rest is read "
                        "next run (raise count or max_pages, or poll more often)", self.settings.max_pages, count)


def subscription_families(subscriptions: Sequence[Subscription], out: Emitter) -> None:
    out.touch(SUBSCRIPTION_ENABLED)
    enabled = sum(1 for s in subscriptions if s.enabled)
    for s in subscriptions:
        out.gauge(SUBSCRIPTION_ENABLED, s.enabled, subscription=s.key, domain=s.domain,
                  event_types=",".join(s.event_types))
    out.gauge(SUBSCRIPTION_COUNT, enabled, state="enabled")
    out.gauge(SUBSCRIPTION_COUNT, len(subscriptions) - enabled, state="disabled")


def delivery_families(ledger: Ledger, out: Emitter) -> None:
    """What was counted so far, by subscription; how far; what could not be counted."""
    out.touch(DELIVERIES, LAST_FAILURE)
    for subscription, counts in sorted(ledger.counts.items()):
        for result in RESULTS:
            out.counter(DELIVERIES, counts.get(result, 0), subscription=subscription, result=result)
    for subscription, at in sorted(ledger.last_failure.items()):
        out.gauge(LAST_FAILURE, at, subscription=subscription)
    hist = ledger.durations
    out.histogram(DELIVERY_DURATION, hist.buckets, hist.cumulative(), hist.total)
    out.gauge(WATERMARK, None if ledger.watermark_ms is None else ledger.watermark_ms / 1000)
    out.counter(TRUNCATED, ledger.truncated)
    for reason in SKIP_REASONS:
        out.counter(SKIPPED, ledger.skipped[reason], reason=reason)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    key: str
    enabled: bool
    domain: str
    event_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    at_ms: int
    subscription: str
    event_id: str
    #: the receiver's HTTP status; None: no HTTP answer (connection refused, timeout)
    status: int | None
    elapsed_ms: float | None
    retries: int

    @property
    def key(self) -> tuple[object, ...]:
        return (self.at_ms, self.subscription, self.event_id, self.retries, self.status)

    @property
    def result(self) -> str:
        return delivery_result(self.status)


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Delivery]
    #: records without a readable time
    unreadable: int = 0


def delivery_result(status: int | None) -> str:
    if status is None:
        return "error"
    if 200 <= status < 300:
        return "success"
    if 400 <= status < 500:
        return "failed_4xx"
    if 500 <= status < 600:
        return "failed_5xx"
    return "failed_other"


def parse_subscriptions(body: object) -> list[Subscription]:
    """GET /event/api/v1/subscriptions -> key, enabled, domain, event types; handlers are not read."""
    out = []
    for entry in listed(body, "subscriptions", "subscriptions"):
        if not isinstance(entry, dict):
            raise UnexpectedShape("subscriptions", "JSON objects", entry)
        key = scalar_text(entry.get("key"))
        if not key:
            continue
        event_filter = entry.get("event_filter")
        event_filter = event_filter if isinstance(event_filter, dict) else {}
        types = event_filter.get("event_types")
        names = {scalar_text(t) for t in types} if isinstance(types, list) else set()
        event_types = tuple(sorted(n for n in names if n))
        # The documents and the Terraform provider default a subscription to enabled.
        enabled = entry.get("enabled")
        out.append(Subscription(key, enabled is not False and enabled != "false",
                                scalar_text(event_filter.get("domain")), event_types))
    return out


def _objects(text: str) -> Iterable[Any]:
    """The JSON values of a troubleshooting answer: concatenated objects (as documented), one per line, or an
    array of them."""
    decoder = json.JSONDecoder()
    pos, size = 0, len(text)
    while True:
        while pos < size and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= size:
            return
        value, pos = decoder.raw_decode(text, pos)
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_delivery(entry: object) -> Delivery | None:
    """One troubleshooting record; None when it has no time to place it in a window (without a subscription,
    its ``subscription`` is empty: it still marks how far a page reached, and is skipped when counting).

    Only timing, status and identity are read: request URL, headers,
    payload and response body may hold secrets.
    """
    if not isinstance(entry, dict):
        raise UnexpectedShape("troubleshooting records", "JSON objects", entry)
    event = entry.get("event")
    event = event if isinstance(event, dict) else {}
    request = entry.get("request")
    request = request if isinstance(request, dict) else {}
    response = entry.get("response")
    at_ms = _int(entry.get("timestamp"))
    subscription = scalar_text(event.get("subscription_key"))
    if at_ms is None or at_ms < 0:
        return None
    status = _int(response.get("status")) if isinstance(response, dict) else None
    if status is not None and not 100 <= status <= 999:
        status = None
    elapsed = entry.get("elapsed_millis")
    elapsed_ms = float(elapsed) if isinstance(elapsed, int | float) and not isinstance(elapsed, bool) and \
        math.isfinite(elapsed) and elapsed >= 0 else None
    return Delivery(at_ms, subscription, scalar_text(event.get("id")), status, elapsed_ms,
                    _int(request.get("retries_attempted")) or 0)


def parse_troubleshooting(body: object) -> Page:
    """GET /event/api/v1/troubleshooting?start=&end=&count= -> the deliveries it lists.

    The documents show the answer as JSON objects one after the other (not an
    array); an array, or objects one per line, are read too.
    """
    if isinstance(body, str):
        try:
            values = list(_objects(body))
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"troubleshooting: expected JSON records, got malformed JSON ({exc})") from None
    elif isinstance(body, dict) and ("timestamp" in body or "event" in body):
        values = [body]  # one record alone decodes as an object
    else:
        values = listed(body, "troubleshooting", "records", "data")
    records, unreadable = [], 0
    for value in values:
        delivery = parse_delivery(value)
        if delivery is None:
            unreadable += 1
        else:
            records.append(delivery)
    return Page(records, unreadable)


# -- recordings ----------------------------------------------------------------------------------

#: of each answer, what the parsers read: the rest holds receiver URLs, headers, payloads and secrets
_RECORD_FIELDS: dict[str, Any] = {"timestamp": None, "elapsed_millis": None, "request": {"retries_attempted": None},
                                  "response": {"status": None},
                                  "event": {"id": None, "subscription_key": None, "domain": None, "event_type": None}}
_SUBSCRIPTION_FIELDS: dict[str, Any] = {"key": None, "enabled": None,
                                        "event_filter": {"domain": None, "event_types": None}}


def _kept(value: object, fields: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for name, inner in fields.items():
        if name in value:
            out[name] = _kept(value[name], inner) if inner is not None else value[name]
    return out


def for_recording(path: str, raw: bytes) -> bytes | None:
    """An answer of the Event service reduced to what the parsers read, for ``jfrog-exporter record``.

    Its subscriptions and delivery records carry URLs with secrets in their query strings, custom headers,
    payloads and response bodies, which no scrubbing by key names can all find. None: another endpoint, or
    an answer the parsers cannot read either (then it is scrubbed like any other).
    """
    text = raw.decode("utf-8", "replace")
    try:
        if path == TROUBLESHOOTING:
            records = [_kept(r, _RECORD_FIELDS) for r in _objects(text)]
            return "\n\n".join(json.dumps(r) for r in records).encode()
        if path == SUBSCRIPTIONS:
            entries = listed(json.loads(text), "subscriptions", "subscriptions")
            return json.dumps([_kept(e, _SUBSCRIPTION_FIELDS) for e in entries]).encode()
    except (ValueError, RecursionError):
        return None
    return None


# -- counting ------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """Deliveries counted so far, and how far: kept on the collector between runs."""

    watermark_ms: int | None = None
    #: keys of records counted at or after the watermark: the next window starts there
    seen: dict[tuple[object, ...], int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    last_failure: dict[str, float] = field(default_factory=dict)
    durations: Histogram = field(default_factory=lambda: Histogram(DURATION_BUCKETS))
    truncated: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    #: whether the last run left deliveries unread
    lagging: bool = False
    #: subscriptions the JPD listed last
    listed: int = 0

    def know(self, subscriptions: Iterable[str]) -> None:
        """Listed subscriptions show 0 until they deliver, and keep their series once known."""
        keys = list(subscriptions)
        self.listed = len(keys)
        for key in keys:
            self.counts.setdefault(key, {})

    def count(self, page: Page, start_ms: int, end_ms: int) -> int:
        """Count the page's records in [start, end] not counted before; returns how many were new."""
        self.skipped["unreadable"] += page.unreadable
        new = 0
        for record in page.records:
            key = record.key
            if key in self.seen or not start_ms <= record.at_ms <= end_ms:
                continue
            self.seen[key] = record.at_ms
            if not record.subscription:
                self.skipped["unreadable"] += 1  # nothing to count it under
                continue
            counts = self.counts.get(record.subscription)
            if counts is None:
                if len(self.counts) >= self.listed + UNLISTED_SUBSCRIPTIONS:
                    # A JPD naming a new subscription in every record cannot grow the series without bound.
                    self.skipped["unlisted"] += 1
                    continue
                counts = self.counts[record.subscription] = {}
            result = record.result
            counts[result] = counts.get(result, 0) + 1
            if result != "success":
                self.last_failure[record.subscription] = max(self.last_failure.get(record.subscription, 0.0),
                                                             record.at_ms / 1000)
            if record.elapsed_ms is not None:
                self.durations.observe(record.elapsed_ms / 1000)
            new += 1
        return new

    def advance(self, watermark_ms: int) -> None:
        self.watermark_ms = watermark_ms
        # Below the watermark nothing is asked for again: forget those keys.
        self.seen = {k: t for k, t in self.seen.items() if t >= watermark_ms}
