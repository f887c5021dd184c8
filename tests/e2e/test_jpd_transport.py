"""The connections to a JPD (exporter/transport.py), against a JPD scripted byte by byte on loopback: bodies in
every framing, connections reused only when the last exchange ended cleanly, a request sent again only when it
may be, every fault an httpx error the client already classifies, and proxies from the environment kept."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from exporter.client import JfrogClient
from exporter.outcomes import Outcome
from exporter.simulator.core import DEFAULT_TOKEN
from exporter.transport import PoolTransport
from tests.conftest import make_target
from tests.support import REPO, closed_port, simulator


def ok(body: bytes = b"OK", *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(body)
    return head + b"".join(line + b"\r\n" for line in extra) + b"\r\n" + body


@dataclass
class ScriptedJpd:
    """Answers the n-th request on the c-th connection with ``answer(c, n, head)``: bytes to send, then the
    connection is closed if they end the script with ``CLOSE``; None closes it without a word."""

    answer: Callable[[int, int, bytes], bytes | None]
    port: int = 0
    heads: list[tuple[int, bytes]] = field(default_factory=list)
    connections: int = 0
    closed_by_client: int = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = self.connections
        self.connections += 1
        n = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    self.closed_by_client += 1
                    return
                self.heads.append((connection, head))
                reply = self.answer(connection, n, head)
                n += 1
                if reply is None:
                    return
                close = reply.endswith(CLOSE)
                writer.write(reply.removesuffix(CLOSE))
                await writer.drain()
                if close:
                    return
        finally:
            writer.close()


CLOSE = b"<close>"


@asynccontextmanager
async def scripted(answer: Callable[[int, int, bytes], bytes | None]) -> AsyncIterator[ScriptedJpd]:
    jpd = ScriptedJpd(answer)
    server = await asyncio.start_server(jpd.serve, "127.0.0.1", 0)
    jpd.port = server.sockets[0].getsockname()[1]
    try:
        yield jpd
    finally:
        server.close()


@asynccontextmanager
async def pool(jpd: ScriptedJpd, *, connections: int = 4, keep: float = 45.0,
               seconds: float = 5.0) -> AsyncIterator[httpx.AsyncClient]:
    transport = PoolTransport(ssl_context=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), max_connections=connections,
                              keepalive_expiry=keep)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{jpd.port}", transport=transport,
                                 timeout=seconds) as client:
        yield client


async def test_bodies_in_every_framing_are_read_whole_and_their_connections_kept_only_when_they_can_be() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    until_close = b"HTTP/1.0 200 OK\r\n\r\nuntil the end" + CLOSE
    said_close = ok(b"bye", b"Connection: close")
    script = {(0, 0): ok(b"length"), (0, 1): chunked, (0, 2): until_close, (1, 0): said_close, (2, 0): ok()}
    async with scripted(lambda c, n, _: script[(c, n)]) as jpd, pool(jpd) as client:
        bodies = [(await client.get("/")).content for _ in range(5)]
    assert bodies == [b"length", b"hello world", b"until the end", b"bye", b"OK"]
    assert jpd.connections == 3, "a body that ends with the connection, or a Connection: close, ends its use"


async def test_a_body_left_unread_closes_its_connection_and_frees_its_place() -> None:
    big = ok(b"x" * 1_000_000)
    async with scripted(lambda c, n, _: big) as jpd, pool(jpd, connections=1) as client:
        async with client.stream("GET", "/") as response:
            async for _ in response.aiter_raw():
                break  # a body refused as too large
        assert (await client.get("/")).content == b"x" * 1_000_000, "the only place in the pool is free again"
    assert jpd.connections == 2, "the half-read connection is not used again"


async def test_a_connection_idle_past_the_expiry_is_closed_not_used() -> None:
    async with scripted(lambda c, n, _: ok()) as jpd, pool(jpd, keep=0.2) as client:
        await client.get("/")
        await asyncio.sleep(0.4)
        await client.get("/")
        await asyncio.sleep(0.1)
        assert jpd.connections == 2 and jpd.closed_by_client == 1


@pytest.mark.parametrize(("method", "sent_again"), [("GET", True), ("POST", False)])
async def test_a_request_the_jpd_dropped_on_a_reused_connection_is_sent_again_only_if_idempotent(
        method: str, sent_again: bool) -> None:
    # The JPD took the second request on the kept connection and closed it without an answer (its idle timeout
    # firing as the request arrived).
    def answer(connection: int, n: int, _: bytes) -> bytes | None:
        return None if (connection, n) == (0, 1) else ok()

    async with scripted(answer) as jpd, pool(jpd) as client:
        await client.get("/")
        if sent_again:
            assert (await client.request(method, "/")).content == b"OK"
        else:
            with pytest.raises(httpx.RemoteProtocolError, match="closed the connection before answering"):
                await client.request(method, "/", content=b"{}")
    assert len(jpd.heads) == (3 if sent_again else 2)


async def test_faults_are_httpx_errors() -> None:
    async with scripted(lambda c, n, _: b"HELLO THERE\r\n\r\n") as jpd, pool(jpd) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
    huge_head = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 200_000 + b"\r\nContent-Length: 0\r\n\r\n"
    async with scripted(lambda c, n, _: huge_head) as jpd, pool(jpd) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
    async with scripted(lambda c, n, _: ok(b"cut short")[:-4] + CLOSE) as jpd, pool(jpd) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
    async with scripted(lambda c, n, _: b"") as jpd, pool(jpd, seconds=0.3) as client:  # answers nothing
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/")
    async with scripted(lambda c, n, _: ok(b"0123456789")[:-8]) as jpd, pool(jpd, connections=1) as client:
        async with client.stream("GET", "/"):  # a body that never ends holds the only place
            with pytest.raises(httpx.PoolTimeout):
                await client.get("/", timeout=httpx.Timeout(5, pool=0.2))
    with closed_port() as port:
        async with pool(ScriptedJpd(lambda c, n, _: None, port=port)) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("/")


async def test_a_refused_connection_is_unreachable_for_the_client() -> None:
    with closed_port() as port:
        client = JfrogClient(make_target(f"http://127.0.0.1:{port}", retries=0))
        try:
            result = await client.ping()
        finally:
            await client.aclose()
    assert result.outcome is Outcome.UNREACHABLE and result.reason.startswith("cannot reach the JPD: ")


async def test_a_proxy_from_the_environment_still_carries_the_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    async with scripted(lambda c, n, _: ok()) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        client = JfrogClient(make_target("http://jpd.invalid:8082", retries=0))
        try:
            result = await client.ping()
        finally:
            await client.aclose()
    assert result.outcome is Outcome.SUCCESS
    assert proxy.heads[0][1].startswith(b"GET http://jpd.invalid:8082/artifactory/api/system/ping HTTP/1.1")


LOADED = """
import sys
from exporter import cli
code = cli.main(["once", "--url", "{url}", "--collector", "health", "--collector", "storage"])
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"httpcore", "anyio"}}), code)
"""


def test_collecting_loads_neither_httpcore_nor_anyio(tmp_path: Path) -> None:
    """httpx's own transport would load them: 2 MB of an idle exporter."""
    with simulator(tmp_path, "healthy") as sim:
        env = {"PATH": "/usr/bin:/bin", "JFROG_ACCESS_TOKEN": DEFAULT_TOKEN}
        result = subprocess.run([sys.executable, "-c", LOADED.format(url=sim.url)], cwd=REPO, capture_output=True,
                                text=True, timeout=60, env=env)
    assert result.stdout.strip().splitlines()[-1] == "[] 0", result.stdout + result.stderr
