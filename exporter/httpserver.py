"""A small HTTP/1.1 server on an asyncio protocol and h11, for the exporter's handful of endpoints.

h11 is loaded anyway (httpx's transport parses responses with it), so
serving with it costs no import of its own. It parses; this module routes,
frames the responses, bounds what a client may make the process hold or wait
for (head size, body size, idle time, time to take a response), and stops
gracefully.

A scrape's head (GET or HEAD, HTTP/1.1, well-formed header lines, no body) is
read without h11 (:func:`simple_request`): h11 takes about 10 times as long
for it, time a busy process spends holding the interpreter. Anything else
goes to h11, which answers it as before.

Connections are served by an :class:`asyncio.Protocol` rather than streams:
heads are parsed as the data comes, responses are written as the socket
takes them, and timeouts are checked by one sweep over all connections. A
scrape then costs one task and the system calls that move its bytes, where
streams cost a coroutine hop per read and per drain and a timer per response.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import re
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

#: Bytes handed to the transport at a time at first. asyncio keeps what the socket does not take at once (a copy
#: before Python 3.12): a client that stops reading holds about one piece, not a copy of the payload.
SEND_CHUNK = 256 * 1024
#: Responses up to this size go out in one write with their head: a copy that costs less than a system call.
JOIN_LIMIT = 64 * 1024
#: Bytes handed at a time once a client took a whole piece: fewer system calls for a client that keeps up, at
#: most this much held for one that stops reading midway.
MAX_PIECE = 1024 * 1024
#: A client that has not taken a whole response by then is dropped (Prometheus gave up long before).
SEND_DEADLINE = 60.0
#: A connection that has not sent a whole request head by then (after connecting or after the previous
#: response) is closed: an idle keep-alive connection, or a client sending its headers a byte at a time.
IDLE_TIMEOUT = 75.0
#: Longest request head (431 beyond).
MAX_HEAD = 16 * 1024
#: Longest request target (the usual request-line limit of HTTP servers): a scrape's URL is a few dozen bytes.
MAX_TARGET = 8190
#: Request bodies are not used by any endpoint: read and dropped up to this, refused (413) beyond.
MAX_BODY = 64 * 1024
#: Requests still being answered when the server stops get this long to finish.
SHUTDOWN_TIMEOUT = 60.0
#: Bytes of pipelined requests kept while one is answered; reading pauses beyond (the rest waits in the socket).
PIPELINED = 64 * 1024
#: At most one line per this many seconds about requests that could not be parsed.
MALFORMED_LOG_INTERVAL = 60.0
#: Characters of a malformed request's error message that reach the log.
EXCERPT_CHARS = 80

log = logging.getLogger("exporter.http")

#: a request line that needs no more checks: the only methods without a body, an origin-form target
_SIMPLE_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[!-~]*) HTTP/1\.1")
#: a header line as RFC 9110 spells it (a token, a colon, a value of visible characters, spaces and tabs); the
#: value's trailing spaces and tabs are stripped apart (a pattern that leaves them out costs a step per character)
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([!-~\x80-\xff \t]*)")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    #: names in lower case; repeated fields joined with ", "
    headers: dict[str, str]
    remote: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Response:
    status: int = 200
    #: the body as chunks sent as they are (slices of them, never joined copies, when they are large)
    chunks: Iterable[bytes | memoryview] = ()
    headers: dict[str, str] = field(default_factory=dict)
    #: called when the client did not take the response within the send deadline and was dropped
    on_stall: Callable[[], None] | None = None
    #: the length of the body when ``chunks`` are made as they are sent (a sequence is measured)
    length: int | None = None

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain",
             headers: dict[str, str] | None = None) -> Response:
        return cls(status, [text.encode()], {"Content-Type": f"{content_type}; charset=utf-8", **(headers or {})})


Handler = Callable[[Request], Awaitable[Response]]
#: wraps every request's handling (the routed handler, or the 404/405 answer), e.g. to check credentials
Middleware = Callable[[Request, Handler], Awaitable[Response]]


class App:
    """Routes by path and method; a GET route answers HEAD too."""

    def __init__(self, middlewares: Sequence[Middleware] = (), send_deadline: float = SEND_DEADLINE) -> None:
        self.middlewares = list(middlewares)
        self.send_deadline = send_deadline
        #: awaited once the server stopped (e.g. to stop threads the middlewares use)
        self.on_cleanup: list[Callable[[], Awaitable[None]]] = []
        self._routes: dict[str, dict[str, Handler]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        methods = self._routes.setdefault(path, {})
        methods[method] = handler
        if method == "GET":
            methods.setdefault("HEAD", handler)

    async def respond(self, request: Request) -> Response:
        handler: Handler = self._route
        for middleware in reversed(self.middlewares):
            handler = _wrapped(middleware, handler)
        try:
            return await handler(request)
        except Exception:
            log.exception("error answering %s %s", request.method, request.path[:200])
            return Response.text("500: Internal Server Error\n", 500)

    async def _route(self, request: Request) -> Response:
        methods = self._routes.get(request.path)
        if methods is None:
            return Response.text("404: Not Found\n", 404)
        handler = methods.get(request.method)
        if handler is None:
            return Response.text("405: Method Not Allowed\n", 405, headers={"Allow": ", ".join(sorted(methods))})
        return await handler(request)


def _wrapped(middleware: Middleware, handler: Handler) -> Handler:
    async def call(request: Request) -> Response:
        return await middleware(request, handler)
    return call


class HttpServer:
    """Serves an :class:`App` on one address; :meth:`stop` lets requests in progress finish."""

    def __init__(self, app: App, idle_timeout: float = IDLE_TIMEOUT,
                 shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> None:
        self.app = app
        self.idle_timeout = idle_timeout
        self.shutdown_timeout = shutdown_timeout
        self.on_malformed: Callable[[h11.RemoteProtocolError, str], None] = MalformedRequests()
        self._server: asyncio.Server | None = None
        #: open connections, and closed ones whose request is still being answered
        self._connections: set[_Connection] = set()
        #: set once the last connection went, while stopping
        self._gone: asyncio.Future[None] | None = None
        self.stopping = False
        self._sweeper: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_server(self._connection, host, port, ssl=ssl_context)
        self._sweeper = asyncio.create_task(self._sweep())

    async def start_unix(self, path: str) -> None:
        """Serve on a Unix socket at ``path`` (for another process of the exporter's own)."""
        self.loop = asyncio.get_running_loop()
        self._server = await self.loop.create_unix_server(self._connection, path)
        self._sweeper = asyncio.create_task(self._sweep())

    def _connection(self) -> _Connection:
        return _Connection(self)

    async def _sweep(self) -> None:
        """Close connections that have waited for a request longer than the idle timeout, drop clients that
        have not taken a response within the send deadline.

        One sweep for all connections instead of timers per request: a timer costs as much as routing one.
        """
        assert self.loop is not None
        interval = min(1.0, self.idle_timeout / 4, self.app.send_deadline / 4)
        while True:
            await asyncio.sleep(interval)
            now = self.loop.time()
            for connection in list(self._connections):
                connection.check(now)

    def forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        if not self._connections and self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, close idle connections, give the ones answering a request time to finish."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            if connection.waiting_since is not None:
                connection.transport.close()  # nothing to answer: it goes on its own
        if self._connections:
            self._gone = gone = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(gone), self.shutdown_timeout)
            except TimeoutError:
                for connection in list(self._connections):
                    connection.kill()
                with contextlib.suppress(TimeoutError):  # a handler that does not end when cancelled is left
                    await asyncio.wait_for(asyncio.shield(gone), 1.0)
        if self._sweeper is not None:
            self._sweeper.cancel()
        for cleanup in self.app.on_cleanup:
            await cleanup()


