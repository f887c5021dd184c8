"""A scrape's request head is read without h11 (httpserver.simple_request); whatever that reading takes, h11
must read the same way, and whatever it leaves, h11 must still get."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.httpserver import Request, from_h11, simple_request

PROMETHEUS = (b"GET /metrics HTTP/1.1\r\nHost: exporter:9888\r\nUser-Agent: Prometheus/3.1.0\r\n"
              b"Accept: application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
              b"version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2\r\n"
              b"Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n")


def by_h11(data: bytes) -> tuple[Request, bool, bytes] | str:
    """What the h11 path reads from ``data``: the request, keep-alive and what follows its head, or its refusal."""
    parser = h11.Connection(h11.SERVER)
    parser.receive_data(data)
    try:
        event = parser.next_event()
        if not isinstance(event, h11.Request):
            return f"no request: {event}"
        request, keep_alive = from_h11(event, "peer")
    except h11.RemoteProtocolError as exc:
        return f"refused: {exc}"
    return request, keep_alive, parser.trailing_data[0]


def test_a_prometheus_scrape_is_read_without_h11_as_h11_reads_it() -> None:
    pipelined = PROMETHEUS + b"GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    simple = simple_request(pipelined, "peer")
    assert simple is not None
    request, keep_alive, rest = simple
    assert (request.method, request.path, keep_alive) == ("GET", "/metrics", True)
    assert request.header("Accept-Encoding") == "gzip"
    assert rest == b"GET /-/ready HTTP/1.1\r\nHost: x\r\n\r\n"
    assert simple == by_h11(pipelined)


@pytest.mark.parametrize("head", [
    b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n",  # HTTP/1.0: h11 decides about keep-alive
    b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",  # a body
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n\r\n",  # no Host: h11 refuses it
    b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts: h11 refuses them
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # obsolete line folding
    b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n",  # a space before the colon
    b"GET /metrics HTTP/1.1\nHost: x\n\n",  # bare line feeds
    b"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",  # absolute form
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",  # a control character
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n",  # not a whole head yet
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a target beyond the limit
])
def test_what_is_not_a_plain_scrape_goes_to_h11(head: bytes) -> None:
    assert simple_request(head, "peer") is None


def test_connection_close_is_honoured() -> None:
    simple = simple_request(b"HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Close\r\n\r\n", "p")
    assert simple is not None
    assert (simple[0].method, simple[0].path, simple[1]) == ("HEAD", "/metrics", False)


_NAMES = st.sampled_from([b"Host", b"host", b"Accept", b"Accept-Encoding", b"Connection", b"X-A", b"X!#$%&'*+.^_`|~",
                          b"Content-Length", b"Transfer-Encoding", b"Bad Name", b"", b"X:Y"])
_VALUES = st.binary(max_size=12).map(lambda b: b.replace(b"\r\n", b"")) | st.sampled_from(
    [b"close", b" keep-alive ", b"gzip;q=0", b"\tx\t", b"a b", b"x\x80\xff", b"0", b"chunked"])
_LINES = st.sampled_from([b"GET /metrics HTTP/1.1", b"HEAD /m?q HTTP/1.1", b"GET / HTTP/1.0", b"PUT /x HTTP/1.1",
                          b"GET  /x HTTP/1.1", b"GET /x HTTP/1.1 ", b"get /x HTTP/1.1", b"GET /\x7f HTTP/1.1"])


@settings(max_examples=400, deadline=None)
@given(line=_LINES, fields=st.lists(st.tuples(_NAMES, _VALUES), max_size=6), rest=st.binary(max_size=8))
def test_every_head_read_without_h11_reads_the_same_with_it(line: bytes, fields: list[tuple[bytes, bytes]],
                                                          rest: bytes) -> None:
    data = line + b"\r\n" + b"".join(name + b": " + value + b"\r\n" for name, value in fields) + b"\r\n" + rest
    simple = simple_request(data, "peer")
    if simple is not None:
        assert simple == by_h11(data)


def test_a_head_read_again_is_a_request_of_its_own() -> None:
    first = simple_request(PROMETHEUS, "a")
    assert first is not None
    first[0].headers["accept-encoding"] = "changed by a handler"
    again = simple_request(PROMETHEUS, "b")
    assert again is not None
    assert (again[0].remote, again[0].header("Accept-Encoding")) == ("b", "gzip")
