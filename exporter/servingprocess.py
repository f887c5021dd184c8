"""/metrics from a process of its own, so that a scrape never waits for the interpreter that collects.

One process watching hundreds of JPDs keeps its interpreter busy decoding
answers and rendering; a scrape served by a thread of the same process waits
its turn at every step (300 targets: p99 5× a static server of the same
bytes). ``serve --web.serving-process own`` forks, before any thread starts,
a serving process that shares the loaded modules and holds little of its own:
its HTTP server and the last payload, compressed in both formats.

- The serving process answers /metrics, /-/healthy and /-/ready itself, with
  the web configuration's TLS and basic auth, and passes the landing page and
  POST /-/reload to the collecting process over a Unix socket.
- The collecting process sends each payload it renders, with whether it is
  ready, over a socket pair (:class:`PayloadLink`, a thread of its own: the
  OpenMetrics gzip and the copy into the socket happen there). The serving
  process sends back what it counts: scrapes dropped for stalling.
- When one of them ends, so does the other: the collecting process with exit
  code 1 when the serving process died, the serving process when the
  collecting one closed its end (stopped or killed). Signals are the
  collecting process's to act on: the serving process ignores them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import struct
import tempfile
import threading
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from exporter.httpserver import SEND_DEADLINE, App, HttpServer, Middleware, Request, Response
from exporter.server import ServingStats, metrics_headers, wants_gzip, wants_openmetrics
from exporter.snapshot import Payload

log = logging.getLogger("exporter.serving")

#: ``auto`` gives the serving process its own from this many targets on: below, collecting leaves scrapes room
AUTO_TARGETS = 20
MODES = ("auto", "own", "shared")

# Frames: a kind byte and a length, then the body.
_FRAME = struct.Struct("!BQ")
_STARTED, _FAILED, _PAYLOAD, _STALLED = 1, 2, 3, 4
#: a payload's body starts with: ready, the sizes of the text and OpenMetrics expositions, of the text gzip
_PAYLOAD_HEAD = struct.Struct("!?QQQ")
#: bytes inflated at a time for a client that does not take gzip
_INFLATE_STEP = 64 * 1024
#: the landing page and a reload, passed to the collecting process, get this long
FORWARD_TIMEOUT = 60.0
#: how long a scrape made before the first payload arrived waits for it
FIRST_PAYLOAD_WAIT = 10.0


def wanted(mode: str, targets: int) -> bool:
    """Whether ``mode`` gives the serving process its own for a configuration of ``targets`` targets."""
    return mode == "own" or (mode == "auto" and targets >= AUTO_TARGETS)


def _frame(kind: int, body: bytes = b"") -> bytes:
    return _FRAME.pack(kind, len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
    """The next frame; None at the end of the stream."""
    try:
        kind, length = _FRAME.unpack(await reader.readexactly(_FRAME.size))
        return kind, await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None


# -- the collecting process's side ---------------------------------------------


@dataclass
class ServingChild:
    """The serving process as the collecting process knows it: its pid and its ends of the sockets."""

    pid: int
    to_child: socket.socket
    from_child: socket.socket
    inner: str
    #: the port it listens on, once it said so
    port: int = 0
    link: PayloadLink | None = None


def fork_serving_process(host: str, port: int, web_config_file: Path | None, lifecycle: bool) -> ServingChild:
    """Fork the serving process (before any thread is started: a fork copies only the calling thread)."""
    to_child, child_in = socket.socketpair()
    child_out, from_child = socket.socketpair()
    inner = str(Path(tempfile.mkdtemp(prefix="jfrog-exporter-")) / "inner.sock")
    pid = os.fork()
    if pid == 0:  # the serving process
        code = 1
        try:
            to_child.close()
            from_child.close()
            # What the collecting process loaded is never collected here: the collector does not touch it (and
            # so does not copy the pages it shares with its parent).
            gc.freeze()
            code = asyncio.run(_serve(child_in, child_out, inner, host, port, web_config_file, lifecycle))
        except BaseException:
            log.exception("the serving process failed")
        finally:
            logging.shutdown()
            os._exit(code)
    child_in.close()
    child_out.close()
    return ServingChild(pid, to_child, from_child, inner)


class PayloadLink:
    """Sends the payloads the collecting process renders to the serving process, the newest first.

    On a thread of its own: compressing the OpenMetrics format and writing
    megabytes into the socket must not hold up the collection loop. A payload
    rendered while the previous one is still being sent replaces it.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._pending: tuple[Payload, bool] | None = None
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="payload-link", daemon=True)
        self._thread.start()

    def offer(self, payload: Payload, ready: bool) -> None:
        with self._wake:
            self._pending = (payload, ready)
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._stopped)
                if self._stopped:
                    return
                assert self._pending is not None
                (payload, ready), self._pending = self._pending, None
            try:
                self._sock.sendall(_payload_frame(payload, ready))
            except OSError:
                return  # the serving process is gone: the collecting process notices it and stops

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)
        self._sock.close()


