"""HTTP/1.1 to a JPD for httpx: asyncio's streams carry the bytes, h11 reads and writes the messages.

httpx's own transport goes through httpcore, whose pool rescans every connection at each request and
release, and whose locks load anyio under asyncio: those layers took 2 MB of an idle exporter, and a sixth
of the collection CPU at 300 targets (README, Performance). The exporter asks a few hosts for small JSON
answers, one request per connection at a time; a list of idle connections per origin, reused most recent
first, is all the pool it needs. Proxies named in the environment keep httpx's transport
(:func:`environment_proxies`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from typing import NoReturn
from urllib.request import getproxies

import h11
import httpx

#: bytes asked of the socket per read, as httpcore does
_READ_SIZE = 64 * 1024
#: a response head (status line and headers) larger than this is refused, as httpcore does
_MAX_HEAD = 100 * 1024
#: the methods sent again on a new connection when a reused one turns out to be closed by the JPD
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
#: RFC 8305's advice: the next address of a host is tried when the first has not connected after this long
_HAPPY_EYEBALLS = 0.25

Origin = tuple[str, str, int]

log = logging.getLogger(__name__)


def environment_proxies() -> bool:
    """Whether a proxy is configured for HTTP(S), read as httpx reads it (urllib's ``getproxies``: any case of
    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``); httpx honours it only with its own transport."""
    proxies = getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class _Stale(Exception):
    """A reused connection the JPD had closed: nothing of an answer came back on it."""


class _Connection:
    __slots__ = ("h11", "idle_since", "origin", "reader", "reused", "writer")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self.idle_since = 0.0
        self.reused = False

    def usable(self) -> bool:
        """Whether an idle connection can take a request: open on both ends, nothing unasked for waiting."""
        return not (self.writer.is_closing() or self.reader.at_eof()) and self.h11.our_state is h11.IDLE

    def close(self) -> None:
        self.writer.close()


class PoolTransport(httpx.AsyncBaseTransport):
    """Connections to each origin, ``max_connections`` at most in use, idle ones kept ``keepalive_expiry``."""

    def __init__(self, *, ssl_context: ssl.SSLContext, max_connections: int, keepalive_expiry: float) -> None:
        self._ssl = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the JPD free in time", request=request) from None
        try:
            connection, head = await self._exchange(request, origin, timeouts)
        except BaseException:
            self._slots.release()
            raise
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            stream=_Body(self, connection, request, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def _exchange(self, request: httpx.Request, origin: Origin,
                        timeouts: dict[str, float | None]) -> tuple[_Connection, h11.Response]:
        """A connection and the answer's head on it: an idle one if there is, else a new one."""
        while True:
            connection = self._take_idle(origin)
            if connection is None:
                connection = await self._connect(request, origin, timeouts.get("connect"))
            try:
                return connection, await _send(connection, request, timeouts)
            except _Stale:
                connection.close()
                log.debug("%s:%d closed an idle connection as it was reused", origin[1], origin[2])
                if request.method not in _IDEMPOTENT:
                    raise httpx.RemoteProtocolError("the JPD closed the connection before answering",
                                                    request=request) from None
            except BaseException:
                connection.close()
                raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection to ``origin``; expired and closed ones, of any origin, go."""
        now = time.monotonic()
        found = None
        for key, idle in list(self._idle.items()):
            kept = []
            for connection in idle:
                if now - connection.idle_since > self._expiry or not connection.usable():
                    connection.close()
                else:
                    kept.append(connection)
            if key == origin and kept:
                found = kept.pop()
            if kept:
                self._idle[key] = kept
            else:
                del self._idle[key]
        return found

    async def _connect(self, request: httpx.Request, origin: Origin, seconds: float | None) -> _Connection:
        scheme, host, port = origin
        secure = scheme == "https"
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl if secure else None, server_hostname=host if secure else None,
                    happy_eyeballs_delay=_HAPPY_EYEBALLS, limit=_READ_SIZE)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {seconds:g}s",
                                       request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        log.debug("connected to %s:%d%s", host, port, " over TLS" if secure else "")
        return _Connection(origin, reader, writer)

    def _release(self, connection: _Connection) -> None:
        """Called once per response, when its body is read or dropped."""
        self._slots.release()
        h = connection.h11
        if self._closed or h.our_state is not h11.DONE or h.their_state is not h11.DONE:
            connection.close()
            return
        h.start_next_cycle()
        connection.idle_since = time.monotonic()
        connection.reused = True
        idle = self._idle.setdefault(connection.origin, [])
        idle.append(connection)
        if len(idle) > self._max_idle:
            idle.pop(0).close()

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


async def _send(connection: _Connection, request: httpx.Request,
                timeouts: dict[str, float | None]) -> h11.Response:
    """Write ``request`` and read the answer's head."""
    h = connection.h11
    writer = connection.writer
    try:
        writer.write(h.send(h11.Request(method=request.method, target=request.url.raw_path,
                                        headers=request.headers.raw)))
        async for chunk in request.stream:  # type: ignore[union-attr]
            if chunk:
                writer.write(h.send(h11.Data(data=chunk)))
        writer.write(h.send(h11.EndOfMessage()))
        async with asyncio.timeout(timeouts.get("write")):
            await writer.drain()
    except TimeoutError:
        raise httpx.WriteTimeout("the JPD did not take the request in time", request=request) from None
    except h11.LocalProtocolError as exc:
        raise httpx.LocalProtocolError(str(exc), request=request) from exc
    except OSError as exc:
        if connection.reused:
            raise _Stale from exc
        raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from exc
    received = False
    while True:
        event = _next_event(h, request)
        if event is h11.NEED_DATA:
            data = await _read(connection, request, timeouts.get("read"), stale_if_empty=not received)
            received = True
            h.receive_data(data)
        elif isinstance(event, h11.Response):
            return event
        elif isinstance(event, h11.ConnectionClosed):
            _protocol_error(request, "the JPD closed the connection without answering")
        # an informational (1xx) head: the answer follows


async def _read(connection: _Connection, request: httpx.Request, seconds: float | None, *,
                stale_if_empty: bool = False) -> bytes:
    try:
        async with asyncio.timeout(seconds):
            data = await connection.reader.read(_READ_SIZE)
    except TimeoutError:
        raise httpx.ReadTimeout(f"no answer within {seconds:g}s", request=request) from None
    except OSError as exc:
        if stale_if_empty and connection.reused:
            raise _Stale from exc
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    if not data and stale_if_empty and connection.reused:
        raise _Stale
    return data


def _next_event(h: h11.Connection, request: httpx.Request) -> object:
    try:
        return h.next_event()
    except h11.RemoteProtocolError as exc:
        _protocol_error(request, str(exc))


def _protocol_error(request: httpx.Request, message: str) -> NoReturn:
    raise httpx.RemoteProtocolError(message, request=request)


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; the connection goes back to the pool once the body is read or dropped."""

    def __init__(self, pool: PoolTransport, connection: _Connection, request: httpx.Request,
                 timeout: float | None) -> None:
        self._pool: PoolTransport | None = pool
        self._connection = connection
        self._request = request
        self._timeout = timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection = self._connection
        h = connection.h11
        while True:
            event = _next_event(h, self._request)
            if event is h11.NEED_DATA:
                h.receive_data(await _read(connection, self._request, self._timeout))
            elif isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool._release(self._connection)
