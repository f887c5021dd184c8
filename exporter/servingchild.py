"""The serving process of ``serve --web.serving-process own`` (:mod:`exporter.servingprocess` starts it).

A fresh interpreter that loads the HTTP server and little else (no
pydantic, httpx or scheduler; the web configuration's modules only when one
is given): what it holds is its HTTP server and the last payload it was
sent, gzip in both formats, in the buffer it was read into. It answers
/metrics, /-/healthy and /-/ready, applies TLS and basic auth, and passes /
and POST /-/reload to the collecting process's own server on a Unix socket.

Signals are the collecting process's to act on (a signal sent to both must
not end this one first, which would read as a crash): it stops when the
collecting process closes the payload stream, or is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import struct
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.endpoints import add_health_routes, negotiate, no_payload
from exporter.httpserver import SEND_DEADLINE, App, HttpServer, Middleware, Request, Response
from exporter.logs import setup_logging

log = logging.getLogger("exporter.serving")

# Frames between the two processes: a kind byte and a length, then the body.
FRAME = struct.Struct("!BQ")
STARTED, FAILED, PAYLOAD, STALLED = 1, 2, 3, 4
#: a payload's body starts with: ready, the sizes of the text and OpenMetrics expositions, of the text gzip
PAYLOAD_HEAD = struct.Struct("!?QQQ")
#: bytes inflated at a time for a client that does not take gzip
INFLATE_STEP = 64 * 1024
#: the landing page and a reload, passed to the collecting process, get this long
FORWARD_TIMEOUT = 60.0
#: how long a request made before the first payload arrived waits for it
FIRST_PAYLOAD_WAIT = 10.0


def frame(kind: int, body: bytes = b"") -> bytes:
    return FRAME.pack(kind, len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame; None at the end of the stream."""
    try:
        kind, length = FRAME.unpack(await reader.readexactly(FRAME.size))
        return kind, await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


async def _receive(sock: socket.socket, size: int) -> memoryview | None:
    """``size`` bytes read straight into one buffer (a payload is megabytes: no stream buffer, no copy)."""
    loop = asyncio.get_running_loop()
    view = memoryview(bytearray(size))
    got = 0
    while got < size:
        count = await loop.sock_recv_into(sock, view[got:])
        if not count:
            return None
        got += count
    return view


@dataclass(frozen=True)
class Served:
    """The payload answered with: views into the buffer its frame was read into, replaced whole."""

    text_gzip: memoryview
    openmetrics_gzip: memoryview
    text_size: int
    openmetrics_size: int


class State:
    def __init__(self) -> None:
        self.served: Served | None = None
        self.ready = False
        #: set by the first payload: the server listens before the collecting process rendered one
        self.first = asyncio.Event()

    def take(self, body: memoryview) -> None:
        ready, text_size, openmetrics_size, text_length = PAYLOAD_HEAD.unpack_from(body)
        start = PAYLOAD_HEAD.size
        self.served = Served(body[start:start + text_length], body[start + text_length:], text_size,
                             openmetrics_size)
        self.ready = ready
        self.first.set()


def inflated(data: memoryview) -> Iterator[bytes]:
    """``data`` (gzip) uncompressed a piece at a time: a client without gzip costs no uncompressed copy."""
    inflate = zlib.decompressobj(wbits=31)
    for start in range(0, len(data), INFLATE_STEP):
        if piece := inflate.decompress(data[start:start + INFLATE_STEP]):
            yield piece
    if tail := inflate.flush():
        yield tail


def serving_app(state: State, inner: str, lifecycle: bool, stalled: Callable[[], None],
                middlewares: Sequence[Middleware] = (), send_deadline: float = SEND_DEADLINE) -> App:
    app = App(middlewares, send_deadline)

    async def first_payload() -> None:
        """Right after start, a request waits for the first rendering."""
        if not state.first.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.first.wait(), FIRST_PAYLOAD_WAIT)

    async def metrics(request: Request) -> Response:
        await first_payload()
        served = state.served
        if served is None:
            return no_payload()
        openmetrics, gzipped, headers = negotiate(request)
        data = served.openmetrics_gzip if openmetrics else served.text_gzip
        if gzipped:
            return Response(200, [data], headers, on_stall=stalled)
        size = served.openmetrics_size if openmetrics else served.text_size
        return Response(200, inflated(data), headers, on_stall=stalled, length=size)

    async def forward(request: Request) -> Response:
        await first_payload()  # sent once the collecting process listens on ``inner``
        return await _forward(inner, request)

    app.add("GET", "/metrics", metrics)
    add_health_routes(app, lambda: state.ready)
    app.add("GET", "/", forward)
    if lifecycle:
        app.add("POST", "/-/reload", forward)
    return app


