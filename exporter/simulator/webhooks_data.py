"""Webhook subscriptions and their deliveries a simulated JPD serves (``scenario.areas["webhooks"]``).

Every enabled subscription delivers on a fixed period from the scenario's
origin, so the troubleshooting data grows while the simulator runs: the k-th
delivery of a subscription happens at ``origin + offset + k * period`` and
has a stable event id, a deterministic duration and a deterministic result
(every ``fail_every``-th fails with ``fail_status``, or with no HTTP answer
when that is None). A window ``[start, end)`` of epoch milliseconds lists the
deliveries in it, oldest first, at most ``count``.

Subscriptions carry what real ones carry: URLs with secrets in the query
string or the user-info, HMAC secrets, custom headers and payload templates;
delivery records repeat them. An exporter must never expose any of them.

Tests may replace ``WebhooksArea.clock`` to move time forward without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "webhooks"
HOUR = 3600
#: what a secret looks like in the scenarios' data, so tests can look for any of them in the exporter's output
SECRET_MARK = "s3cret"
SOURCE = "jfrog/jfrt@01h9mspg5atsp402qqxm071zjv"


@dataclass
class SubscriptionSpec:
    key: str
    domain: str = "artifact"
    event_types: tuple[str, ...] = ("deployed",)
    enabled: bool = True
    description: str = ""
    #: "webhook" (predefined) or "custom-webhook"
    handler_type: str = "webhook"
    url: str = f"https://hooks.example.test/jfrog?token=url-{SECRET_MARK}-0"
    secret: str = f"hmac-{SECRET_MARK}-0"
    headers: dict[str, str] = field(default_factory=lambda: {"X-Team-Token": f"hdr-{SECRET_MARK}-0"})
    #: seconds between deliveries
    period: float = 60.0
    offset: float = 0.0
    #: every n-th delivery fails (0: never)
    fail_every: int = 0
    #: the receiver's answer to a failing delivery; None: no HTTP answer at all
    fail_status: int | None = 503
    elapsed_ms: int = 120


#: a delivery due: (time in ms, subscription key, its k, the subscription); ordered by time, then key
Due = tuple[int, str, int, SubscriptionSpec]


@dataclass
class WebhooksArea:
    subscriptions: list[SubscriptionSpec]
    #: deliveries start here (epoch seconds)
    origin: float
    clock: Callable[[], float] = time.time

    def deliveries(self, start_ms: int, end_ms: int, count: int | None) -> list[dict[str, Any]]:
        """Records of deliveries at ``start <= t < end`` that happened by now, oldest first, at most ``count``."""
        end_ms = min(end_ms, math.floor(self.clock() * 1000) + 1)
        streams = [self._times(spec, start_ms, end_ms) for spec in self.subscriptions if spec.enabled]
        out: list[dict[str, Any]] = []
        for at_ms, _, k, spec in heapq.merge(*streams):
            if count is not None and len(out) >= count:
                break
            out.append(record(spec, k, at_ms))
        return out

    def _times(self, spec: SubscriptionSpec, start_ms: int, end_ms: int) -> Iterator[Due]:
        base = round((self.origin + spec.offset) * 1000)
        period = max(1, round(spec.period * 1000))
        k = max(0, -(-(start_ms - base) // period))
        while (at := base + k * period) < end_ms:
            yield at, spec.key, k, spec
            k += 1


def area(scenario: Scenario) -> WebhooksArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, WebhooksArea) else None


def event_id(key: str, k: int) -> str:
    """A stable id shaped like the Event service's (26 characters of Crockford base32, as a ULID)."""
    digest = hashlib.sha256(f"{key}/{k}".encode()).digest()
    return base64.b32encode(digest).decode()[:26].translate(str.maketrans("ILOU", "JKMV"))


def outcome(spec: SubscriptionSpec, k: int) -> int | None:
    """The receiver's status for the k-th delivery; None: no HTTP answer."""
    if spec.fail_every and k % spec.fail_every == spec.fail_every - 1:
        return spec.fail_status
    return 200


def elapsed(spec: SubscriptionSpec, k: int) -> int:
    # Deterministic spread around the subscription's typical time; every 17th is slow.
    base = spec.elapsed_ms + (k * 37) % max(1, spec.elapsed_ms)
    return base * 8 if k % 17 == 16 else base


def record(spec: SubscriptionSpec, k: int, at_ms: int) -> dict[str, Any]:
    """One troubleshooting record, shaped like the documented sample (secrets included, as the real one)."""
    status = outcome(spec, k)
    data = {"repo_key": "libs-release-local", "path": f"org/acme/app/{k}/app-{k}.jar", "name": f"app-{k}.jar",
            "sha256": hashlib.sha256(f"{spec.key}{k}".encode()).hexdigest(), "size": 1000 + k}
    event_type = spec.event_types[k % len(spec.event_types)]
    payload = {"domain": spec.domain, "event_type": event_type, "data": data, "subscription_key": spec.key,
               "source": SOURCE, "jpd_origin": f"https://ci-user:pw-{SECRET_MARK}@acme.jfrog.test"}
    headers = {"Content-Type": "application/json", **spec.headers}
    if spec.handler_type == "webhook" and spec.secret:
        headers["X-JFrog-Event-Auth"] = spec.secret
    entry: dict[str, Any] = {
        "timestamp": at_ms,
        "elapsed_millis": elapsed(spec, k),
        "errors": [],
        "request": {"method": "POST", "url": spec.url, "headers": headers, "payload": json.dumps(payload),
                    "retries_attempted": 0},
    }
    if status is None:
        entry["errors"] = [f"error executing webhook: Post \"{spec.url}\": dial tcp 10.9.8.7:443: connect: "
                           "connection refused"]
        entry["elapsed_millis"] = 3000 + k % 100
    else:
        if not 200 <= status < 300:
            entry["errors"] = ["error executing webhook: unexpected HTTP response status"]
        entry["response"] = {
            "status": status,
            "headers": {"Content-Type": "application/json", "Server": "nginx"},
            "body": json.dumps({"success": 200 <= status < 300, "echo": spec.secret}),
        }
    entry["event"] = {"id": event_id(spec.key, k), "subscription_key": spec.key, "domain": spec.domain,
                      "event_type": event_type, "data": json.dumps(data), "source": SOURCE}
    return entry


