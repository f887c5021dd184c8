"""The exporter's HTTP server over real loopback connections: keep-alive, pipelining, methods, limits, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import pytest

from exporter.httpserver import MAX_BODY, PIPELINED, App, HttpServer, Request, Response
from exporter.server import build_app
from exporter.snapshot import SnapshotStore


@contextlib.asynccontextmanager
async def serving(idle_timeout: float = 30.0) -> AsyncIterator[int]:
    store = SnapshotStore()
    store.render()
    server = HttpServer(build_app(store), idle_timeout=idle_timeout)
    await server.start("127.0.0.1", 0)
    try:
        yield server.port
    finally:
        await server.stop()


async def exchange(port: int, data: bytes, half_close: bool = False) -> bytes:
    """What the server sends for ``data`` (then the end of what the client sends, if ``half_close``) until it
    closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if half_close:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def responses(data: bytes, head_requests: set[int] = frozenset()) -> list[tuple[int, dict[str, str], bytes]]:
    """Status, headers (lower-case names) and body of each response in ``data``; the ``head_requests``-th
    ones (from 0) answer HEAD: no body whatever their Content-Length."""
    out = []
    while data:
        head, _, data = data.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        length = 0 if len(out) in head_requests else int(headers["content-length"])
        out.append((int(status_line.split(" ")[1]), headers, data[:length]))
        data = data[length:]
    return out


async def test_pipelined_requests_on_one_connection_are_answered_in_order() -> None:
    keeping = (b"GET /-/healthy HTTP/1.1\r\nHost: e\r\n\r\n"
               b"HEAD /metrics HTTP/1.1\r\nHost: e\r\n\r\n"
               b"POST /metrics HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\n\r\nx=1"
               b"GET /nowhere HTTP/1.1\r\nHost: e\r\n\r\n")
    requests = keeping + b"GET /metrics?x=1 HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n"
    async with serving() as port:
        answers = responses(await exchange(port, requests), head_requests={1})
        # HTTP/1.0: closed after the answer; a target in absolute form is routed by its path
        old = responses(await exchange(port, b"GET http://e:9743/-/healthy HTTP/1.0\r\n\r\n"))
        # A client that closes its side after its requests still gets their answers, then the connection closes.
        done = responses(await exchange(port, keeping, half_close=True), head_requests={1})
    assert [status for status, _, _ in answers] == [200, 200, 405, 404, 200]
    (_, _, healthy), (_, head, head_body), (_, not_allowed, _), _, (_, last, metrics) = answers
    assert healthy == b"OK\n"
    assert head_body == b"" and int(head["content-length"]) == len(metrics) > 0  # HEAD: GET's headers, no body
    assert head["vary"] == "Accept, Accept-Encoding"
    assert not_allowed["allow"] == "GET, HEAD"
    assert b"jfrog_exporter_" in metrics and last["connection"] == "close"  # then closed: exchange returned
    assert [(status, body) for status, _, body in old] == [(200, b"OK\n")]
    assert [(status, body) for status, _, body in done] == [(status, body) for status, _, body in answers[:4]]


async def test_a_flood_of_pipelined_requests_is_answered_whole() -> None:
    # Sent while the first is answered: past what the server keeps meanwhile, it stops reading until it is done.
    async def slow(_: Request) -> Response:
        await asyncio.sleep(0.2)
        return Response.text("slow\n")

    async def fast(_: Request) -> Response:
        return Response.text("fast\n")

    app = App()
    app.add("GET", "/slow", slow)
    app.add("GET", "/fast", fast)
    server = HttpServer(app)
    await server.start("127.0.0.1", 0)
    count = 5000
    flood = b"".join(b"GET /fast?%d HTTP/1.1\r\nHost: e\r\n\r\n" % i for i in range(count))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: e\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.write(flood + b"GET /fast HTTP/1.1\r\nHost: e\r\nConnection: close\r\n\r\n")
        answers = responses(await asyncio.wait_for(reader.read(), 5))
        writer.close()
    finally:
        await server.stop()
    assert len(flood) > 2 * PIPELINED
    assert [(status, body) for status, _, body in answers] == [(200, b"slow\n")] + [(200, b"fast\n")] * (count + 1)


async def test_an_idle_connection_is_closed_after_the_idle_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(idle_timeout=0.3) as port:
        started = time.monotonic()
        kept = await exchange(port, b"GET /-/healthy HTTP/1.1\r\nHost: e\r\n\r\n")  # kept alive, then idle
        elapsed = time.monotonic() - started
        slow = await exchange(port, b"GET /-/healthy HTTP/1.1\r\nHo")  # a head that never ends
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        stopping = time.monotonic()
    writer.close()
    assert [status for status, _, _ in responses(kept)] == [200]
    assert 0.3 <= elapsed < 2.0, elapsed
    assert slow == b""  # closed without an answer
    assert time.monotonic() - stopping < 1.0  # stopping does not wait for an idle connection
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text  # closing it is no error


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /metrics\x00 HTTP/1.1\r\nHost: e\r\n\r\n", 400),
    (b"GET /metrics HTTP/1.1\r\nHost: e\r\nX-Padding: " + b"p" * 20_000 + b"\r\n\r\n", 431),
    (b"POST /-/healthy HTTP/1.1\r\nHost: e\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1), 413),
    (b"POST /-/healthy HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"%x\r\n%s\r\n" % (MAX_BODY + 1, b"b" * (MAX_BODY + 1)), 413),
])
async def test_a_request_beyond_the_limits_is_refused_and_the_connection_closed(request_bytes: bytes,
                                                                                 status: int) -> None:
    async with serving() as port:
        # Followed by a request that would be answered on a connection kept open.
        answers = responses(await exchange(port, request_bytes + b"GET /-/healthy HTTP/1.1\r\nHost: e\r\n\r\n"))
    assert [code for code, _, _ in answers] == [status]
    assert answers[0][1]["connection"] == "close"


async def test_stopping_lets_a_request_in_progress_finish_and_drops_one_past_the_timeout(
        caplog: pytest.LogCaptureFixture) -> None:
    async def slow(_: Request) -> Response:
        await asyncio.sleep(0.3)
        return Response.text("done\n")

    async def fast(_: Request) -> Response:
        return Response.text("fast\n")

    cancelled = []

    async def stuck(request: Request) -> Response:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(request.remote)
            raise
        raise AssertionError("never answered")

    app = App()
    app.add("GET", "/slow", slow)
    app.add("GET", "/stuck", stuck)
    app.add("GET", "/fast", fast)
    server = HttpServer(app, shutdown_timeout=1.0)
    await server.start("127.0.0.1", 0)
    answers = [asyncio.create_task(exchange(server.port, b"".join(f"GET /{path} HTTP/1.1\r\nHost: e\r\n\r\n".encode()
                                                                 for path in paths)))
               for paths in (["slow"], ["stuck"], ["fast", "stuck"])]  # the last one pipelined
    await asyncio.sleep(0.1)  # the requests are being answered
    started = time.monotonic()
    await server.stop()
    elapsed = time.monotonic() - started
    slow_answer, stuck_answer, pipelined_answer = await asyncio.gather(*answers)
    [(status, headers, body)] = responses(slow_answer)
    assert (status, body, headers["connection"]) == (200, b"done\n", "close")
    assert stuck_answer == b""
    assert [(status, body) for status, _, body in responses(pipelined_answer)] == [(200, b"fast\n")]
    assert cancelled == ["127.0.0.1", "127.0.0.1"]  # both stuck handlers, not left running
    assert 1.0 <= elapsed < 2.0, elapsed
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