def _payload_frame(payload: Payload, ready: bool) -> bytes:
    text_gzip, openmetrics_gzip = payload.gzipped(False), payload.gzipped(True)
    sizes = [sum(len(chunk) for chunk in payload.chunks(openmetrics)) for openmetrics in (False, True)]
    head = _PAYLOAD_HEAD.pack(ready, sizes[0], sizes[1], len(text_gzip))
    return _FRAME.pack(_PAYLOAD, len(head) + len(text_gzip) + len(openmetrics_gzip)) + head + text_gzip + \
        openmetrics_gzip


async def watch_serving_process(child: ServingChild, stats: ServingStats) -> tuple[int, str]:
    """Until the serving process ends: counts what it reports; returns how it ended (its pid's status)."""
    reader, writer = await asyncio.open_unix_connection(sock=child.from_child)
    try:
        while (frame := await _read_frame(reader)) is not None:
            if frame[0] == _STALLED:
                stats.scrapes_aborted += 1
    finally:
        writer.close()
    return await asyncio.to_thread(_reap, child.pid)


async def serving_process_started(child: ServingChild) -> tuple[int | None, str]:
    """The port the serving process listens on, or None and why it could not."""
    # Read on a blocking duplicate: the reader of the whole stream is made later, by watch_serving_process.
    frame = await asyncio.to_thread(_read_first_frame, child.from_child)
    if frame is None:
        return None, "the serving process ended before it listened"
    kind, body = frame
    if kind == _STARTED:
        return int(body), ""
    return None, body.decode("utf-8", "replace")


def _read_first_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    def exactly(size: int) -> bytes | None:
        data = b""
        while len(data) < size:
            more = sock.recv(size - len(data))
            if not more:
                return None
            data += more
        return data

    head = exactly(_FRAME.size)
    if head is None:
        return None
    kind, length = _FRAME.unpack(head)
    body = exactly(length)
    return None if body is None else (kind, body)


