"""`serve --web.serving-process own`: HTTP answered by a process of its own, fed every payload the collecting
process renders; each of the two ends with the other."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from exporter import servingchild, servingprocess
from exporter.exposition import RenderedFamily
from exporter.snapshot import render_groups
from tests.support import Process, exporter, free_port, parse_exposition, simulator, value

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z":
            return True  # ended; its parent has not reaped it yet
        time.sleep(0.05)
    return False


def test_the_serving_process_answers_what_the_collecting_one_renders(tmp_path: Path) -> None:
    config = tmp_path / "one.yaml"
    with simulator(tmp_path) as sim:
        config.write_text(f"targets:\n  - name: sim\n    url: {sim.url}\n    auth: {{token_env: JFROG_ACCESS_TOKEN}}\n"
                          "    collectors: {health: {interval: 1s}}\n")
        with exporter(tmp_path, "--config", str(config), "--web.serving-process", "own",
                      "--web.enable-lifecycle") as exp:
            check_serving(exp)
    assert "from a process of its own" in exp.output()
    assert "serving process ended" not in exp.output()


def check_serving(exp: Process) -> None:
    """What a serving process of its own answers, and how it stops."""
    [child] = children(exp.proc.pid)
    plain = httpx.get(exp.url + "/metrics", headers={"Accept-Encoding": "identity"})
    assert plain.headers.get("content-encoding") is None
    samples = parse_exposition(plain.text)
    assert value(samples, "jfrog_up", target="sim") == 1
    memory = value(samples, "jfrog_exporter_serving_process_resident_memory_bytes")
    assert memory is not None and 5e6 < memory < 200e6
    with httpx.Client() as client:  # the same payload, compressed
        zipped = client.get(exp.url + "/metrics", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text.count("\n") > 1000
    openmetrics = httpx.get(exp.url + "/metrics", headers={**OPENMETRICS, "Accept-Encoding": "identity"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    head = httpx.head(exp.url + "/metrics", headers={"Accept-Encoding": "identity"})
    assert head.headers["content-length"] == plain.headers["content-length"]
    # What only the collecting process knows is passed on; the rest is answered here.
    page = httpx.get(exp.url + "/")
    assert page.status_code == 200 and "content-security-policy" in page.headers
    assert httpx.post(exp.url + "/-/reload").text.startswith("reloaded")
    assert httpx.get(exp.url + "/nowhere").status_code == 404
    assert httpx.get(exp.url + "/-/healthy").text == "OK\n"
    # Later renderings reach it too: a run's counter moves.
    runs = value(samples, "jfrog_exporter_collector_runs_total", collector="health", outcome="success")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        later = parse_exposition(httpx.get(exp.url + "/metrics").text)
        if value(later, "jfrog_exporter_collector_runs_total", collector="health", outcome="success") != runs:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no later payload reached the serving process")
    # A signal to both (Ctrl-C, a service manager stopping the group) is the collecting process's to act on.
    os.kill(child, signal.SIGTERM)
    time.sleep(0.5)
    assert httpx.get(exp.url + "/-/healthy").status_code == 200
    assert exp.stop() == 0
    assert gone(child)


def test_when_the_serving_process_dies_the_exporter_stops_with_code_1(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, exporter(tmp_path, "--url", sim.url, "--web.serving-process", "own") as exp:
        [child] = children(exp.proc.pid)
        os.kill(child, signal.SIGKILL)
        assert exp.proc.wait(20) == 1
        assert "the serving process ended (killed by SIGKILL): stopping" in exp.output()


def test_when_the_collecting_process_dies_the_serving_process_stops(tmp_path: Path) -> None:
    with simulator(tmp_path) as sim, exporter(tmp_path, "--url", sim.url, "--web.serving-process", "own") as exp:
        [child] = children(exp.proc.pid)
        exp.proc.kill()
        exp.proc.wait(10)
        assert gone(child)


def test_an_address_in_use_is_a_configuration_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with simulator(tmp_path) as sim, exporter(tmp_path, "--url", sim.url, "--web.serving-process", "own",
                                                  "--listen", f"127.0.0.1:{port}", ready=False) as exp:
            assert exp.proc.wait(20) == 2
    assert f"configuration error: --listen: cannot listen on 127.0.0.1:{port}" in exp.output()


async def test_a_stalled_scrape_is_counted_by_the_collecting_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The serving process's side in this process: a payload frame in, a stall frame out."""
    monkeypatch.setattr(servingchild, "SEND_DEADLINE", 0.5)
    lines = 200_000  # 4 MB: more than the sockets hold
    family = RenderedFamily("jfrog_test_padding", "gauge", "Padding.", b"jfrog_test_padding 1\n" * lines, lines)
    payload = render_groups(1, [[family]])
    to_child, child_in = socket.socketpair()
    child_out, from_child = socket.socketpair()
    port = free_port()
    link = servingprocess.PayloadLink(to_child)
    link.offer(payload, True)
    serving = asyncio.create_task(servingchild.serve(child_in, child_out, "/nonexistent", "127.0.0.1", port))
    reader, _writer = await asyncio.open_unix_connection(sock=from_child)
    assert await servingchild.read_frame(reader) == (servingchild.STARTED, str(port).encode())
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            if (await client.get(f"http://127.0.0.1:{port}/-/ready")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        answer = await client.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "identity"})
        assert answer.content == payload.text
        zipped = await client.get(f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip" and zipped.content == payload.text
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        frame = await asyncio.wait_for(servingchild.read_frame(reader), 10)
        assert frame == (servingchild.STALLED, b"")
    finally:
        stalled.close()
        link.stop()  # the serving process sees the end of the payload stream and stops
        assert await asyncio.wait_for(serving, 10) == 0
