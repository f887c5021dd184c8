"""The landing page: one card per JPD that says what is wrong with it, from the store's published records."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path

from prometheus_client.core import Metric

from exporter.collectors.health import LICENSE_EXPIRY, READY, ROUTER_SERVICE, SERVICE_READY, SERVICE_UP, UP
from exporter.collectors.storage import FILESTORE_SIZE, FILESTORE_USED
from exporter.config import AuthConfig, TargetConfig
from exporter.families import Emitter
from exporter.landing import CONTENT_SECURITY_POLICY, SCRIPT, STYLE, landing_page
from exporter.outcomes import Outcome, PartResult
from exporter.selfmetrics import CREDENTIALS_ACCEPTED, MISCONFIGURED, TARGET_INFO
from exporter.snapshot import RECENT_RUNS, SnapshotStore
from exporter.status import State, judge_all

NOW = 1_800_000_000.0
DAY = 86400.0
PING = "/artifactory/api/system/ping"
READINESS = "/artifactory/api/v1/system/readiness"
ROUTER = "/router/api/v1/system/health"
LICENSES = "/artifactory/api/system/licenses"
STORAGEINFO = "/artifactory/api/storageinfo"


def ok(endpoint: str, out: Emitter) -> PartResult:
    return PartResult(endpoint, Outcome.SUCCESS, "", out.families())


def health(target: str, *, up: bool = True, ready: bool = True, unhealthy: Iterable[str] = (),
           license_days: float = 300) -> dict[str, PartResult]:
    """The health collector's parts as a JPD in the given state answers them."""
    ping, readiness, router, licenses = (Emitter(target) for _ in range(4))
    ping.gauge(UP, up)
    readiness.gauge(READY, ready and up)
    for service in ("jfrt", "jfac", "jffe"):
        router.gauge(ROUTER_SERVICE, service not in unhealthy, node_id="art1", service_id=service)
    licenses.gauge(LICENSE_EXPIRY, NOW + license_days * DAY, license_type="Enterprise", licensed_to="Acme",
                   node_id="art1")
    if not up:  # the JPD does not answer: its ping part fails, its samples are current nonetheless
        return {PING: PartResult(PING, Outcome.UNREACHABLE, "cannot reach the JPD: connection refused",
                                 ping.families()),
                READINESS: PartResult(READINESS, Outcome.UNREACHABLE, "cannot reach the JPD: connection refused",
                                      readiness.families()),
                ROUTER: PartResult(ROUTER, Outcome.UNREACHABLE, "cannot reach the JPD: connection refused", None)}
    return {PING: ok(PING, ping), READINESS: ok(READINESS, readiness), ROUTER: ok(ROUTER, router),
            LICENSES: ok(LICENSES, licenses)}


def storage(target: str, used: float) -> dict[str, PartResult]:
    out = Emitter(target)
    labels = {"storage_type": "file-system", "storage_dir": "/var/opt/jfrog/artifactory/data/filestore"}
    out.gauge(FILESTORE_SIZE, 200e9, **labels)
    out.gauge(FILESTORE_USED, 200e9 * used, **labels)
    return {STORAGEINFO: ok(STORAGEINFO, out)}


class Exporter:
    """What the engine adds at render time: the target's URL and auth, credentials accepted, misconfigured."""

    def __init__(self) -> None:
        self.targets: dict[str, tuple[str, bool, bool]] = {}

    def families(self) -> list[Metric]:
        out = Emitter(None)
        for name, (url, accepted, misconfigured) in self.targets.items():
            out.info(TARGET_INFO, target=name, url=url, auth="token")
            out.gauge(CREDENTIALS_ACCEPTED, accepted, target=name)
            out.gauge(MISCONFIGURED, misconfigured, target=name)
        return out.families()


