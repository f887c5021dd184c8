"""HTTP access to one JPD: auth, timeouts, retries, limits, outcome classification.

Collectors never see httpx exceptions: every call ends in an :class:`ApiResult`
whose :class:`Outcome` says what happened, and every call is counted per
route template for the exporter's self-metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import functools
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from exporter.budget import LoopLag, RequestBudget
from exporter.editions import edition_refusal
from exporter.families import DURATION_BUCKETS, REGISTRY, Emitter, Histogram
from exporter.outcomes import CollectionError, Outcome, printable
from exporter.redaction import redact, secret_values
from exporter.selfmetrics import (
    API_DURATION,
    API_REQUESTS,
    REQUEST_BUDGET,
    REQUEST_BUDGET_WAIT,
    REQUEST_SLOWDOWNS,
    REQUESTS_DELAYED,
)
from exporter.transport import PoolTransport, environment_proxies
from exporter.values import safe_url

if TYPE_CHECKING:
    from exporter.config import TargetConfig

log = logging.getLogger(__name__)


#: the one endpoint every JFrog Platform answers, with "OK", to anyone
PING = "/artifactory/api/system/ping"
#: answers that are a few lines by nature (status probes, version, licenses): a megabyte is already hostile
SMALL_ANSWERS = frozenset({
    PING, "/artifactory/api/v1/system/readiness", "/artifactory/api/v1/system/liveness",
    "/artifactory/api/system/version", "/artifactory/api/system/license", "/artifactory/api/system/licenses",
    "/router/api/v1/system/health", "/artifactory/api/system/replications",
    "/jfconnect/api/v1/system/ping", "/jfconnect/api/v1/system/readiness", "/access/api/v1/system/ping",
})
SMALL_ANSWER_BYTES = 1 << 20

_UNSUPPORTED_STATUSES = frozenset({404, 405, 501})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0
_SNIPPET = 120
_CONNECTIONS_PER_POOL = 2
#: how long an idle connection to the JPD is kept for the next call: longer than the health collector's 30 s, so
#: its runs find their connections open (with httpx's 5 s each run opened new ones, a TLS handshake each for the
#: JPD), and shorter than what load balancers and proxies in front of JPDs keep (60 s on AWS, 75 s on nginx).
KEEPALIVE = 45.0
#: a body beyond this many bytes is read only while no other large one is: the memory a target's bodies take
#: stays near one cap, not one cap per request in flight
_LARGE_BODY = 1 << 20
#: of an error or a body that is not the expected JSON, this much text is kept
_TEXT_KEPT = 64 * 1024

#: sees each request with the answer the JPD gave and its body as read (``jfrog-exporter record``)
ExchangeHook = Callable[[httpx.Request, httpx.Response, bytes], None]


@dataclass(frozen=True, slots=True)
class ApiResult:
    endpoint: str
    outcome: Outcome
    status: int | None = None
    body: Any = None
    reason: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCESS

    @property
    def unsupported(self) -> bool:
        return self.outcome is Outcome.UNSUPPORTED

    def require(self) -> Any:
        """The body of a successful call, or raise :class:`CollectionError` with the reason."""
        if self.outcome is not Outcome.SUCCESS:
            raise CollectionError(self.outcome, f"{self.endpoint}: {self.reason}")
        return self.body


class RequestStats:
    """Counts and latency of every call, per route template and status code."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.durations: dict[str, Histogram] = {}
        #: calls recorded so far: the self-metrics changed when it did
        self.calls = 0

    def record(self, endpoint: str, code: str, seconds: float) -> None:
        self.calls += 1
        key = (endpoint, code)
        self.counts[key] = self.counts.get(key, 0) + 1
        hist = self.durations.get(endpoint)
        if hist is None:
            hist = self.durations[endpoint] = Histogram(DURATION_BUCKETS)
        hist.observe(seconds)

    def total(self) -> int:
        return sum(self.counts.values())

    def emit(self, out: Emitter, target: str) -> None:
        out.touch(API_REQUESTS, API_DURATION)
        for (endpoint, code), count in sorted(self.counts.items()):
            out.counter(API_REQUESTS, count, target=target, endpoint=endpoint, code=code)
        for endpoint, hist in sorted(self.durations.items()):
            out.histogram(API_DURATION, hist.buckets, hist.cumulative(), hist.total, target=target,
                          endpoint=endpoint)


