"""Clients of /metrics that misbehave: they cost the exporter little and do not slow the others down."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import h11
import httpx
import pytest

from exporter.exposition import RenderedFamily
from exporter.httpserver import HttpServer, MalformedRequests, excerpt
from exporter.server import build_app
from exporter.snapshot import Payload, SnapshotStore
from tests.support import exporter, parse_exposition, simulator, value

#: a request without Accept-Encoding: the plain text, several MB at this scale
PLAIN_GET = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n"


def rss_bytes(pid: int) -> int:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    assert match, f"no VmRSS for {pid}"
    return int(match.group(1)) * 1024


@contextlib.contextmanager
def stalled_scrapers(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that ask for /metrics and never read the answer."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
            sock.connect(("127.0.0.1", port))
            sock.sendall(PLAIN_GET)
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_scrapers_that_never_read_hold_a_chunk_each_not_the_payload(tmp_path: Path) -> None:
    count = 30
    with simulator(tmp_path, "large", "--scale", "10000") as sim, \
            exporter(tmp_path, "--url", sim.url, "--collector", "storage") as exp:
        size = len(httpx.get(exp.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=10).content)
        assert size > 4_000_000
        pid = exp.proc.pid
        before = rss_bytes(pid)
        with stalled_scrapers(int(exp.url.rsplit(":", 1)[1]), count):
            time.sleep(1.5)  # each request is answered up to what the client's socket holds
            growth = rss_bytes(pid) - before
            started = time.monotonic()
            normal = httpx.get(exp.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=10)
            elapsed = time.monotonic() - started
        assert normal.status_code == 200 and len(normal.content) == size
        assert elapsed < 2.0
    # A copy of the payload per stalled client would be count x size (150 MB here).
    assert growth < count * size / 5, f"RSS grew {growth / 1e6:.1f} MB for {count} clients of {size / 1e6:.1f} MB"


async def test_uncompressed_scrapes_keep_no_copy_of_the_payload() -> None:
    store = large_store(8_000_000)
    async with serving(store, send_deadline=10) as port, httpx.AsyncClient() as client:
        tracemalloc.start()
        try:
            sizes = [len((await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10,
                                           headers={"Accept": accept, "Accept-Encoding": "identity"})).content)
                     for accept in ("text/plain", "application/openmetrics-text", "text/plain")]
            gc.collect()  # the client's responses, held in reference cycles
            kept = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    assert min(sizes) > 8_000_000
    # A joined copy of the text and one of the OpenMetrics would keep 16 MB for as long as the payload is served.
    assert kept < 2_000_000, f"{kept / 1e6:.1f} MB kept after serving {sizes} bytes"


@contextlib.asynccontextmanager
async def serving(store: SnapshotStore, send_deadline: float) -> AsyncIterator[int]:
    server = HttpServer(build_app(store, send_deadline=send_deadline))
    await server.start("127.0.0.1", 0)
    try:
        yield server.port
    finally:
        await server.stop()


def large_store(size: int) -> SnapshotStore:
    """A store whose plain text is ``size`` bytes: more than the loopback socket buffers hold."""
    store = SnapshotStore()
    line = b"jfrog_test_padding 1\n"
    lines = size // len(line)
    family = RenderedFamily("jfrog_test_padding", "gauge", "Padding.", line * lines, lines)
    store.store_payload(Payload(generation=0, groups=[[family]], text_gzip=b"", rendered_at=time.time(),
                                render_seconds=0.0, series=lines))
    return store


def aborted(store: SnapshotStore) -> float | None:
    return value(parse_exposition(store.render().text.decode()), "jfrog_exporter_scrapes_aborted_total")


async def test_a_client_that_stalls_past_the_deadline_is_dropped_and_counted() -> None:
    store = large_store(24_000_000)
    size = len(store.payload.text)  # type: ignore[union-attr]
    async with serving(store, send_deadline=0.5) as port:
        loop = asyncio.get_running_loop()
        with stalled_scrapers(port, 1) as (sock,):
            await asyncio.sleep(1.5)
            sock.setblocking(False)
            received = 0
            with contextlib.suppress(ConnectionError):
                while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5):
                    received += len(chunk)
        assert received < size  # the connection was closed before the end of the response
        async with httpx.AsyncClient() as client:
            normal = await client.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "identity"},
                                      timeout=10)
        assert len(normal.content) == size  # a client that reads gets everything
        assert aborted(store) == 1


def test_malformed_requests_cost_one_short_line_each_minute(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, exporter(tmp_path, "--url", sim.url) as exp:
        port = int(exp.url.rsplit(":", 1)[1])
        for i in range(100):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                url = b"/" + b"a" * 9000 if i % 2 else b"/metrics\x00\x1b[31m"
                sock.sendall(b"GET " + url + b" HTTP/1.1\r\nHost: exporter\r\n\r\n")
                assert sock.recv(100).split(b" ")[1] == b"400"
        assert httpx.get(exp.url + "/metrics", timeout=10).status_code == 200
        time.sleep(0.3)
        output = exp.output()
    lines = [line for line in output.splitlines() if "malformed" in line or "Traceback" in line]
    assert len(lines) == 1, output
    assert "WARNING rejected a malformed HTTP request (400) from 127.0.0.1" in lines[0]
    assert len(lines[0]) < 250 and "aaaaaaaaaa" * 10 not in lines[0]
    assert "Traceback" not in output


def test_the_malformed_request_line_is_sanitised_and_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    report = MalformedRequests(interval=60, clock=lambda: now[0])
    error = h11.RemoteProtocolError("illegal request line: GET /\x1b[2J\u202e" + "x" * 500, 400)
    with caplog.at_level(logging.WARNING, logger="exporter.http"):
        for second in (0, 1, 2, 59, 61):
            now[0] = second
            report(error, "10.0.0.7")
    records = [r for r in caplog.records if r.name == "exporter.http"]
    messages = [r.getMessage() for r in records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("rejected a malformed HTTP request (400) from 10.0.0.7: RemoteProtocolError: ")
    assert "\x1b" not in messages[0] and "\u202e" not in messages[0] and len(messages[0]) < 200
    assert messages[1].endswith("(3 more since the last such line)")
    assert records[0].exc_info is None and records[0].levelno == logging.WARNING


@pytest.mark.parametrize(("text", "expected"), [
    ("line one\n  line two", "line one line two"),
    ("b'\\x16\\x03'", "b'\\x16\\x03'"),
    ("\x00\x7f", "\\x00\\x7f"),
    ("y" * 100, "y" * 77 + "..."),
])
def test_excerpt(text: str, expected: str) -> None:
    assert excerpt(text) == expected