class _Connection(asyncio.Protocol):
    """One client's connection: requests answered one after the other (pipelined ones in order).

    Request heads are parsed as they arrive (a scrape's by :func:`simple_request`, others by an h11 parser per
    request, given what the previous one read beyond its end); each request is answered by a task of its own
    (handlers may wait). The responses, always framed by Content-Length, are written here: the exporter's own
    few headers need none of h11's checks, which cost as much as parsing the request.

    A body goes out a piece at a time as the client takes it: on a plain socket the transport pauses this
    protocol as soon as the socket does not take a whole piece and resumes it once it took all of it, so
    each piece is written straight to the socket and the transport holds at most the rest of one.
    """

    transport: asyncio.Transport

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        assert server.loop is not None
        self.loop = server.loop
        self.remote = "?"
        #: when it began to wait for a request (None while it answers one)
        self.waiting_since: float | None = None
        #: when the response being sent began to go out (or the connection began to close after answering)
        self.sending_since: float | None = None
        self._buffer = b""
        self._eof = False
        self._over_ssl = False
        #: reads the request at hand when it is not a scrape's kind
        self._parser: h11.Connection | None = None
        #: the request whose body is being read and dropped, and how much of it came
        self._pending: tuple[Request, bool] | None = None
        self._dropped = 0
        #: a request is being answered: what comes in the meantime waits in the buffer
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._processing = False
        self._lost = False
        #: what remains of the response being sent (its chunks, and the one being sent a piece at a time)
        self._chunks: Iterator[bytes | memoryview] | None = None
        self._view: memoryview | None = None
        self._offset = 0
        #: the size of the next piece
        self._piece = SEND_CHUNK
        self._keep_alive = False
        self._on_stall: Callable[[], None] | None = None
        self._path = ""
        self._write_paused = False
        self._read_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        if not self._over_ssl:
            transport.set_write_buffer_limits(high=0)  # see the class's docstring
        peer = transport.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        self.waiting_since = self.loop.time()
        self.server._connections.add(self)
        if self.server.stopping:  # accepted as the server stopped listening
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = self._write_paused = True
        self._chunks = self._view = None
        self.waiting_since = self.sending_since = None
        if self._task is None:
            self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self._parser is not None and not self._busy:
            self._parser.receive_data(data)
        else:
            self._buffer = self._buffer + data if self._buffer else data
            if self._busy:
                if len(self._buffer) > PIPELINED and not self._read_paused:
                    self._read_paused = True
                    self.transport.pause_reading()
                return
        self._process()

    def eof_received(self) -> bool:
        self._eof = True
        if not self._busy:
            if self._parser is not None:
                self._parser.receive_data(b"")  # b"" tells h11 the client closed its side
            self._process()
        # Kept open to answer what came before (a TLS transport closes whatever this says).
        return not self._over_ssl

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._chunks is not None:
            self._pump()

    def check(self, now: float) -> None:
        """Close the connection if it idled past the idle timeout or stalled past the send deadline."""
        if self.waiting_since is not None and now - self.waiting_since > self.server.idle_timeout:
            self.waiting_since = None
            self.transport.close()  # an unfinished head is dropped
        elif self.sending_since is not None and now - self.sending_since > self.server.app.send_deadline:
            self._stalled()

    def kill(self) -> None:
        """Drop the connection, whatever it was doing (stopping, past the shutdown timeout)."""
        if self._task is not None:
            self._task.cancel()
        self.transport.abort()

    def _process(self) -> None:
        """Answer the requests read so far, one at a time."""
        if self._processing:
            return  # called back by a response sent at once: the loop below goes on with the next request
        self._processing = True
        try:
            self._process_requests()
        finally:
            self._processing = False

    def _process_requests(self) -> None:
        while not self._busy and not self.transport.is_closing():
            if self._parser is None:
                buffer = self._buffer
                if (not self._eof and len(buffer) <= MAX_HEAD and b"\r\n\r\n" not in buffer
                        and b"\n\n" not in buffer and b"\n\r\n" not in buffer):
                    return  # more to come (h11 also takes bare line feeds)
                if self.server.stopping or (self._eof and not buffer):
                    self.transport.close()
                    return
                simple = simple_request(buffer, self.remote)
                if simple is not None:
                    request, keep_alive, self._buffer = simple
                    self._answer(request, keep_alive)
                    continue
                self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
                self._parser.receive_data(buffer)
                if self._eof:
                    self._parser.receive_data(b"")
                self._buffer = b""
            try:
                parsed = self._next_request(self._parser)
            except h11.RemoteProtocolError as exc:
                if self._eof:  # the client left within a request: nobody to answer, nothing to report
                    self.transport.close()
                    return
                self.server.on_malformed(exc, self.remote)
                self._reject(exc.error_status_hint)
                return
            except _BodyTooLarge:
                self._reject(413)
                return
            if parsed is None:
                return  # more to come, or closed
            self._buffer = self._parser.trailing_data[0]  # pipelined requests read along with this one
            self._parser = None
            self._answer(*parsed)

    def _next_request(self, parser: h11.Connection) -> tuple[Request, bool] | None:
        """The next request once whole (its body read and dropped), and whether the connection may serve another
        after it; None until then, and once the client closed the connection."""
        while True:
            event = parser.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                request, keep_alive = from_h11(event, self.remote)
                if "content-length" not in request.headers and "transfer-encoding" not in request.headers:
                    # Without either, h11 reads no body: its end of message consumes nothing, so it is skipped.
                    return request, keep_alive
                if next((int(v) for n, v in event.headers if n == b"content-length"), 0) > MAX_BODY:
                    raise _BodyTooLarge
                if parser.they_are_waiting_for_100_continue:
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                self._pending, self._dropped = (request, keep_alive), 0
            elif isinstance(event, h11.Data):
                self._dropped += len(event.data)
                if self._dropped > MAX_BODY:
                    raise _BodyTooLarge
            elif isinstance(event, h11.EndOfMessage) and self._pending is not None:
                pending, self._pending = self._pending, None
                return pending
            elif isinstance(event, h11.ConnectionClosed) and self._pending is None:
                self.transport.close()
                return None
            else:
                raise h11.RemoteProtocolError("connection closed within the request body", 400)

    def _answer(self, request: Request, keep_alive: bool) -> None:
        self._busy = True
        self.waiting_since = None
        task = _start(self.loop, self._respond(request, keep_alive))
        self._task = None if task.done() else task

    async def _respond(self, request: Request, keep_alive: bool) -> None:
        try:
            response: Response | None = await self.server.app.respond(request)
        except asyncio.CancelledError:
            response = None  # stopped past the shutdown timeout: the connection is dropped
        # Before sending: a response sent at once goes on with the next request, and its task.
        self._task = None
        if self._lost:
            self.server.forget(self)
        elif response is not None:
            try:
                self._send(request, response, keep_alive)
            except Exception:
                log.exception("error sending the response to %s %s", request.method, request.path[:200])
                self.transport.abort()

    def _send(self, request: Request, response: Response, keep_alive: bool) -> None:
        chunks: Iterable[bytes | memoryview] = response.chunks
        if response.length is None:
            chunks = list(chunks)
            size = sum(len(chunk) for chunk in chunks)
        else:
            size = response.length
        self._keep_alive = keep_alive = keep_alive and not self.server.stopping
        head = _head(response, size, keep_alive)
        if request.method == "HEAD":
            chunks = ()
        self._on_stall, self._path = response.on_stall, request.path
        self.sending_since = self.loop.time()
        if size <= JOIN_LIMIT:  # one write
            self._chunks = iter(())
            self.transport.write(b"".join([head, *chunks]))
            self._pump()
            return
        self._chunks = iter(chunks)
        self.transport.write(head)  # joined with the body, it would be a copy of the body (asyncio 3.11)
        self._pump()

    def _pump(self) -> None:
        """Hand the transport the response's next pieces for as long as the socket takes them whole."""
        while not self._write_paused:
            piece = self._next_piece()
            if piece is None:
                self._sent()
                return
            self.transport.write(piece)
            if not self._write_paused and not self._over_ssl:
                self._piece = MAX_PIECE  # the socket took a whole piece: it may well take a larger one
        self._piece = SEND_CHUNK

    def _next_piece(self) -> bytes | memoryview | None:
        """The response's next piece (a slice, not a copy), at most ``self._piece`` bytes; None after the last."""
        view, offset = self._view, self._offset
        if view is None:
            assert self._chunks is not None
            chunk = next(self._chunks, None)
            if chunk is None or len(chunk) <= self._piece:
                return chunk
            view, offset = memoryview(chunk), 0
        end = offset + self._piece
        self._view, self._offset = (view, end) if end < len(view) else (None, 0)
        return view[offset:end]

    def _sent(self) -> None:
        """The response went out: on to the next request, or closed."""
        self._chunks = self._view = self._on_stall = None
        self._path = ""
        if not self._keep_alive or self.server.stopping:
            self.transport.close()  # the send deadline still watches what the transport holds
            return
        self.sending_since = None
        self._busy = False
        self.waiting_since = self.loop.time()
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()
        self._process()

    def _stalled(self) -> None:
        self.sending_since = None
        self.transport.abort()  # frees what the transport still holds for this client
        if self._path:  # within a response (not closing after one)
            if self._on_stall is not None:
                self._on_stall()
            log.debug("dropped a client from %s that had not read the response to %s within %gs",
                      self.remote, self._path[:200], self.server.app.send_deadline)

    def _reject(self, status: int) -> None:
        """Answer a request that cannot be answered and close: the connection's state is unknown."""
        reason = _REASONS[status]
        body = f"{status}: {reason}\n".encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {_date()}\r\n\r\n").encode()
        self._busy = True
        self.waiting_since, self.sending_since = None, self.loop.time()
        self.transport.write(head + body)
        self.transport.close()