#: what a response's stream is once read and closed (see JfrogClient._attempt)
_CLOSED_STREAM = httpx.ByteStream(b"")


def one_line(text: str, limit: int = _SNIPPET) -> str:
    text = re.sub(r"\s+", " ", printable(text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def jfrog_error_message(raw: bytes) -> str | None:
    """The message of a JFrog error body ({"errors": [{"status", "message"}]} or {"message"}), if it is one."""
    try:
        data = json.loads(raw[:4096].decode("utf-8", "replace"))
    except ValueError:
        return None
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            return one_line("; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors))
        if "message" in data:
            return one_line(str(data["message"]))
    return None


def describe_error_body(raw: bytes, content_type: str) -> str:
    """A readable reason from whatever the JPD sent with an error status."""
    if not raw:
        return "empty body"
    message = jfrog_error_message(raw)
    if message is not None:
        return message
    text = raw[:4096].decode("utf-8", "replace")
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype html", "<html")):
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        return "HTML page" + (f" ({one_line(title.group(1), 60)})" if title else "")
    return one_line(text)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _TooLarge(Exception):
    pass


def tls_context(ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """The TLS context of a TLS configuration, shared by every pool of every target configured alike.

    Each context holds its own copy of the CA bundle in OpenSSL's memory, about 0.8 MB: one per target took
    most of the memory of a process watching hundreds of JPDs (benchmarks/bench_fleet.py).
    """
    if insecure:
        return _tls_context(None, 0, True)
    # A CA file replaced before a reload gets a context of its own.
    return _tls_context(str(ca_file) if ca_file else None, ca_file.stat().st_mtime_ns if ca_file else 0, False)


def client_tls_context(url: str, ca_file: Path | None, insecure: bool) -> ssl.SSLContext:
    """The context a client for ``url`` hands its pools: :func:`tls_context`, unless the URL is plain HTTP.

    A client follows no redirects, so one for an ``http://`` URL never opens a TLS connection: it gets a
    context that trusts no certificate instead of the system CA store, which takes 1.7 MB of OpenSSL's
    memory once loaded (a sibling on ``https://`` still gets its own).
    """
    if urlsplit(url).scheme.lower() == "http":
        return _trusting_nothing()
    return tls_context(ca_file, insecure)


@functools.cache
def _trusting_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: any certificate is refused


@functools.lru_cache(maxsize=16)
def _tls_context(ca_file: str | None, _version: int, insecure: bool) -> ssl.SSLContext:
    if insecure:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=ca_file)


class JfrogClient:
    """One per target: owns the connection pool and the concurrency limit."""

    def __init__(self, target: TargetConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.target = target
        self.stats = RequestStats()
        #: False from a 401 until the next 2xx: the JPD rejects the configured credential
        self.credentials_accepted = True
        #: True once ping answered like Artifactory (for good); False while the URL leads elsewhere; None: unknown
        self.platform: bool | None = None
        #: why the URL is taken for something else than a JFrog Platform
        self.platform_reason = ""
        #: whether the last ping answered OK; None before the first
        self.ping_ok: bool | None = None
        #: told about every answer; None outside of ``record``
        self.recorder: ExchangeHook | None = None
        #: probes that refused an anonymous call and answered with credentials: asked with them first from then on
        self._credentialed_probes: set[str] = set()
        self._proof = asyncio.Lock()
        self._transport = transport
        self._siblings: dict[str, JfrogClient] = {}
        self._semaphore = asyncio.Semaphore(target.max_concurrency)
        #: paces every call to this JPD, all collectors together, and slows down while it struggles
        self.budget = RequestBudget(target.name, target.max_requests_per_second)
        self._loop_lag = LoopLag()
        #: calls waiting for the budget or a retry: woken, not cancelled, when the client closes
        self._sleepers: set[asyncio.Future[None]] = set()
        self._closed = False
        self._large_body = asyncio.Lock()
        self._max_bytes = target.max_response_bytes
        self._retries = target.retries
        verify = client_tls_context(target.url, target.tls.ca_file, target.tls.insecure_skip_verify)
        if transport is None and not environment_proxies():
            transport = PoolTransport(ssl_context=verify, max_connections=target.max_concurrency,
                                      keepalive_expiry=KEEPALIVE)
            shards = 1
        else:
            # Through a proxy, httpx's transport: its pool (httpcore's) rescans every connection at each
            # request and release, O(n^2) with n connections, so the connections are split over small pools.
            shards = -(-target.max_concurrency // _CONNECTIONS_PER_POOL)
        per_pool = -(-target.max_concurrency // shards)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool, keepalive_expiry=KEEPALIVE)
        self._pools = [
            httpx.AsyncClient(
                base_url=target.url,
                timeout=httpx.Timeout(target.timeout),
                # verify and limits are for httpx's transport (through a proxy); PoolTransport has its own
                verify=verify,
                limits=limits,
                transport=transport,
                follow_redirects=False,
                headers={"User-Agent": f"jfrog-exporter/{_version()}", "Accept": "application/json"},
            )
            for _ in range(shards)
        ]
        self._in_flight = [0] * shards

    async def aclose(self) -> None:
        self._closed = True
        for sleeper in self._sleepers:
            _wake(sleeper)
        await asyncio.gather(*(pool.aclose() for pool in self._pools),
                             *(sibling.aclose() for sibling in self._siblings.values()))

    def sibling(self, url: str) -> JfrogClient:
        """The client for a service of the same JPD published at another base URL (Distribution on a host of
        its own): the same credentials, TLS, timeouts and limits; its calls count with this client's, and it
        is closed with this one.

        A 404 there is not checked against the platform's ping, which that URL need not answer: the
        collector that asked for the URL judges its own "not found" (a wrong URL, not a missing edition).
        """
        if url == self.target.url:
            return self
        client = self._siblings.get(url)
        if client is None:
            client = JfrogClient(self.target.model_copy(update={"url": url}), transport=self._transport)
            client.stats = self.stats
            client.recorder = self.recorder
            client.platform = True
            self._siblings[url] = client
        return client

    def version(self) -> tuple[object, ...]:
        """Changes whenever the request self-metrics or the verdicts on credentials and URL do."""
        budget = self.budget
        return (self.stats.calls, self.credentials_accepted, self.platform, budget.delayed, budget.rate(),
                *budget.slowdowns.values())

    def emit(self, out: Emitter, target: str) -> None:
        """The request self-metrics: calls by route and code, their latency, the request budget."""
        self.stats.emit(out, target)
        budget = self.budget
        out.touch(REQUEST_BUDGET, REQUESTS_DELAYED, REQUEST_BUDGET_WAIT, REQUEST_SLOWDOWNS)
        if budget.limited:
            out.gauge(REQUEST_BUDGET, budget.rate(), target=target)
        out.counter(REQUESTS_DELAYED, budget.delayed, target=target)
        out.counter(REQUEST_BUDGET_WAIT, budget.waited, target=target)
        for reason, count in budget.slowdowns.items():
            out.counter(REQUEST_SLOWDOWNS, count, target=target, reason=reason.value)

    def _pick_pool(self) -> int:
        return min(range(len(self._pools)), key=self._in_flight.__getitem__)

    async def get(
        self,
        endpoint: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        expect: str = "json",
        accept: frozenset[int] = frozenset({200}),
        anonymous: bool = False,
    ) -> ApiResult:
        """GET a route template such as ``/artifactory/api/replication/{repo}``.

        ``accept`` lists statuses whose body is data (the router answers 503
        with its health JSON); ``expect`` is "json" or "text"; ``anonymous``
        sends no credentials (ping needs none, so a rejected token cannot
        make the JPD look down).
        """
        return await self.request("GET", endpoint, path=path, params=params, expect=expect, accept=accept,
                                  anonymous=anonymous)

    async def probe(self, endpoint: str, *, expect: str = "json",
                    accept: frozenset[int] = frozenset({200})) -> ApiResult:
        """GET an endpoint that needs no credentials (ping, readiness, router health): without them
        first, so that a rejected credential never hides the JPD's own state; with them if refused.

        A probe that refused the anonymous call and answered with credentials (JFConnect's) is asked with
        them first from then on, rather than collect a 401 every run; once they are refused, it is asked
        without them first again.
        """
        credentials = self.target.auth.kind != "anonymous"
        if not credentials or endpoint not in self._credentialed_probes:
            result = await self.request("GET", endpoint, expect=expect, accept=accept, anonymous=True)
            if result.outcome is not Outcome.UNAUTHORIZED or not credentials:
                return result
        result = await self.request("GET", endpoint, expect=expect, accept=accept)
        if result.outcome is Outcome.UNAUTHORIZED:
            self._credentialed_probes.discard(endpoint)
        else:
            self._credentialed_probes.add(endpoint)
        return result

    async def ping(self) -> ApiResult:
        """GET ping, which tells whether the URL leads to a JFrog Platform at all.

        Sent without credentials first: Artifactory 7 answers it to anyone, so a
        rejected token cannot make the JPD look down (tests/field/ping.yaml).
        Older servers and some proxies want them anyway.
        """
        result = await self.probe(PING, expect="text")
        verdict = judge_ping(result)
        self.ping_ok = verdict is True
        # Once a JFrog Platform, always one: a later odd answer is the JPD's trouble (jfrog_up 0), not a wrong URL.
        if verdict is False and self.platform is not True:
            self.platform, self.platform_reason = False, not_a_platform(self.target.url, result)
            return replace(result, outcome=Outcome.MISCONFIGURED, body=None, reason=self.platform_reason)
        if verdict and self.platform is not True:
            self.platform, self.platform_reason = True, ""
        return result

    async def _vet(self, result: ApiResult, expect: str) -> ApiResult:
        """Before the URL proved to lead to a JFrog Platform, "not found" or a page where JSON was
        expected may mean a wrong URL rather than an edition without the endpoint: ask ping once."""
        if self.platform is True or not _may_be_elsewhere(result, expect):
            return result
        async with self._proof:
            if self.platform is None:
                await self.ping()
        if self.platform is False:
            return replace(result, outcome=Outcome.MISCONFIGURED, body=None,
                           reason=f"{result.reason}; {self.platform_reason}")
        return result

    async def request(
        self,
        method: str,
        endpoint: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: str | bytes | None = None,
        content_type: str = "text/plain",
        expect: str = "json",
        accept: frozenset[int] = frozenset({200}),
        retry: bool | None = None,
        anonymous: bool = False,
    ) -> ApiResult:
        """Any method; ``content`` sends a raw body (AQL is text) with ``content_type``."""
        call = _Call(
            method=method,
            endpoint=endpoint,
            url=endpoint.format(**{k: httpx_quote(v) for k, v in (path or {}).items()}),
            params=params,
            json_body=json_body,
            body=None if content is None else (content, content_type),
            expect=expect,
            accept=accept,
            anonymous=anonymous,
        )
        # Only idempotent reads are retried; a POST may have had an effect.
        attempts = 1 + (self._retries if (retry if retry is not None else method == "GET") else 0)
        result: ApiResult | None = None
        for attempt in range(attempts):
            # Retries too, and before the exchange's deadline starts.
            if not await self._wait_for_budget():
                result = result or self._fail(endpoint, Outcome.ERROR, "error", "not sent: the exporter is stopping")
                break
            result, delay = await self._attempt(call)
            if delay is None or attempt == attempts - 1:
                break
            await self._sleep(delay if delay > 0 else _backoff(attempt))
        assert result is not None
        return result if endpoint == PING else await self._vet(result, expect)

    async def _wait_for_budget(self) -> bool:
        """Wait for this call's slot, holding no connection nor concurrency slot meanwhile; False once the
        client is closed (the call is not sent)."""
        budget = self.budget
        started: float | None = None
        while not self._closed:
            wait, epoch = budget.reserve()
            if wait <= 0:
                break
            if started is None:
                started = time.monotonic()
            await self._sleep(wait)
            if budget.epoch == epoch:
                break
            # A slow-down or a Retry-After voided the slot: take a new one at the new pace.
        if started is not None:
            budget.waited_for(time.monotonic() - started)
        return not self._closed

    async def _sleep(self, seconds: float) -> None:
        """Like asyncio.sleep, but ends when the client closes: a stopping exporter or a reload does not wait
        out a Retry-After, nor cancel the runs that wait."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        sleeper: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(seconds, _wake, sleeper)
        self._sleepers.add(sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleepers.discard(sleeper)

    def _headers(self, call: _Call) -> dict[str, str]:
        headers = {} if call.anonymous else self._auth_headers()
        if call.expect == "text":
            # Text endpoints (ping, Open Metrics) may refuse a request that insists on JSON.
            headers["Accept"] = "text/plain, */*;q=0.1"
        if call.body is not None:
            headers["Content-Type"] = call.body[1]
        return headers

    async def _attempt(self, call: _Call) -> tuple[ApiResult, float | None]:
        """One HTTP exchange; the second value is a retry delay (0: use backoff) or None."""
        endpoint = call.endpoint
        async with self._semaphore:
            started = time.perf_counter()
            busy = self._loop_lag.enter()
            code = "error"
            pool = self._pick_pool()
            self._in_flight[pool] += 1
            http = self._pools[pool]
            # Whether this exchange holds the large-body turn, and whether it passes it on to decoding.
            large = keep_turn = False
            try:
                request = http.build_request(call.method, call.url, params=call.params, json=call.json_body,
                                             content=call.body[0] if call.body else None, headers=self._headers(call))
                auth = None if call.anonymous else self._basic_auth()
                # httpx's timeout bounds each read; a body trickling a byte at a time would never end without
                # a deadline for the whole exchange.
                async with asyncio.timeout(self.target.timeout) as deadline:
                    response = await http.send(request, stream=True, auth=auth)
                    code = str(response.status_code)
                    self._note_load(response, call.accept, self._loop_lag.exclude(started, busy))
                    try:
                        raw, large = await self._read_capped(response, deadline, self._cap_for(endpoint))
                    finally:
                        await response.aclose()
                        # httpx's response and its stream refer to each other: a cycle per request, left for
                        # the garbage collector (42 objects each, 85 MB in 10 minutes at 300 targets).
                        response.stream = _CLOSED_STREAM
                if self.recorder is not None:
                    self.recorder(request, response, raw)
                keep_turn = large
            except _TooLarge:
                return self._fail(endpoint, Outcome.BAD_RESPONSE, code,
                                  f"response larger than {self._cap_for(endpoint)} bytes refused"), None
            except httpx.TimeoutException as exc:
                code = self._timed_out(code, started, busy)
                return self._fail(endpoint, Outcome.TIMEOUT, code,
                                  f"no answer within {self.target.timeout:g}s ({type(exc).__name__})"), None
            except TimeoutError:
                trickling = f" (HTTP {code} arrived, its body did not finish)" if code != "error" else ""
                code = self._timed_out(code, started, busy)
                return self._fail(endpoint, Outcome.TIMEOUT, code,
                                  f"no complete answer within {self.target.timeout:g}s{trickling}"), None
            except (httpx.TransportError, OSError) as exc:
                code = "unreachable"
                return self._fail(endpoint, Outcome.UNREACHABLE, code, _transport_reason(exc)), 0.0
            finally:
                if large and not keep_turn:
                    self._large_body.release()
                self._in_flight[pool] -= 1
                self._loop_lag.leave()
                self.stats.record(endpoint, code, time.perf_counter() - started)
        if not call.anonymous:
            self._note_credentials(response.status_code)
        try:
            # Decoding JSON takes several times the body's size: a large body's turn lasts until it is decoded.
            result, delay = classify(endpoint, response.status_code, response.headers, raw, call.expect,
                                     call.accept)
        finally:
            if large:
                self._large_body.release()
        return self._without_secrets(result), delay

    def _note_load(self, response: httpx.Response, accept: frozenset[int], seconds: float) -> None:
        """Tell the budget how the JPD coped: a 429 or 503 (unless it is data, like the router's health), a
        Retry-After, and the time to the answer's headers (a large body's transfer says nothing of load)."""
        status = response.status_code
        retry_after = retry_after_seconds(response.headers.get("retry-after")) if status in (429, 503) else None
        self.budget.answered(None if status in accept else status, seconds, retry_after)

    def _timed_out(self, code: str, started: float, busy: float) -> str:
        """The code of a call that timed out; one that got no headers is a sign of load, like a slow answer."""
        if code == "error":
            self.budget.answered(None, self._loop_lag.exclude(started, busy))
        return "timeout"

    def _note_credentials(self, status: int) -> None:
        if status == 401:
            self.credentials_accepted = False
        elif 200 <= status < 300:
            self.credentials_accepted = True

    def _fail(self, endpoint: str, outcome: Outcome, code: str, reason: str) -> ApiResult:
        return self._without_secrets(ApiResult(endpoint=endpoint, outcome=outcome, reason=reason))

    def _without_secrets(self, result: ApiResult) -> ApiResult:
        """A failure's reason and text body with the configured credentials hidden: a proxy or JPD may echo
        the Authorization header, and reasons are logged and shown on the landing page."""
        if result.outcome is Outcome.SUCCESS:
            return result
        secrets = secret_values(self.target.auth.token(), self.target.auth.basic())
        reason = redact(result.reason, secrets)
        body = redact(result.body, secrets) if isinstance(result.body, str) else result.body
        if reason == result.reason and body == result.body:
            return result
        return dataclasses.replace(result, reason=reason, body=body)

    def _cap_for(self, endpoint: str) -> int:
        return min(self._max_bytes, SMALL_ANSWER_BYTES) if endpoint in SMALL_ANSWERS else self._max_bytes

    async def _read_capped(self, response: httpx.Response, deadline: asyncio.Timeout,
                           cap: int) -> tuple[bytes, bool]:
        """The body, and whether it is large: then this exchange holds the large-body turn, which the caller
        releases once the body is decoded."""
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > cap:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        large = False
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _TooLarge
                chunks.append(chunk)
                if size > _LARGE_BODY and not large:
                    await self._wait_for_large_body_turn(deadline)
                    large = True
            return b"".join(chunks), large
        except BaseException:
            if large:
                self._large_body.release()
            raise

    async def _wait_for_large_body_turn(self, deadline: asyncio.Timeout) -> None:
        """Queue behind another large body; the wait does not count against this exchange's deadline."""
        if not self._large_body.locked():
            await self._large_body.acquire()
            return
        when = deadline.when()
        paused_at = asyncio.get_running_loop().time()
        deadline.reschedule(None)
        await self._large_body.acquire()
        if when is not None:
            deadline.reschedule(when + asyncio.get_running_loop().time() - paused_at)

    def _auth_headers(self) -> dict[str, str]:
        token = self.target.auth.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _basic_auth(self) -> httpx.BasicAuth | None:
        creds = self.target.auth.basic()
        return httpx.BasicAuth(*creds) if creds else None


def classify(endpoint: str, status: int, headers: Mapping[str, str], raw: bytes, expect: str,
             accept: frozenset[int]) -> tuple[ApiResult, float | None]:
    """The outcome of an answer, and a retry delay for statuses worth retrying (0: use backoff)."""
    if status not in accept:
        return _classify_refusal(endpoint, status, headers, raw)
    if expect == "text":
        return ApiResult(endpoint, Outcome.SUCCESS, status, raw.decode("utf-8", "replace"), "", headers), None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser's stack, which no JPD sends.
        return ApiResult(endpoint, Outcome.BAD_RESPONSE, status, _kept_text(raw),
                         _not_json_reason(raw, headers.get("content-type", ""), exc), headers), None
    return ApiResult(endpoint, Outcome.SUCCESS, status, body, "", headers), None


#: what a refused call means, and the hint the reason ends with
_REFUSALS: dict[int, tuple[Outcome, str]] = {
    401: (Outcome.UNAUTHORIZED, " (check the configured credentials)"),
    403: (Outcome.FORBIDDEN, " (the credentials lack the permission this endpoint needs)"),
    **dict.fromkeys(_UNSUPPORTED_STATUSES, (Outcome.UNSUPPORTED, "")),
}


def _classify_refusal(endpoint: str, status: int, headers: Mapping[str, str],
                      raw: bytes) -> tuple[ApiResult, float | None]:
    reason = f"HTTP {status}: {describe_error_body(raw, headers.get('content-type', ''))}"
    text = _kept_text(raw)
    # AQL refuses in plain text, the other APIs in JFrog's error JSON; a page is never a refusal.
    message = jfrog_error_message(raw) or ("" if _looks_like_html(text) else one_line(text))
    refusal = edition_refusal(status, message) if status in (400, 403) else None
    if refusal is not None:
        return ApiResult(endpoint, Outcome.UNSUPPORTED, status, text, f"{reason} ({refusal.edition})",
                         headers), None
    known = _REFUSALS.get(status)
    if known is not None:
        outcome, hint = known
        needs = REGISTRY.permission(endpoint)
        if status == 403 and needs is not None:
            hint = f" (this endpoint needs {needs}; the configured credentials are not enough)"
        body = text if outcome is Outcome.UNSUPPORTED else None
        return ApiResult(endpoint, outcome, status, body, reason + hint, headers), None
    delay = None
    if status in _RETRY_STATUSES:
        delay = min(retry_after_seconds(headers.get("retry-after")) or 0.0, _MAX_RETRY_AFTER)
    if status == 429:
        reason += " (the JPD limits how fast it may be asked; the exporter slows down: max_requests_per_second)"
    return ApiResult(endpoint, Outcome.ERROR, status, text, reason, headers), delay


def _kept_text(raw: bytes) -> str:
    """The start of a body that is no data: enough to quote and classify, never megabytes of it."""
    return raw[:_TEXT_KEPT].decode("utf-8", "replace")


def judge_ping(result: ApiResult) -> bool | None:
    """Whether a ping answer comes from a JFrog Platform: True, False, or None when it cannot tell
    (no answer, a server error, refused credentials)."""
    if result.outcome is Outcome.SUCCESS:
        return isinstance(result.body, str) and result.body.strip().upper() == "OK"
    if result.outcome is Outcome.UNSUPPORTED:
        return False  # a JFrog Platform always has its ping
    return None


def not_a_platform(base_url: str, ping: ApiResult) -> str:
    """The one error that says the URL is wrong, naming what was tried and what a right one looks like."""
    if ping.outcome is Outcome.SUCCESS:
        text = ping.body if isinstance(ping.body, str) else ""
        answered = "an HTML page" if _looks_like_html(text) else f"{one_line(text, 40)!r} instead of OK"
    else:
        answered = ping.reason.split(" (", 1)[0]
    return (f"{safe_url(base_url)}{PING} answered {answered}: this URL does not lead to a JFrog Platform; "
            "configure the platform's base URL, e.g. https://acme.jfrog.io or http://artifactory.example:8082 "
            "(without /ui or a path)")


def _looks_like_html(text: str) -> bool:
    return text.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))


def _may_be_elsewhere(result: ApiResult, expect: str) -> bool:
    """An answer a web server that is no JFrog Platform gives as well: not found, or a page instead of JSON."""
    if result.outcome is Outcome.UNSUPPORTED:
        return True
    if result.outcome is Outcome.BAD_RESPONSE and expect == "json" and isinstance(result.body, str):
        return result.body.lstrip()[:1] not in ("{", "[")
    return False


@dataclass(frozen=True, slots=True)
class _Call:
    """One request as the collectors asked for it; retried attempts share it."""

    method: str
    endpoint: str
    url: str
    params: Mapping[str, Any] | None
    json_body: Any
    body: tuple[str | bytes, str] | None
    expect: str
    accept: frozenset[int]
    anonymous: bool


def _not_json_reason(raw: bytes, content_type: str, exc: ValueError | RecursionError) -> str:
    if not raw.strip():
        return "expected JSON, got an empty body"
    text = raw[:4096].decode("utf-8", "replace")
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return f"expected JSON, got an HTML page ({describe_error_body(raw, content_type)})"
    if isinstance(exc, RecursionError):
        return "expected JSON, got JSON nested too deep to read"
    if text.lstrip()[:1] in "{[":
        return f"expected JSON, got malformed JSON ({exc})"
    return f"expected JSON, got text: {one_line(text, 80)!r}"


def _transport_reason(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return f"cannot reach the JPD: {one_line(detail, 100)}"


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)


def _backoff(attempt: int) -> float:
    # Full jitter keeps many exporters from retrying in lock-step.
    return random.uniform(0, min(8.0, 0.5 * 2**attempt))


def httpx_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _version() -> str:
    from exporter import __version__

    return __version__
