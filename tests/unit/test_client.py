"""Every outcome the client can classify, one answer at a time, through httpx's MockTransport."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from exporter import client as client_module
from exporter.budget import Reason
from exporter.client import JfrogClient
from exporter.outcomes import Outcome
from tests.conftest import make_target
from tests.support import jfrog_platform

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"

Handler = Callable[[httpx.Request], httpx.Response]


def jfrog_error(status: int) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"status": status, "message": f"message {status}"}]})


def client_for(handler: Handler, **settings: object) -> JfrogClient:
    target = make_target("http://jpd.example", **{"timeout": "0.5s", "max_response_bytes": 1024 * 1024,
                                                   "retries": 2, **settings})
    return JfrogClient(target, transport=jfrog_platform(handler))


async def get_once(response: httpx.Response, **kwargs: object) -> tuple[Outcome, str, object]:
    client = client_for(lambda request: response, retries=0)
    try:
        result = await client.get("/api/thing", **kwargs)  # type: ignore[arg-type]
    finally:
        await client.aclose()
    return result.outcome, result.reason, result.body


@pytest.mark.parametrize(("response", "outcome", "reason"), [
    (httpx.Response(200, json={"fine": True}), Outcome.SUCCESS, ""),
    (httpx.Response(502, text=HTML_PAGE, headers={"Content-Type": "text/html"}), Outcome.ERROR,
     "HTTP 502: HTML page (502 Bad Gateway)"),
    (httpx.Response(200, text=HTML_PAGE, headers={"Content-Type": "text/html"}), Outcome.BAD_RESPONSE,
     "expected JSON, got an HTML page"),
    (httpx.Response(200, text="RTFS is enabled therefore get unavailable mirrors is not allowed"),
     Outcome.BAD_RESPONSE, "expected JSON, got text: 'RTFS is enabled"),
    (httpx.Response(200, text='{"status": "ok", "lastCom'), Outcome.BAD_RESPONSE, "expected JSON, got malformed JSON"),
    (httpx.Response(200, text=""), Outcome.BAD_RESPONSE, "expected JSON, got an empty body"),
    (jfrog_error(401), Outcome.UNAUTHORIZED, "HTTP 401: message 401 (check the configured credentials)"),
    (jfrog_error(403), Outcome.FORBIDDEN, "HTTP 403: message 403 (the credentials lack the permission"),
    (jfrog_error(404), Outcome.UNSUPPORTED, "HTTP 404: message 404"),
    (jfrog_error(405), Outcome.UNSUPPORTED, "HTTP 405: message 405"),
    (jfrog_error(501), Outcome.UNSUPPORTED, "HTTP 501: message 501"),
    (jfrog_error(412), Outcome.ERROR, "HTTP 412: message 412"),
], ids=["json", "html-502", "html-200", "plain-text", "truncated", "empty", "401", "403", "404", "405", "501",
        "412"])
async def test_each_answer_has_one_outcome_and_a_one_line_reason(response: httpx.Response, outcome: Outcome,
                                                                  reason: str) -> None:
    got, why, body = await get_once(response)
    assert got is outcome
    assert why.startswith(reason) if reason else why == ""
    assert "\n" not in why
    if outcome is Outcome.SUCCESS:
        assert body == {"fine": True}


async def test_retry_after_is_honoured_then_the_answer_used() -> None:
    calls: list[float] = []

    def busy_then_ok(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(503, text="busy", headers={"Retry-After": "0.2"})
        return httpx.Response(200, json={"after": "retry"})

    client = client_for(busy_then_ok)
    result = await client.get("/api/busy")
    await client.aclose()
    assert result.outcome is Outcome.SUCCESS and result.body == {"after": "retry"}
    assert calls[1] - calls[0] >= 0.2
    assert client.stats.counts == {("/api/busy", "503"): 1, ("/api/busy", "200"): 1}


async def test_throttling_is_retried_up_to_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def always_429(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, text="slow down", headers={"Retry-After": "0"})

    client = client_for(always_429, max_requests_per_second=50)
    slots: list[float] = []
    reserve = client.budget.reserve
    monkeypatch.setattr(client.budget, "reserve", lambda: (slots.append(1), reserve())[1])
    result = await client.get("/api/limited")
    await client.aclose()
    assert result.outcome is Outcome.ERROR and len(calls) == 3  # 1 + 2 retries
    assert len(slots) == 3  # each retry spends the request budget too


async def test_only_a_refusing_503_or_429_slows_the_target_down() -> None:
    # The router answers its health with 503 when a service is down: that is data, not a JPD shedding load.
    client = client_for(lambda request: httpx.Response(503, json={"router": {"state": "UNHEALTHY"}}), retries=0,
                        max_requests_per_second=10)
    health = await client.get("/router/api/v1/system/health", accept=frozenset({200, 503}))
    assert health.ok and client.budget.rate() == 10 and sum(client.budget.slowdowns.values()) == 0
    refused = await client.get("/api/thing")
    await client.aclose()
    assert refused.outcome is Outcome.ERROR and refused.status == 503
    assert client.budget.rate() == 5 and client.budget.slowdowns[Reason.UNAVAILABLE] == 1


async def test_closing_ends_the_calls_waiting_for_the_budget_without_sending_them() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(200, json={})

    client = client_for(answer, retries=0, max_requests_per_second=0.2)  # one call, then one per 5 s
    assert (await client.get("/api/first")).ok
    waiting = asyncio.create_task(client.get("/api/second"))
    await asyncio.sleep(0.05)
    await client.aclose()  # a shutdown or a reload: the wait ends, nothing is cancelled
    result = await asyncio.wait_for(waiting, 1)
    assert result.outcome is Outcome.ERROR and result.reason == "not sent: the exporter is stopping"
    assert sent == ["/api/first"]


async def test_a_timeout_names_the_configured_limit() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = client_for(slow)
    result = await client.get("/api/slow")
    await client.aclose()
    assert result.outcome is Outcome.TIMEOUT and "no answer within 0.5s (ReadTimeout)" in result.reason
    assert client.stats.counts[("/api/slow", "timeout")] == 1  # timeouts are not retried


async def test_a_body_over_the_cap_is_refused_without_reading_it_all() -> None:
    sent: list[int] = []

    async def ten_megabytes() -> AsyncIterator[bytes]:
        chunk = b"[" + b"1," * 50_000
        for _ in range(100):
            sent.append(len(chunk))
            yield chunk

    client = client_for(lambda request: httpx.Response(200, content=ten_megabytes()))
    result = await client.get("/api/huge")
    await client.aclose()
    assert result.outcome is Outcome.BAD_RESPONSE and "larger than 1048576 bytes" in result.reason
    assert sum(sent) < 2 * 1024 * 1024


async def test_route_templates_label_the_self_metrics_never_the_path() -> None:
    client = client_for(lambda request: jfrog_error(404))
    result = await client.get("/api/replication/{repo}", path={"repo": "libs/release"})
    await client.aclose()
    # Ping proved the URL leads to a JFrog Platform, so the 404 means the edition lacks the endpoint.
    assert result.outcome is Outcome.UNSUPPORTED
    assert client.stats.counts == {("/api/replication/{repo}", "404"): 1, ("/artifactory/api/system/ping", "200"): 1}


async def test_credentials_are_sent_except_for_anonymous_calls() -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return jfrog_error(401) if request.headers.get("Authorization") else httpx.Response(200, text="OK")

    client = client_for(record)
    anonymous = await client.get("/api/ping", expect="text", anonymous=True)
    assert anonymous.outcome is Outcome.SUCCESS and client.credentials_accepted
    refused = await client.get("/api/version")
    await client.aclose()
    assert refused.outcome is Outcome.UNAUTHORIZED and not client.credentials_accepted
    assert seen[0] is None and seen[1] is not None and seen[1].startswith("Bearer ")


async def test_a_probe_that_wants_credentials_is_asked_with_them_first_until_they_are_refused() -> None:
    seen: list[str | None] = []
    token = {"accepted": True}

    def jfconnect(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("Authorization")
        seen.append(auth)
        return httpx.Response(200, text="Ok") if auth and token["accepted"] else jfrog_error(401)

    client = client_for(jfconnect)
    try:
        outcomes = [(await client.probe("/jfconnect/api/v1/system/ping", expect="text")).outcome for _ in range(2)]
        assert outcomes == [Outcome.SUCCESS, Outcome.SUCCESS]
        assert [a is not None for a in seen] == [False, True, True], "the second probe goes straight to credentials"
        token["accepted"] = False
        assert (await client.probe("/jfconnect/api/v1/system/ping", expect="text")).outcome is Outcome.UNAUTHORIZED
        await client.probe("/jfconnect/api/v1/system/ping", expect="text")
        assert [a is not None for a in seen[3:]] == [True, False, True], "refused: anonymously first again"
    finally:
        await client.aclose()


async def test_unreachable_is_retried_then_classified() -> None:
    client = JfrogClient(make_target("http://127.0.0.1:9", retries=1))
    try:
        result = await client.get("/artifactory/api/system/ping", expect="text")
        assert result.outcome is Outcome.UNREACHABLE
        assert result.reason.startswith("cannot reach the JPD")
        assert client.stats.counts[("/artifactory/api/system/ping", "unreachable")] == 2
    finally:
        await client.aclose()


@pytest.mark.parametrize(("ping", "answered"), [
    (httpx.Response(404, text="Not Found"), "HTTP 404: Not Found"),
    (httpx.Response(200, text=HTML_PAGE, headers={"Content-Type": "text/html"}), "an HTML page"),
    (httpx.Response(200, text="pong"), "'pong' instead of OK"),
], ids=["404", "html", "text"])
async def test_a_url_that_leads_elsewhere_is_misconfigured(ping: httpx.Response, answered: str) -> None:
    def web_server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/artifactory/api/system/ping"):
            return httpx.Response(ping.status_code, content=ping.content, headers=ping.headers)
        return httpx.Response(404, text="<html><title>404 Not Found</title></html>",
                              headers={"Content-Type": "text/html"})

    target = make_target("http://www.example/app", retries=0)
    client = JfrogClient(target, transport=httpx.MockTransport(web_server))
    storage = await client.get("/artifactory/api/storageinfo")
    pinged = await client.ping()
    await client.aclose()
    assert storage.outcome is pinged.outcome is Outcome.MISCONFIGURED
    assert client.platform is False
    assert pinged.reason.startswith(f"http://www.example/app/artifactory/api/system/ping answered {answered}: "
                                    "this URL does not lead to a JFrog Platform")
    assert storage.reason.startswith("HTTP 404: HTML page (404 Not Found); http://www.example/app/artifactory/")


async def test_once_proven_a_platform_stays_one_and_a_proxy_page_is_a_bad_response() -> None:
    client = client_for(lambda request: httpx.Response(200, text=HTML_PAGE, headers={"Content-Type": "text/html"}))
    assert (await client.ping()).outcome is Outcome.SUCCESS
    page = await client.get("/api/thing")
    await client.aclose()
    assert client.platform is True
    assert page.outcome is Outcome.BAD_RESPONSE


async def test_a_proven_platform_whose_ping_goes_wrong_is_not_misconfigured() -> None:
    answers = iter([httpx.Response(200, text="OK"), httpx.Response(200, text="O")])
    client = JfrogClient(make_target("http://jpd.example", retries=0),
                         transport=httpx.MockTransport(lambda request: next(answers)))
    first, second = await client.ping(), await client.ping()
    await client.aclose()
    assert first.outcome is second.outcome is Outcome.SUCCESS
    assert client.platform is True


class _SlowBody(httpx.AsyncByteStream):
    """A valid JSON body of ``chunks`` × 256 KiB, one chunk per ``pause``; counts how many such bodies are read
    past their first MiB at once."""

    reading: set[int] = set()
    most = 0

    def __init__(self, chunks: int, pause: float) -> None:
        self.chunks, self.pause = chunks, pause

    async def __aiter__(self) -> AsyncIterator[bytes]:
        piece = b" " * (256 * 1024)
        yield b"["
        for i in range(self.chunks):
            if i > 4:  # past 1 MiB and one chunk more: only the body holding the turn is read this far
                _SlowBody.reading.add(id(self))
                _SlowBody.most = max(_SlowBody.most, len(_SlowBody.reading))
            await asyncio.sleep(self.pause)
            yield piece
        _SlowBody.reading.discard(id(self))
        yield b"1]"


async def test_large_bodies_are_read_one_at_a_time_and_waiting_is_not_timed() -> None:
    # Four bodies of 2.5 MiB, each 0.4 s to read: 1.6 s one after the other, with a 1 s timeout per exchange.
    client = client_for(lambda request: httpx.Response(200, stream=_SlowBody(10, 0.04)),
                        timeout="1s", max_response_bytes=8 * 1024 * 1024, retries=0)
    _SlowBody.reading.clear()
    _SlowBody.most = 0
    try:
        results = await asyncio.gather(*(client.get(f"/api/thing{i}") for i in range(4)))
    finally:
        await client.aclose()
    assert [r.outcome for r in results] == [Outcome.SUCCESS] * 4, [r.reason for r in results]
    assert _SlowBody.most == 1
    assert not client._large_body.locked(), "the turn is handed back"


async def test_status_probes_are_capped_at_a_megabyte_lists_at_the_targets_cap() -> None:
    body = b"[" + b'"x",' * (600 * 1024) + b'"x"]'  # 2.4 MB of valid JSON
    client = client_for(lambda request: httpx.Response(200, content=body), max_response_bytes=8 * 1024 * 1024,
                        retries=0)
    try:
        version = await client.get("/artifactory/api/system/version")
        listing = await client.get("/artifactory/api/repositories")
    finally:
        await client.aclose()
    assert version.outcome is Outcome.BAD_RESPONSE
    assert version.reason.endswith("response larger than 1048576 bytes refused")
    assert listing.outcome is Outcome.SUCCESS


async def test_a_call_leaves_no_reference_cycle_behind() -> None:
    # A cycle per call waits for a full garbage collection, which serve runs every 10 minutes.
    import gc

    client = client_for(lambda request: httpx.Response(200, json={"fine": True}))
    try:
        await client.get("/api/thing")  # the pool's connection and the like, made once
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        for _ in range(20):
            assert (await client.get("/api/thing")).ok
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        await client.aclose()
    assert left == []


async def test_a_plain_http_target_loads_no_ca_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system CA store takes 1.7 MB once loaded; a client on http:// (no redirects followed) never needs it."""
    loaded: list[tuple[object, ...]] = []
    real = client_module.tls_context
    monkeypatch.setattr(client_module, "tls_context", lambda *args: loaded.append(args) or real(*args))
    client = JfrogClient(make_target("http://127.0.0.1:9"))
    try:
        assert loaded == []
        client.sibling("https://127.0.0.1:9")  # a service published over TLS gets the configured context
        assert loaded == [(None, False)]
    finally:
        await client.aclose()
    plain = client_module.client_tls_context("HTTP://127.0.0.1:9", None, False)
    assert plain.cert_store_stats()["x509_ca"] == 0
    assert plain.verify_mode is ssl.CERT_REQUIRED, "were TLS ever spoken, every certificate would be refused"