if sys.version_info >= (3, 12):
    def _start(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[None, None, None]) -> asyncio.Task[None]:
        """A task that runs at once up to its first wait: most responses are sent before it returns."""
        return asyncio.Task(coroutine, loop=loop, eager_start=True)
else:
    def _start(loop: asyncio.AbstractEventLoop, coroutine: Coroutine[None, None, None]) -> asyncio.Task[None]:
        return loop.create_task(coroutine)


class _BodyTooLarge(Exception):
    pass


def from_h11(event: h11.Request, remote: str) -> tuple[Request, bool]:
    """The request h11 read, and whether the connection may serve another after it."""
    if len(event.target) > MAX_TARGET:
        raise h11.RemoteProtocolError(f"request target of {len(event.target)} bytes, more than {MAX_TARGET}", 400)
    # h11 bounds only a head still incomplete: one that came in a single read is measured here.
    size = len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers)
    if size > MAX_HEAD:
        raise h11.RemoteProtocolError(f"request head of {size} bytes, more than {MAX_HEAD}", 431)
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key, text = name.decode("ascii"), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    target = event.target.decode("ascii").partition("?")[0]
    if target.startswith(("http://", "https://")):  # absolute form (sent to proxies): its path is what counts
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    request = Request(event.method.decode("ascii"), target, headers, remote)
    # HTTP/1.1 keeps the connection unless the client asks to close it; HTTP/1.0 closes it (as h11 does).
    return request, not _asks_to_close(headers) and event.http_version >= b"1.1"