def subscription_body(spec: SubscriptionSpec) -> dict[str, Any]:
    """As GET /event/api/v1/subscriptions lists it (seeds/jfrog-rest-apis.txt 4.11.2)."""
    handler: dict[str, Any]
    if spec.handler_type == "custom-webhook":
        # Secrets are listed by name only (the documented response of a custom webhook).
        handler = {"handler_type": "custom-webhook", "url": spec.url, "method": "POST",
                   "payload": '{"ref": "main", "inputs": {"path": "{{.data.path}}"}}',
                   "secrets": [{"name": "token"}],
                   "http_headers": [{"name": "Authorization", "value": "Bearer {{.secrets.token}}"},
                                    *({"name": k, "value": v} for k, v in spec.headers.items())]}
    else:
        handler = {"handler_type": "webhook", "url": spec.url, "secret": spec.secret, "proxy": "mainProxy",
                   "custom_http_headers": [{"name": k, "value": v} for k, v in spec.headers.items()]}
    return {
        "key": spec.key,
        "description": spec.description,
        "enabled": spec.enabled,
        "event_filter": {"domain": spec.domain, "event_types": list(spec.event_types),
                         "criteria": {"anyLocal": True, "anyRemote": False, "includePatterns": [],
                                      "excludePatterns": [], "repoKeys": []}},
        "handlers": [handler],
    }


def _spec(key: str, n: int, **kwargs: Any) -> SubscriptionSpec:
    """A subscription whose secrets are all distinct and marked."""
    return SubscriptionSpec(key, url=f"https://hooks.example.test/{key}?token=url-{SECRET_MARK}-{n}",
                            secret=f"hmac-{SECRET_MARK}-{n}", headers={"X-Team-Token": f"hdr-{SECRET_MARK}-{n}"},
                            **kwargs)


def healthy_area(now: float | None = None) -> WebhooksArea:
    """Three subscriptions that deliver successfully, and one disabled."""
    t = float(int(time.time() if now is None else now))
    return WebhooksArea(
        origin=t - 6 * HOUR,
        subscriptions=[
            _spec("qa-audit", 1, description="Triggers QA audit when a new artifact is created", period=30.0),
            _spec("security-audit", 2, event_types=("deployed", "deleted"), period=45.0, offset=7.0,
                  elapsed_ms=240),
            SubscriptionSpec("release-dispatch", domain="release_bundle_v2",
                             event_types=("release_bundle_v2_completed",), handler_type="custom-webhook",
                             url=f"https://bot:pw-{SECRET_MARK}-3@ci.example.test/dispatch", secret="",
                             headers={"X-Api-Key": f"hdr-{SECRET_MARK}-3"}, period=120.0, offset=11.0),
            _spec("legacy-notify", 4, domain="build", event_types=("uploaded",), enabled=False),
        ],
    )


def degrade(scenario: Scenario) -> None:
    """Receivers in trouble: one answers 503 to every other delivery, one cannot be reached every third,
    one refuses every fourth with 401 (an expired token in its headers)."""
    found = area(scenario)
    if found is None:
        return
    # Busy receivers (every few seconds), so a failure ratio shows within the demo's first minute.
    found.subscriptions += [
        _spec("ci-trigger", 5, event_types=("deployed",), period=5.0, offset=3.0, fail_every=2, fail_status=503),
        _spec("chat-notify", 6, domain="docker", event_types=("pushed",), period=7.0, offset=5.0, fail_every=3,
              fail_status=None),
        _spec("ticket-sync", 7, domain="build", event_types=("uploaded", "promoted"), period=11.0, offset=13.0,
              fail_every=4, fail_status=401),
    ]


def populate_large(scenario: Scenario, now: float | None = None, count: int = 1000) -> None:
    """Subscriptions up to ``count`` in all, each delivering every 10 to 15 minutes; every 50th fails often."""
    found = area(scenario)
    if found is None:
        t = float(int(time.time() if now is None else now))
        found = WebhooksArea(origin=t - 6 * HOUR, subscriptions=[])
        scenario.areas[AREA] = found
    domains = (("artifact", ("deployed", "deleted")), ("docker", ("pushed",)), ("build", ("uploaded",)),
               ("artifact_property", ("added", "deleted")), ("release_bundle_v2", ("release_bundle_v2_completed",)))
    for i in range(max(0, count - len(found.subscriptions))):
        domain, types = domains[i % len(domains)]
        found.subscriptions.append(_spec(
            f"hook-{i:04d}", 100 + i, domain=domain, event_types=types, enabled=i % 20 != 19,
            period=600.0 + (i % 300), offset=float(i % 600), fail_every=3 if i % 50 == 0 else 0,
        ))