def store_with(*targets: tuple[str, dict[str, PartResult], dict[str, PartResult], bool, bool]) -> SnapshotStore:
    """A store that recorded one run of health and storage per target: (name, health, storage, accepted,
    misconfigured)."""
    store = SnapshotStore()
    source = Exporter()
    store.add_source(source.families)
    for name, health_parts, storage_parts, accepted, misconfigured in targets:
        source.targets[name] = (f"https://{name}.example", accepted, misconfigured)
        store.register(name, "health", 30)
        store.register(name, "storage", 300)
        store.record(name, "health", health_parts, 0.2, now=NOW - 5)
        store.record(name, "storage", storage_parts, 0.4, now=NOW - 40)
    store.render()
    return store


def cards_of(page: str) -> dict[str, str]:
    """Each card's state, by target, as the page marks it."""
    return dict(re.findall(r"<section class='card s-\w+' id='target-[^']*' data-target='([^']*)' "
                           r"data-state='(\w+)'>", page))


def card_html(page: str, target: str) -> str:
    start = page.index(f"data-target='{target}'")
    return page[start:page.index("</section>", start)]


def failures_of(card: str) -> list[str]:
    """The card's failure lines (the runs below them repeat reasons, folded away)."""
    found = re.search(r"<ul class='failures'>(.*?)</ul>", card)
    return re.findall(r"<li .*?</li>", found.group(1)) if found else []


def summary_of(page: str) -> str:
    found = re.search(r"<p id='summary'[^>]*>(.*?)</p>", page)
    assert found is not None
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_a_degraded_jpd_is_degraded_though_every_collector_succeeded() -> None:
    # The demo's degraded JPD: collection works, the JPD does not.
    store = store_with(
        ("healthy", health("healthy"), storage("healthy", 0.16), True, False),
        ("degraded", health("degraded", ready=False, unhealthy=("jffe",), license_days=5),
         storage("degraded", 0.96), True, False),
    )
    page = landing_page(store, now=NOW)
    assert cards_of(page) == {"degraded": "degraded", "healthy": "healthy"}
    assert list(cards_of(page)) == ["degraded", "healthy"], "failing first"
    degraded = card_html(page, "degraded")
    assert "<li class='bad'>not ready</li>" in degraded
    assert "1 of 3 services unhealthy: art1/jffe" in degraded
    assert "<li class='warn'>license expires in 5 days (art1)</li>" in degraded
    assert "filestore 96% of 186.3 GiB" in degraded
    assert "https://degraded.example" in degraded
    healthy = card_html(page, "healthy")
    assert "<li class='ok'>up</li>" in healthy and "3 services healthy" in healthy
    assert "license: 300 days left" in healthy and "class='warn'" not in healthy
    assert "credentials accepted" in healthy
    assert "data 5s–40s old" in healthy
    assert summary_of(page) == "2 targets: 1 healthy, 1 degraded, 0 down, 0 with exporter-side problems"
    assert "<title>JFrog Exporter: 1 degraded</title>" in page


def test_a_platform_service_down_or_not_ready_degrades_the_jpd() -> None:
    parts = health("prod")
    access, jfconnect = Emitter("prod"), Emitter("prod")
    access.gauge(SERVICE_UP, False, service="access")
    jfconnect.gauge(SERVICE_READY, False, service="jfconnect")
    parts["/access/api/v1/system/ping"] = ok("/access/api/v1/system/ping", access)
    parts["/jfconnect/api/v1/system/readiness"] = ok("/jfconnect/api/v1/system/readiness", jfconnect)
    page = landing_page(store_with(("prod", parts, storage("prod", 0.16), True, False)), now=NOW)
    assert cards_of(page) == {"prod": "degraded"}
    card = card_html(page, "prod")
    assert "<li class='bad'>Access down</li>" in card and "<li class='bad'>JFConnect not ready</li>" in card