def _asks_to_close(headers: dict[str, str]) -> bool:
    return "close" in (token.strip().lower() for token in headers.get("connection", "").split(","))


def simple_request(data: bytes, remote: str) -> tuple[Request, bool, bytes] | None:
    """The request whose head starts ``data``, whether the connection stays open after it, and the bytes after
    its head; None unless it is a scrape's kind of request (see the module's docstring): h11 then reads it.

    Only heads h11 would take as they are get here: a strict subset of HTTP/1.1, so nothing reads differently.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end > MAX_HEAD:
        return None
    parsed = _simple_head(data[:end])
    if parsed is None:
        return None
    method, path, headers, keep_alive = parsed
    return Request(method, path, dict(headers), remote), keep_alive, data[end + 4:]


@functools.lru_cache(maxsize=64)
def _simple_head(head: bytes) -> tuple[str, str, dict[str, str], bool] | None:
    """What :func:`simple_request` reads from a head (without its empty line). Remembered: a scraper sends the
    same head every time, and reading one costs as much as the rest of answering it (callers copy the dict)."""
    lines = head.split(b"\r\n")
    first = _SIMPLE_REQUEST_LINE.fullmatch(lines[0])
    if first is None or len(first[2]) > MAX_TARGET:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name, value = match[1].decode("ascii").lower(), match[2].rstrip(b" \t").decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if name == "host" and value != headers[name]:
            return None  # a second Host: h11 refuses it
    if "host" not in headers or "content-length" in headers or "transfer-encoding" in headers:
        return None  # h11 refuses a missing Host, and reads bodies
    path = first[2].decode("ascii").partition("?")[0]
    return first[1].decode("ascii"), path, headers, not _asks_to_close(headers)


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _head(response: Response, size: int, keep_alive: bool) -> bytes:
    """The status line and headers of ``response`` (the exporter's own headers: never a client's text)."""
    return _head_lines(response.status, tuple(response.headers.items()), size, keep_alive) + _date_line()


@functools.lru_cache(maxsize=64)
def _head_lines(status: int, headers: tuple[tuple[str, str], ...], size: int, keep_alive: bool) -> bytes:
    """All of a head but the Date and the empty line; remembered: /metrics answers with the same for a while."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {size}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def _date() -> str:
    return _http_date(int(time.time()))


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """The Date header, formatted once a second."""
    return email.utils.formatdate(second, usegmt=True)


def _date_line() -> bytes:
    return _http_date_line(int(time.time()))


@functools.lru_cache(maxsize=1)
def _http_date_line(second: int) -> bytes:
    return f"Date: {_http_date(second)}\r\n\r\n".encode("ascii")


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line, printable ASCII only, at most ``limit`` characters: safe to log whatever sent it."""
    flat = " ".join(text.split())
    safe = "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in flat)
    return safe if len(safe) <= limit else safe[:limit - 3] + "..."


class MalformedRequests:
    """One short line about a request that could not be parsed, at most one a minute.

    Such requests come from scanners or broken clients before any
    authentication; a flood of them must not flood the log. The first is
    logged; later ones within the interval are counted and reported with the
    next line. A warning: the client's fault, not the exporter's.
    """

    def __init__(self, interval: float = MALFORMED_LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, error: h11.RemoteProtocolError, remote: str) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last such line)" if self._suppressed else ""
        log.warning("rejected a malformed HTTP request (%s) from %s: %s: %s%s", error.error_status_hint,
                    excerpt(remote, 64), type(error).__name__, excerpt(str(error)), more)
        self._last, self._suppressed = now, 0
