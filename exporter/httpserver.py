"""A small HTTP/1.1 server on asyncio streams and h11, for the exporter's handful of endpoints.

h11 is loaded anyway (httpx's transport parses responses with it), so
serving with it costs no import of its own. It parses; this module routes,
frames the responses, bounds what a client may make the process hold or wait
for (head size, body size, idle time, time to take a response), and stops
gracefully.

A scrape's head (GET or HEAD, HTTP/1.1, well-formed header lines, no body) is
read without h11 (:func:`simple_request`): h11 takes about 10 times as long
for it, time a busy process spends holding the interpreter. Anything else
goes to h11, which answers it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

import h11

#: Bytes handed to the transport at a time. asyncio copies what the socket does not take at once into a
#: buffer of the connection's own: a client that stops reading holds about one chunk, not a copy of the payload.
SEND_CHUNK = 256 * 1024
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
#: Bytes read from a socket at a time.
READ_SIZE = 64 * 1024
#: At most one line per this many seconds about requests that could not be parsed.
MALFORMED_LOG_INTERVAL = 60.0
#: Characters of a malformed request's error message that reach the log.
EXCERPT_CHARS = 80

log = logging.getLogger("exporter.http")

#: a request line that needs no more checks: the only methods without a body, an origin-form target
_SIMPLE_REQUEST_LINE = re.compile(rb"(GET|HEAD) (/[!-~]*) HTTP/1\.1")
#: a header line as RFC 9110 spells it (a token, a colon, a value of visible characters, spaces and tabs)
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[!-~\x80-\xff](?:[ \t]*[!-~\x80-\xff])*)?)[ \t]*")
#: what ends a head for h11, which also takes bare line feeds
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")


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
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self.stopping = False
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, ssl=ssl_context, limit=READ_SIZE)
        self._sweeper = asyncio.create_task(self._close_idle())

    async def start_unix(self, path: str) -> None:
        """Serve on a Unix socket at ``path`` (for another process of the exporter's own)."""
        self._server = await asyncio.start_unix_server(self._serve, path, limit=READ_SIZE)
        self._sweeper = asyncio.create_task(self._close_idle())

    async def _close_idle(self) -> None:
        """Close connections that have waited for a request longer than the idle timeout.

        One sweep for all connections instead of a timer per request: a timer costs as much as routing one.
        """
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            now = loop.time()
            for connection in self._connections.values():
                if connection.waiting_since is not None and now - connection.waiting_since > self.idle_timeout:
                    connection.writer.transport.close()  # its read ends; an unfinished head is dropped

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop listening, close idle connections, give the ones answering a request time to finish."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in self._connections.values():
            if connection.waiting_since is not None:
                connection.writer.transport.close()  # its read ends: the connection finishes on its own
        tasks = list(self._connections)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.shutdown_timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        for cleanup in self.app.on_cleanup:
            await cleanup()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = _Connection(self, reader, writer)
        self._connections[task] = connection
        try:
            await connection.run()
        except asyncio.CancelledError:
            pass  # stopped past the shutdown timeout; asyncio would log a cancelled connection as an error
        finally:
            del self._connections[task]


class _Connection:
    """One client's connection: requests answered one after the other (pipelined ones in order).

    h11 parses each request (a parser per request, given what the previous one read beyond its end); the
    responses, always framed by Content-Length, are written here: the exporter's own few headers need none
    of h11's checks, which cost as much as parsing the request.
    """

    def __init__(self, server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        #: when it began to wait for a request (None while it answers one)
        self.waiting_since: float | None = asyncio.get_running_loop().time()
        self._eof = False
        peer = writer.get_extra_info("peername")
        self.remote = str(peer[0]) if isinstance(peer, tuple) and peer else "?"

    async def run(self) -> None:
        buffered, closed = b"", False
        try:
            while not self.server.stopping:
                buffered, closed = await self._head(buffered, closed)
                simple = simple_request(buffered, self.remote)
                if simple is not None:
                    request, keep_alive, buffered = simple
                else:
                    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
                    if buffered:
                        parser.receive_data(buffered)
                    if closed:
                        parser.receive_data(b"")  # b"" tells h11 the client closed its side
                    parsed = await self._next_request(parser)
                    if parsed is None:
                        return
                    request, keep_alive = parsed
                    buffered, closed = parser.trailing_data  # pipelined requests read along with this one
                self.waiting_since = None
                response = await self.server.app.respond(request)
                keep_alive = keep_alive and not self.server.stopping
                if not await self._send(request, response, keep_alive) or not keep_alive:
                    return
                self.waiting_since = asyncio.get_running_loop().time()
        except h11.RemoteProtocolError as exc:
            if self._eof:
                return  # the client left within a request: nobody to answer, nothing to report
            self.server.on_malformed(exc, self.remote)
            await self._reject(exc.error_status_hint)
        except _BodyTooLarge:
            await self._reject(413)
        except OSError:
            pass  # the client left, or its TLS broke
        finally:
            self.writer.close()

    async def _head(self, buffered: bytes, closed: bool) -> tuple[bytes, bool]:
        """``buffered`` and what the client sends next, until a whole head is there, the limit is passed or the
        client closes its side."""
        while not closed and len(buffered) <= MAX_HEAD and not any(end in buffered for end in _HEAD_ENDS):
            data = await self.reader.read(READ_SIZE)
            self._eof = closed = not data
            buffered += data
        return buffered, closed

    async def _next_request(self, parser: h11.Connection) -> tuple[Request, bool] | None:
        """The next request, its body read and dropped, and whether the connection may serve another after it;
        None once the client closed the connection (or it was closed for idling)."""
        event = await self._next_event(parser)
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        request, keep_alive = from_h11(event, self.remote)
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            # Without either, h11 reads no body: its empty end of message consumes nothing, so a scrape skips it.
            await self._drop_body(parser, event)
        return request, keep_alive

    async def _drop_body(self, parser: h11.Connection, request: h11.Request) -> None:
        length = next((int(v) for n, v in request.headers if n == b"content-length"), 0)
        if length > MAX_BODY:
            raise _BodyTooLarge
        if parser.they_are_waiting_for_100_continue:
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        received = 0
        while True:
            event = await self._next_event(parser)
            if isinstance(event, h11.EndOfMessage):
                return
            if isinstance(event, h11.Data):
                received += len(event.data)
                if received > MAX_BODY:
                    raise _BodyTooLarge
            else:  # the connection closed within the body
                raise h11.RemoteProtocolError("connection closed within the request body", 400)

    async def _next_event(self, parser: h11.Connection) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        while True:
            event = parser.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(READ_SIZE)
            self._eof = not data
            parser.receive_data(data)

    async def _send(self, request: Request, response: Response, keep_alive: bool) -> bool:
        """Send ``response``; False when the connection must not be used any more."""
        chunks: Iterable[bytes | memoryview] = response.chunks
        if response.length is None:
            chunks = list(chunks)
            size = sum(len(chunk) for chunk in chunks)
        else:
            size = response.length
        head = _head(response, size, keep_alive)
        if request.method == "HEAD":
            chunks = ()
        if size <= SEND_CHUNK:  # the socket takes it at once: one write, nothing held
            self.writer.write(b"".join([head, *chunks]))
            if not self.writer.transport.get_write_buffer_size():
                return True  # all of it in the socket already: no deadline to watch
            head, chunks = b"", ()
        try:
            async with asyncio.timeout(self.server.app.send_deadline):
                if head:
                    self.writer.write(head)
                for chunk in chunks:
                    view = memoryview(chunk)
                    for start in range(0, len(view), SEND_CHUNK):
                        self.writer.write(view[start:start + SEND_CHUNK])
                        await self.writer.drain()  # waits while the transport is full
                await self.writer.drain()
        except TimeoutError:
            self.writer.transport.abort()  # frees what the transport still holds for this client
            if response.on_stall is not None:
                response.on_stall()
            log.debug("dropped a client from %s that had not read the response to %s within %gs",
                      self.remote, request.path[:200], self.server.app.send_deadline)
            return False
        return True

    async def _reject(self, status: int) -> None:
        """Answer a request that cannot be answered and close: the connection's state is unknown."""
        reason = _REASONS[status]
        body = f"{status}: {reason}\n".encode()
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {_date()}\r\n\r\n").encode()
        with contextlib.suppress(OSError, TimeoutError):
            self.writer.write(head + body)
            async with asyncio.timeout(5):
                await self.writer.drain()


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
    lines = data[:end].split(b"\r\n")
    first = _SIMPLE_REQUEST_LINE.fullmatch(lines[0])
    if first is None or len(first[2]) > MAX_TARGET:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER_LINE.fullmatch(line)
        if match is None:
            return None
        name, value = match[1].decode("ascii").lower(), match[2].decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if name == "host" and value != headers[name]:
            return None  # a second Host: h11 refuses it
    if "host" not in headers or "content-length" in headers or "transfer-encoding" in headers:
        return None  # h11 refuses a missing Host, and reads bodies
    path = first[2].decode("ascii").partition("?")[0]
    return Request(first[1].decode("ascii"), path, headers, remote), not _asks_to_close(headers), data[end + 4:]


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _head(response: Response, size: int, keep_alive: bool) -> bytes:
    """The status line and headers of ``response`` (the exporter's own headers: never a client's text)."""
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    lines += [f"Content-Length: {size}", f"Date: {_date()}"]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _date() -> str:
    return _http_date(int(time.time()))


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """The Date header, formatted once a second."""
    return email.utils.formatdate(second, usegmt=True)


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