def _reap(pid: int) -> tuple[int, str]:
    """Wait for ``pid`` to end; its exit code (or 128 + signal) and how it ended, in words."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return 128 + sig, f"killed by {signal.Signals(sig).name}"
    code = os.waitstatus_to_exitcode(status)
    return code, f"exit code {code}"


def stop_serving_process(child: ServingChild) -> None:
    """Close the payload stream: the serving process stops (letting scrapes in progress finish), and
    :func:`watch_serving_process` returns once it did."""
    if child.link is not None:
        child.link.stop()
    else:
        child.to_child.close()
    with contextlib.suppress(OSError):
        Path(child.inner).unlink()
        Path(child.inner).parent.rmdir()


# -- the serving process's side -------------------------------------------------


@dataclass
class _Served:
    """The payload the serving process answers with, replaced whole by each frame."""

    text_gzip: bytes
    openmetrics_gzip: bytes
    text_size: int
    openmetrics_size: int


class _State:
    def __init__(self) -> None:
        self.served: _Served | None = None
        self.ready = False
        #: set by the first payload: it listens before the collecting process rendered one
        self.first = asyncio.Event()


def _inflated(data: bytes) -> Iterator[bytes]:
    """``data`` (gzip) uncompressed a piece at a time: a client without gzip costs no uncompressed copy."""
    inflate = zlib.decompressobj(wbits=31)
    view = memoryview(data)
    for start in range(0, len(view), _INFLATE_STEP):
        if piece := inflate.decompress(view[start:start + _INFLATE_STEP]):
            yield piece
    if tail := inflate.flush():
        yield tail


def _serving_app(state: _State, inner: str, lifecycle: bool, stalled: Callable[[], None],
                 middlewares: list[Middleware], send_deadline: float) -> App:
    app = App(middlewares, send_deadline)

    async def first_payload() -> None:
        """Right after start, a request waits for the first rendering (its server listens before that)."""
        if not state.first.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.first.wait(), FIRST_PAYLOAD_WAIT)

    async def metrics(request: Request) -> Response:
        await first_payload()
        served = state.served
        if served is None:
            return Response.text("no data rendered yet\n", 503)
        openmetrics = wants_openmetrics(request.header("Accept"))
        gzipped = wants_gzip(request.header("Accept-Encoding"))
        headers = metrics_headers(openmetrics, gzipped)
        data = served.openmetrics_gzip if openmetrics else served.text_gzip
        if gzipped:
            return Response(200, [data], headers, on_stall=stalled)
        size = served.openmetrics_size if openmetrics else served.text_size
        return Response(200, _inflated(data), headers, on_stall=stalled, length=size)

    async def healthy(_: Request) -> Response:
        return Response.text("OK\n")

    async def ready(_: Request) -> Response:
        if state.ready:
            return Response.text("OK\n")
        return Response.text("first collection round not finished\n", 503)

    async def forward(request: Request) -> Response:
        await first_payload()  # sent once the collecting process listens on ``inner``
        return await _forward(inner, request)

    app.add("GET", "/metrics", metrics)
    app.add("GET", "/-/healthy", healthy)
    app.add("GET", "/-/ready", ready)
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
    # Framing and the date are the serving process's own.
    headers = {name: value for name, _, value in (line.partition(": ") for line in lines[1:])
               if name.lower() not in ("content-length", "connection", "date")}
    return Response(status, [body], headers)


async def _serve(channel_in: socket.socket, channel_out: socket.socket, inner: str, host: str, port: int,
                 web_config_file: Path | None, lifecycle: bool) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    # The collecting process decides: a signal sent to both (Ctrl-C, a service manager stopping the group)
    # must not end this one first, which the collecting process would take for a crash. It stops when the
    # collecting process closes the payload stream, or is gone.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, lambda: None)
    # Both ends kept: a stream writer that is collected closes its transport.
    reader, _in = await asyncio.open_unix_connection(sock=channel_in)
    _out, out = await asyncio.open_unix_connection(sock=channel_out)
    state = _State()

    def stalled() -> None:
        out.write(_frame(_STALLED))

    ssl_context = None
    middlewares: list[Middleware] = []
    cleanup: list[Callable[[], Awaitable[None]]] = []
    if web_config_file is not None:
        from exporter.webconfig import load_web_config

        web_config = load_web_config(web_config_file)
        ssl_context = web_config.ssl_context()
        basic_auth = web_config.basic_auth()
        if basic_auth is not None:
            middlewares.append(basic_auth.middleware)
            cleanup.append(basic_auth.close)
    app = _serving_app(state, inner, lifecycle, stalled, middlewares, SEND_DEADLINE)
    app.on_cleanup.extend(cleanup)
    server = HttpServer(app)
    try:
        await server.start(host, port, ssl_context)
    except OSError as exc:
        out.write(_frame(_FAILED, f"cannot listen on {host}:{port}: {exc.strerror or exc}".encode()))
        await out.drain()
        return 2
    out.write(_frame(_STARTED, str(server.port).encode()))

    async def receive() -> None:
        while (frame := await _read_frame(reader)) is not None:
            kind, body = frame
            if kind == _PAYLOAD:
                ready, text_size, openmetrics_size, text_length = _PAYLOAD_HEAD.unpack_from(body)
                start = _PAYLOAD_HEAD.size
                state.served = _Served(body[start:start + text_length], body[start + text_length:], text_size,
                                       openmetrics_size)
                state.ready = ready
                state.first.set()
                del body, frame  # the frame's copy goes now, not with the next one
        stop.set()  # the collecting process closed its end: it stopped, or died

    receiving = asyncio.create_task(receive())
    await stop.wait()
    receiving.cancel()
    await server.stop()
    return 0