async def _forward(inner: str, request: Request) -> Response:
    """``request`` answered by the collecting process (its own server, on the Unix socket ``inner``)."""
    try:
        async with asyncio.timeout(FORWARD_TIMEOUT):
            reader, writer = await asyncio.open_unix_connection(inner)
            try:
                writer.write(f"{request.method} {request.path} HTTP/1.1\r\nHost: exporter\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n".encode("ascii"))
                answer = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        log.warning("the collecting process did not answer %s %s: %s", request.method, request.path,
                    exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__)
        return Response.text("the collecting process did not answer\n", 502)
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    # Framing and the date are this server's own.
    headers = {name: value for name, _, value in (line.partition(": ") for line in lines[1:])
               if name.lower() not in ("content-length", "connection", "date")}
    return Response(status, [body], headers)


async def serve(channel_in: socket.socket, channel_out: socket.socket, inner: str, host: str, port: int,
                web_config_file: Path | None = None, lifecycle: bool = False) -> int:
    """Serve until the collecting process closes ``channel_in``; 2 when ``host:port`` cannot be listened on."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)
    channel_in.setblocking(False)
    # The writer's reader is kept: a stream writer that is collected closes its transport.
    _unused, out = await asyncio.open_unix_connection(sock=channel_out)
    state = State()

    def stalled() -> None:
        out.write(frame(STALLED))

    ssl_context = None
    middlewares: list[Middleware] = []
    cleanup: list[Callable[[], Awaitable[None]]] = []
    if web_config_file is not None:
        from exporter.webconfig import load_web_config  # pydantic and bcrypt: only when configured

        try:
            web_config = load_web_config(web_config_file)
            ssl_context = web_config.ssl_context()
        except Exception as exc:  # a ConfigError, whose message names the file and the field
            out.write(frame(FAILED, str(exc).encode()))
            await out.drain()
            return 2
        basic_auth = web_config.basic_auth()
        if basic_auth is not None:
            middlewares.append(basic_auth.middleware)
            cleanup.append(basic_auth.close)
    app = serving_app(state, inner, lifecycle, stalled, middlewares, SEND_DEADLINE)
    app.on_cleanup.extend(cleanup)
    server = HttpServer(app)
    try:
        await server.start(host, port, ssl_context)
    except OSError as exc:
        out.write(frame(FAILED, f"--listen: cannot listen on {host}:{port}: {exc.strerror or exc}".encode()))
        await out.drain()
        return 2
    out.write(frame(STARTED, str(server.port).encode()))
    while (head := await _receive(channel_in, FRAME.size)) is not None:
        kind, length = FRAME.unpack(head)
        body = await _receive(channel_in, length)
        if body is None:
            break
        if kind == PAYLOAD:
            state.take(body)
        del body  # the previous payload's buffer goes as soon as it is no longer answered with
    await server.stop()  # the collecting process closed its end: it stopped, or died
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter.servingchild",
                                     description="The serving process of `serve --web.serving-process own`.")
    parser.add_argument("--channel-in", type=int, required=True, metavar="FD")
    parser.add_argument("--channel-out", type=int, required=True, metavar="FD")
    parser.add_argument("--inner", required=True, metavar="PATH")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--web-config", type=Path)
    parser.add_argument("--lifecycle", action="store_true")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="text")
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    channel_in = socket.socket(fileno=args.channel_in)
    channel_out = socket.socket(fileno=args.channel_out)
    try:
        return asyncio.run(serve(channel_in, channel_out, args.inner, args.host, args.port, args.web_config,
                                 args.lifecycle))
    except Exception:
        log.exception("the serving process failed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