def test_a_jpd_that_does_not_answer_is_down_with_its_reason_once() -> None:
    store = store_with(("prod", health("prod", up=False), storage("prod", 0.5), True, False))
    page = landing_page(store, now=NOW)
    assert cards_of(page) == {"prod": "down"}
    prod = card_html(page, "prod")
    assert "<li class='bad'>DOWN</li>" in prod
    # Three parts failed for the same reason: one line names them all.
    [line] = failures_of(prod)
    assert "unreachable</span>: cannot reach the JPD: connection refused" in line
    assert "health /artifactory/api/system/ping, health /artifactory/api/v1/system/readiness, health " \
        "/router/api/v1/system/health" in line
    assert "(never collected)" in line
    assert summary_of(page) == "1 target: 0 healthy, 0 degraded, 1 down, 0 with exporter-side problems"


def test_a_url_that_leads_elsewhere_is_the_exporter_side() -> None:
    parts = {PING: PartResult(PING, Outcome.MISCONFIGURED, "the URL answers with a web page, not a JFrog Platform",
                              None)}
    store = store_with(("wrong", parts, {}, True, True))
    page = landing_page(store, now=NOW)
    assert cards_of(page) == {"wrong": "exporter"}
    card = card_html(page, "wrong")
    assert "URL is not a JFrog Platform" in card and "up: unknown" in card
    assert "misconfigured</span>: the URL answers with a web page" in card
    assert "1 with exporter-side problems" in summary_of(page)


def test_rejected_credentials_on_a_healthy_jpd_are_the_exporter_side() -> None:
    parts = health("prod")
    reason = "HTTP 401: Bad credentials"
    parts[LICENSES] = PartResult(LICENSES, Outcome.UNAUTHORIZED, reason, None)
    refused = {STORAGEINFO: PartResult(STORAGEINFO, Outcome.UNAUTHORIZED, f"{STORAGEINFO}: {reason}", None)}
    store = store_with(("prod", parts, refused, False, False))
    page = landing_page(store, now=NOW)
    assert cards_of(page) == {"prod": "exporter"}
    card = card_html(page, "prod")
    assert "<li class='ok'>up</li>" in card, "the JPD itself is up: ping needs no credentials"
    assert "<li class='bad'>credentials rejected</li>" in card
    # Two parts, one reason (the endpoint prefix of a reason does not make it another): one line.
    [line] = failures_of(card)
    assert "health /artifactory/api/system/licenses, storage /artifactory/api/storageinfo" in line
    assert "the JPD rejects the exporter&#x27;s credentials" in card  # the badge's tooltip


def test_a_degraded_jpd_outranks_rejected_credentials_and_a_down_one_everything() -> None:
    store = store_with(
        ("a", health("a", ready=False), storage("a", 0.1), False, False),
        ("b", health("b", up=False), storage("b", 0.1), False, False),
        ("c", health("c"), storage("c", 0.1), True, False),
    )
    cards = judge_all(store.readings(), store.view(), NOW)
    assert [(c.name, c.state) for c in cards] == [("b", State.DOWN), ("a", State.DEGRADED), ("c", State.HEALTHY)]


def test_hostile_text_from_a_jpd_is_escaped_everywhere() -> None:
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)>\"'"
    parts = health("prod")
    parts[LICENSES] = PartResult(LICENSES, Outcome.BAD_RESPONSE, hostile + "\nsecond line", None)
    router = Emitter("prod")
    router.gauge(ROUTER_SERVICE, False, node_id="<b>node</b>", service_id=hostile)
    parts[ROUTER] = ok(ROUTER, router)
    store = store_with(("prod", parts, storage("prod", 0.1), True, False))
    page = landing_page(store, now=NOW)
    body = page[page.index("<body>"):page.rindex("<script>")]
    assert "<script" not in body and "<img" not in body and "<b>" not in body
    assert html.escape(hostile) in body
    assert "onerror=alert(1)&gt;&quot;&#x27; second line" in body, "a reason is one line"


