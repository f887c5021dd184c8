"""HTTP access to one JPD: auth, timeouts, retries, limits, outcome classification.

Collectors never see httpx exceptions: every call ends in an :class:`ApiResult`
whose :class:`Outcome` says what happened, and every call is counted per
route template for the exporter's self-metrics.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client.core import Metric

from exporter.metrics import DURATION_BUCKETS, Histogram, MetricSet

if TYPE_CHECKING:
    from exporter.config import TargetConfig

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    SUCCESS = "success"
    UNSUPPORTED = "unsupported"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    BAD_RESPONSE = "bad_response"
    ERROR = "error"


#: Outcomes that mean "the JPD answered and there is nothing wrong with the exporter's data".
SUCCESSFUL_OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.UNSUPPORTED})

_UNSUPPORTED_STATUSES = frozenset({404, 405, 501})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 30.0
_SNIPPET = 120
_CONNECTIONS_PER_POOL = 2


class CollectionError(Exception):
    """A call (or a whole run) that could not produce the data it needed.

    ``partial`` families, when given, replace the same-named families of the
    previous snapshot while the rest of it stays (health reports ``jfrog_up 0``
    for a JPD that does not answer, and keeps its last license data).
    """

    def __init__(self, outcome: Outcome, reason: str, partial: list[Metric] | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        self.partial = partial


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

    def record(self, endpoint: str, code: str, seconds: float) -> None:
        key = (endpoint, code)
        self.counts[key] = self.counts.get(key, 0) + 1
        hist = self.durations.get(endpoint)
        if hist is None:
            hist = self.durations[endpoint] = Histogram(DURATION_BUCKETS)
        hist.observe(seconds)

    def total(self) -> int:
        return sum(self.counts.values())

    def add_to(self, metrics: MetricSet) -> None:
        metrics.declare(
            "jfrog_exporter_api_requests", "HTTP calls made to the JPD, by route template and status code.",
            "counter",
        )
        for (endpoint, code), count in sorted(self.counts.items()):
            metrics.counter(
                "jfrog_exporter_api_requests",
                "HTTP calls made to the JPD, by route template and status code.",
                count,
                endpoint=endpoint,
                code=code,
            )
        metrics.declare("jfrog_exporter_api_request_duration_seconds", "Latency of HTTP calls to the JPD.",
                        "histogram")
        for endpoint, hist in sorted(self.durations.items()):
            metrics.histogram(
                "jfrog_exporter_api_request_duration_seconds",
                "Latency of HTTP calls to the JPD.",
                hist.buckets,
                hist.cumulative(),
                hist.total,
                endpoint=endpoint,
            )


def one_line(text: str, limit: int = _SNIPPET) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error_body(raw: bytes, content_type: str) -> str:
    """A readable reason from whatever the JPD sent with an error status."""
    if not raw:
        return "empty body"
    text = raw[:4096].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
            return one_line("; ".join(messages))
        if "message" in data:
            return one_line(str(data["message"]))
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


class JfrogClient:
    """One per target: owns the connection pool and the concurrency limit."""

    def __init__(self, target: TargetConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.target = target
        self.stats = RequestStats()
        self._semaphore = asyncio.Semaphore(target.max_concurrency)
        self._max_bytes = target.max_response_bytes
        self._retries = target.retries
        # One TLS context shared by the pools: loading the CA bundle once, not per pool.
        verify: ssl.SSLContext | bool
        if target.tls.insecure_skip_verify:
            verify = False
        else:
            verify = ssl.create_default_context(cafile=str(target.tls.ca_file) if target.tls.ca_file else None)
        # httpcore's pool rescans every connection on each request and release (O(n^2) with n
        # connections), which dominated a cycle's CPU at 16 connections. Small pools picked by load
        # keep the same number of connections at a fraction of that cost.
        shards = -(-target.max_concurrency // _CONNECTIONS_PER_POOL)
        per_pool = -(-target.max_concurrency // shards)
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        self._pools = [
            httpx.AsyncClient(
                base_url=target.url,
                timeout=httpx.Timeout(target.timeout),
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
        await asyncio.gather(*(pool.aclose() for pool in self._pools))

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
    ) -> ApiResult:
        """GET a route template such as ``/artifactory/api/replication/{repo}``.

        ``accept`` lists statuses whose body is data (the router answers 503
        with its health JSON); ``expect`` is "json" or "text".
        """
        return await self.request("GET", endpoint, path=path, params=params, expect=expect, accept=accept)

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
    ) -> ApiResult:
        """Any method; ``content`` sends a raw body (AQL is text) with ``content_type``."""
        url = endpoint.format(**{k: httpx_quote(v) for k, v in (path or {}).items()})
        body = None if content is None else (content, content_type)
        # Only idempotent reads are retried; a POST may have had an effect.
        attempts = 1 + (self._retries if (retry if retry is not None else method == "GET") else 0)
        result: ApiResult | None = None
        for attempt in range(attempts):
            result, delay = await self._attempt(method, endpoint, url, params, json_body, expect, accept, body)
            if delay is None or attempt == attempts - 1:
                break
            await asyncio.sleep(delay if delay > 0 else _backoff(attempt))
        assert result is not None
        return result

    async def _attempt(
        self,
        method: str,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        expect: str,
        accept: frozenset[int],
        body: tuple[str | bytes, str] | None = None,
    ) -> tuple[ApiResult, float | None]:
        """One HTTP exchange; the second value is a retry delay (0: use backoff) or None."""
        async with self._semaphore:
            started = time.perf_counter()
            code = "error"
            pool = self._pick_pool()
            self._in_flight[pool] += 1
            http = self._pools[pool]
            try:
                headers = self._auth_headers()
                if expect == "text":
                    # Text endpoints (ping, Open Metrics) may refuse a request that insists on JSON.
                    headers["Accept"] = "text/plain, */*;q=0.1"
                if body is not None:
                    headers["Content-Type"] = body[1]
                request = http.build_request(
                    method, url, params=params, json=json_body, content=body[0] if body else None, headers=headers
                )
                response = await http.send(request, stream=True, auth=self._basic_auth())
                code = str(response.status_code)
                try:
                    raw = await self._read_capped(response)
                finally:
                    await response.aclose()
            except _TooLarge:
                return self._fail(endpoint, Outcome.BAD_RESPONSE, code,
                                  f"response larger than {self._max_bytes} bytes refused"), None
            except httpx.TimeoutException as exc:
                code = "timeout"
                return self._fail(endpoint, Outcome.TIMEOUT, code,
                                  f"no answer within {self.target.timeout:g}s ({type(exc).__name__})"), None
            except (httpx.TransportError, OSError) as exc:
                code = "unreachable"
                return self._fail(endpoint, Outcome.UNREACHABLE, code, _transport_reason(exc)), 0.0
            finally:
                self._in_flight[pool] -= 1
                self.stats.record(endpoint, code, time.perf_counter() - started)
        return self._classify(endpoint, response, raw, expect, accept)

    def _fail(self, endpoint: str, outcome: Outcome, code: str, reason: str) -> ApiResult:
        return ApiResult(endpoint=endpoint, outcome=outcome, reason=reason)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self._max_bytes:
            raise _TooLarge
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    def _classify(
        self, endpoint: str, response: httpx.Response, raw: bytes, expect: str, accept: frozenset[int]
    ) -> tuple[ApiResult, float | None]:
        status = response.status_code
        headers = response.headers
        content_type = headers.get("content-type", "")
        if status not in accept:
            detail = describe_error_body(raw, content_type)
            reason = f"HTTP {status}: {detail}"
            if status == 401:
                return ApiResult(endpoint, Outcome.UNAUTHORIZED, status, None,
                                 f"{reason} (check the configured credentials)", headers), None
            if status == 403:
                return ApiResult(endpoint, Outcome.FORBIDDEN, status, None,
                                 f"{reason} (the credentials lack the permission this endpoint needs)",
                                 headers), None
            if status in _UNSUPPORTED_STATUSES:
                return ApiResult(endpoint, Outcome.UNSUPPORTED, status, raw.decode("utf-8", "replace"),
                                 reason, headers), None
            delay = None
            if status in _RETRY_STATUSES:
                delay = min(retry_after_seconds(headers.get("retry-after")) or 0.0, _MAX_RETRY_AFTER)
            return ApiResult(endpoint, Outcome.ERROR, status, raw.decode("utf-8", "replace"), reason,
                             headers), delay
        if expect == "text":
            return ApiResult(endpoint, Outcome.SUCCESS, status, raw.decode("utf-8", "replace"), "", headers), None
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return ApiResult(endpoint, Outcome.BAD_RESPONSE, status, raw.decode("utf-8", "replace"),
                             _not_json_reason(raw, content_type, exc), headers), None
        return ApiResult(endpoint, Outcome.SUCCESS, status, body, "", headers), None

    def _auth_headers(self) -> dict[str, str]:
        token = self.target.auth.token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _basic_auth(self) -> httpx.BasicAuth | None:
        creds = self.target.auth.basic()
        return httpx.BasicAuth(*creds) if creds else None


def _not_json_reason(raw: bytes, content_type: str, exc: ValueError) -> str:
    if not raw.strip():
        return "expected JSON, got an empty body"
    text = raw[:4096].decode("utf-8", "replace")
    if "html" in content_type or text.lstrip().lower().startswith(("<!doctype html", "<html")):
        return f"expected JSON, got an HTML page ({describe_error_body(raw, content_type)})"
    if text.lstrip()[:1] in "{[":
        return f"expected JSON, got malformed JSON ({exc})"
    return f"expected JSON, got text: {one_line(text, 80)!r}"


def _transport_reason(exc: BaseException) -> str:
    detail = str(exc) or type(exc).__name__
    return f"cannot reach the JPD: {one_line(detail, 100)}"


def _backoff(attempt: int) -> float:
    # Full jitter keeps many exporters from retrying in lock-step.
    return random.uniform(0, min(8.0, 0.5 * 2**attempt))


def httpx_quote(value: str) -> str:
    from urllib.parse import quote

    return quote(str(value), safe="")


def _version() -> str:
    from exporter import __version__

    return __version__
