"""Every outcome the client can classify, against a small misbehaving server on loopback."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from exporter.client import JfrogClient
from exporter.outcomes import Outcome
from tests.conftest import make_target

HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


class Flaky:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def count(self, name: str) -> int:
        self.calls[name] = self.calls.get(name, 0) + 1
        return self.calls[name]


async def start_server(flaky: Flaky) -> tuple[web.AppRunner, str]:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"fine": True})

    async def html(_: web.Request) -> web.Response:
        return web.Response(status=502, text=HTML_PAGE, content_type="text/html")

    async def html_200(_: web.Request) -> web.Response:
        return web.Response(text=HTML_PAGE, content_type="text/html")

    async def plain(_: web.Request) -> web.Response:
        return web.Response(text="RTFS is enabled therefore get unavailable mirrors is not allowed")

    async def truncated(_: web.Request) -> web.Response:
        return web.Response(text='{"status": "ok", "lastCom', content_type="application/json")

    async def empty(_: web.Request) -> web.Response:
        return web.Response(text="", content_type="application/json")

    async def errors(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.json_response({"errors": [{"status": status, "message": f"message {status}"}]}, status=status)

    async def busy_then_ok(_: web.Request) -> web.Response:
        if flaky.count("busy") == 1:
            return web.Response(status=503, text="busy", headers={"Retry-After": "0.2"})
        return web.json_response({"after": "retry"})

    async def always_429(_: web.Request) -> web.Response:
        flaky.count("429")
        return web.Response(status=429, text="slow down", headers={"Retry-After": "0"})

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    async def huge(_: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(_)
        chunk = b"[" + b"1," * 50_000
        for _i in range(100):  # 10 MB without a Content-Length
            await response.write(chunk)
        return response

    app = web.Application()
    for path, handler in [
        ("/ok", ok), ("/html", html), ("/html200", html_200), ("/plain", plain), ("/truncated", truncated),
        ("/empty", empty), ("/errors/{status}", errors), ("/busy", busy_then_ok), ("/429", always_429),
        ("/slow", slow), ("/huge", huge),
    ]:
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def test_outcomes() -> None:
    flaky = Flaky()
    runner, url = await start_server(flaky)
    client = JfrogClient(make_target(url, timeout="0.5s", max_response_bytes=1024 * 1024, retries=2))
    try:
        ok = await client.get("/ok")
        assert ok.outcome is Outcome.SUCCESS and ok.body == {"fine": True}

        html = await client.get("/html")
        assert html.outcome is Outcome.ERROR
        assert "HTML page (502 Bad Gateway)" in html.reason

        html_200 = await client.get("/html200")
        assert html_200.outcome is Outcome.BAD_RESPONSE
        assert html_200.reason.startswith("expected JSON, got an HTML page")

        plain = await client.get("/plain")
        assert plain.outcome is Outcome.BAD_RESPONSE
        assert "RTFS is enabled" in plain.reason and "RTFS is enabled" in plain.body

        truncated = await client.get("/truncated")
        assert truncated.outcome is Outcome.BAD_RESPONSE and "malformed JSON" in truncated.reason

        empty = await client.get("/empty")
        assert empty.outcome is Outcome.BAD_RESPONSE and "empty body" in empty.reason

        for status, outcome in [(401, Outcome.UNAUTHORIZED), (403, Outcome.FORBIDDEN), (404, Outcome.UNSUPPORTED),
                                (405, Outcome.UNSUPPORTED), (501, Outcome.UNSUPPORTED), (412, Outcome.ERROR)]:
            result = await client.get("/errors/{status}", path={"status": str(status)})
            assert result.outcome is outcome, status
            assert f"HTTP {status}: message {status}" in result.reason

        started = time.monotonic()
        busy = await client.get("/busy")
        assert busy.outcome is Outcome.SUCCESS and busy.body == {"after": "retry"}
        assert time.monotonic() - started >= 0.2  # Retry-After honoured

        limited = await client.get("/429")
        assert limited.outcome is Outcome.ERROR and flaky.calls["429"] == 3  # 1 + 2 retries

        slow = await client.get("/slow")
        assert slow.outcome is Outcome.TIMEOUT and "0.5s" in slow.reason

        huge = await client.get("/huge")
        assert huge.outcome is Outcome.BAD_RESPONSE and "larger than 1048576 bytes" in huge.reason

        # Route templates label the self-metrics, never the filled-in path.
        assert ("/errors/{status}", "404") in client.stats.counts
        assert ("/busy", "503") in client.stats.counts and ("/busy", "200") in client.stats.counts
        assert client.stats.counts[("/slow", "timeout")] == 1
    finally:
        await client.aclose()
        await runner.cleanup()


async def test_unreachable_is_retried_then_classified() -> None:
    client = JfrogClient(make_target("http://127.0.0.1:9", retries=1))
    try:
        result = await client.get("/artifactory/api/system/ping", expect="text")
        assert result.outcome is Outcome.UNREACHABLE
        assert result.reason.startswith("cannot reach the JPD")
        assert client.stats.counts[("/artifactory/api/system/ping", "unreachable")] == 2
    finally:
        await client.aclose()