def test_the_configuration_names_each_secret_source_but_never_a_secret(tmp_path: Path, monkeypatch) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-s3cr3t-value\n")
    monkeypatch.setenv("DR_PASSWORD", "env-password-s3cr3t")
    by_file = TargetConfig.model_validate({"name": "prod", "url": "https://prod.example/artifactory",
                                           "auth": {"token_file": str(token_file)}, "timeout": "5s",
                                           "repos": {"exclude": ["-tmp$"]}})
    by_env = TargetConfig.model_validate({"name": "dr", "url": "https://dr.example",
                                          "auth": {"username": "monitor", "password_env": "DR_PASSWORD"},
                                          "tls": {"insecure_skip_verify": True}})
    inline = TargetConfig.model_validate({"name": "qa", "url": "https://qa.example"})
    inline.auth = AuthConfig.from_values(token="inline-token-s3cr3t-value")
    store = SnapshotStore()
    for target in (by_file, by_env, inline):
        store.register(target.name, "health", 30)
    store.register("prod", "storage", 600)
    page = landing_page(store, [by_file, by_env, inline], now=NOW)
    config = page[page.index("<details id='config'>"):]
    for secret in ("file-token-s3cr3t-value", "env-password-s3cr3t", "inline-token-s3cr3t-value", "s3cr3t"):
        assert secret not in page
    assert f"token from file {token_file}" in config
    assert "basic: user monitor, password from environment variable DR_PASSWORD" in config
    assert "<td>token</td>" in config
    assert "<td>https://prod.example</td>" in config and "<td>5s</td>" in config
    assert "exclude -tmp$" in config and "verification off" in config
    assert "health every 30s, storage every 10m" in config


def test_the_page_is_allowed_by_its_policy_and_loads_nothing() -> None:
    page = landing_page(SnapshotStore(), now=NOW)
    assert f"<style>{STYLE}</style>" in page and f"<script>{SCRIPT}</script>" in page  # the hashed texts, verbatim
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert " style=" not in page, "a style attribute would need 'unsafe-inline'"
    assert not re.search(r"(src|href)=['\"](https?:)?//", page), "no external asset"
    assert '<noscript><meta http-equiv="refresh" content="15"></noscript>' in page
    assert summary_of(page) == "0 targets: 0 healthy, 0 degraded, 0 down, 0 with exporter-side problems"


def test_each_collector_lists_its_last_runs_newest_first_and_bounded() -> None:
    store = SnapshotStore()
    store.register("prod", "health", 30)
    for i in range(RECENT_RUNS + 3):
        outcome = Outcome.TIMEOUT if i % 2 else Outcome.SUCCESS
        ping = Emitter("prod")
        ping.gauge(UP, True)
        part = PartResult(PING, outcome, f"run {i} timed out" if i % 2 else "",
                          None if i % 2 else ping.families())
        store.record("prod", "health", {PING: part}, 0.25, now=NOW - 100 + i)
    run = store.run("prod", "health")
    assert len(run.recent) == RECENT_RUNS
    assert [r.at for r in run.recent] == [NOW - 100 + i for i in range(RECENT_RUNS + 2, 2, -1)]
    page = landing_page(store, now=NOW)
    rows = re.findall(r"<tr data-collector='health'>.*?</tr>", page)
    assert len(rows) == RECENT_RUNS
    assert "run 11 timed out" in rows[1] and "o-fail" in rows[1] and "0.25s" in rows[1]


def test_a_failed_part_keeps_its_readings_and_a_dropped_part_loses_them() -> None:
    store = SnapshotStore()
    store.register("prod", "health", 30)
    parts = health("prod", ready=False)
    store.record("prod", "health", parts, 0.1, now=NOW - 60)
    failed = {**parts, READINESS: PartResult(READINESS, Outcome.FORBIDDEN, "HTTP 403", None)}
    store.record("prod", "health", failed, 0.1, now=NOW - 30)
    assert any(r.name == READY.name for r in store.readings()["prod"]), "kept with its part's data"
    del failed[READINESS]
    store.record("prod", "health", failed, 0.1, now=NOW)
    assert not any(r.name == READY.name for r in store.readings()["prod"])
    held = store.readings()
    store.record("prod", "health", health("prod"), 0.1, now=NOW)
    assert not any(r.name == READY.name for r in held["prod"]), "a published mapping never changes"
