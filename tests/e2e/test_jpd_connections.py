"""Connections to the JPD outlive the pause between two runs of the health collector (30 s), so its runs do not
open new ones (a TLS handshake each for the JPD)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from exporter.client import KEEPALIVE, PING, JfrogClient
from tests.conftest import make_target


async def _two_pings(server_keeps: float, pause: float) -> tuple[list[tuple[str, int]], JfrogClient]:
    """Two pings ``pause`` apart to a JPD that closes connections idle for ``server_keeps``; the client ports seen."""
    peers: list[tuple[str, int]] = []

    async def ping(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/artifactory/api/system/ping", ping)
    runner = web.AppRunner(app, keepalive_timeout=server_keeps)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = JfrogClient(make_target(f"http://127.0.0.1:{port}", max_concurrency=1, retries=0))
    try:
        assert (await client.ping()).ok
        await asyncio.sleep(pause)
        assert (await client.ping()).ok, "the second call succeeds at once"
    finally:
        await client.aclose()
        await runner.cleanup()
    return peers, client


async def test_a_connection_idle_longer_than_httpx_keeps_one_is_used_again() -> None:
    # httpx's own default keeps an idle connection 5 s
    peers, _ = await _two_pings(server_keeps=KEEPALIVE + 30, pause=6)
    assert len(peers) == 2 and peers[0] == peers[1], "the second call came on the first call's connection"


async def test_a_connection_the_jpd_closed_while_idle_is_replaced_without_an_error() -> None:
    peers, client = await _two_pings(server_keeps=0.5, pause=1.5)
    assert len(peers) == 2 and peers[0] != peers[1], "a new connection"
    assert client.stats.counts == {(PING, "200"): 2}, "no failed attempt on the closed connection"
