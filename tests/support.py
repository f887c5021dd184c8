"""Shared test helpers: simulator and exporter processes on loopback, exposition parsing."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.client import PING
from exporter.families import Emitter
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_TOKEN

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO.parent / "shared" / "seeds"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def documented(area: str, name: str) -> Any:
    """A documented payload kept in tests/payloads/AREA/NAME, parsed."""
    return json.loads((REPO / "tests" / "payloads" / area / name).read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port where nothing listens, held (bound, never listening) so no server started meanwhile takes it:
    a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def parse_exposition(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def jfrog_platform(handler: Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]
                   ) -> httpx.MockTransport:
    """A mock JPD: ``handler``'s answers, and ping answering OK as every JFrog Platform does."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == PING:
            return httpx.Response(200, text="OK", headers={"Content-Type": "text/plain"})
        answer = handler(request)
        return await answer if inspect.isawaitable(answer) else answer

    return httpx.MockTransport(handle)


def emitted(out: Emitter) -> Samples:
    """The samples an emitter built, keyed like :func:`parse_exposition`'s."""
    return {(s.name, frozenset(s.labels.items())): s.value for f in out.families() for s in f.samples}


async def run_and_scrape(engine: Engine, collector: str, target: str = "sim") -> Samples:
    """One run of ``collector``, then what a scrape would get."""
    await engine.run_collector(target, collector)
    await engine.render_now()
    assert engine.store.payload is not None
    return parse_exposition(engine.store.payload.text.decode())


def endpoint_up(samples: Samples, endpoint: str, collector: str) -> float | None:
    return value(samples, "jfrog_exporter_endpoint_up", collector=collector, endpoint=endpoint)


def endpoint_last_success(samples: Samples, endpoint: str, collector: str) -> float | None:
    return value(samples, "jfrog_exporter_endpoint_last_success_timestamp_seconds", collector=collector,
                 endpoint=endpoint)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` whose labels include ``labels``."""
    matches = [v for (n, lbls), v in samples.items() if n == name and set(labels.items()) <= set(lbls)]
    if len(matches) > 1:
        raise AssertionError(f"{name}{labels} matches {len(matches)} samples")
    return matches[0] if matches else None


def series(samples: Samples, name: str, **labels: str) -> list[dict[str, str]]:
    return [dict(lbls) for (n, lbls), _ in samples.items() if n == name and set(labels.items()) <= set(lbls)]


def wait_http(url: str, timeout: float = 15.0, status: int = 200) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


@dataclass
class Process:
    proc: subprocess.Popen[str]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    handle = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "exporter", *args], stdout=handle, stderr=subprocess.STDOUT,
                            env=full_env, text=True, cwd=REPO)


@contextlib.contextmanager
def simulator(tmp: Path, scenario: str = "healthy", *extra: str) -> Iterator[Process]:
    port = free_port()
    log = tmp / f"simulator-{scenario}-{port}.log"
    proc = _spawn(["simulate", "--scenario", scenario, "--listen", f"127.0.0.1:{port}", *extra], log)
    sim = Process(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(sim.url + "/-/simulator")
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def exporter(tmp: Path, *args: str, env: dict[str, str] | None = None, ready: bool = True) -> Iterator[Process]:
    port = free_port()
    log = tmp / f"exporter-{port}.log"
    env = {"JFROG_ACCESS_TOKEN": DEFAULT_TOKEN, **(env or {})}
    proc = _spawn(["serve", "--listen", f"127.0.0.1:{port}", *args], log, env)
    exp = Process(proc, f"http://127.0.0.1:{port}", log)
    try:
        if ready:
            try:
                wait_http(exp.url + "/-/ready", timeout=30)
            except AssertionError:
                raise AssertionError("exporter not ready; its log:\n" + exp.output()) from None
        yield exp
    finally:
        exp.stop()


@contextlib.contextmanager
def demo(tmp: Path) -> Iterator[Process]:
    """``jfrog-exporter demo`` as a user starts it, its exporter on a free port; yields once it is ready."""
    port = free_port()
    log = tmp / f"demo-{port}.log"
    proc = _spawn(["demo", "--listen", f"127.0.0.1:{port}"], log)
    process = Process(proc, f"http://127.0.0.1:{port}", log)
    try:
        try:
            wait_http(process.url + "/-/ready", timeout=30)
        except AssertionError:
            raise AssertionError("demo not ready; its output:\n" + process.output()) from None
        yield process
    finally:
        process.stop()


def scrape(url: str) -> Samples:
    response = httpx.get(url + "/metrics", timeout=10)
    response.raise_for_status()
    return parse_exposition(response.text)


@functools.cache
def _prometheus_binaries() -> tuple[Path, Path] | str:
    """promtool and prometheus, installing the Debian package where that is possible; else why not."""
    if shutil.which("promtool") is None or shutil.which("prometheus") is None:
        if shutil.which("apt-get") is None:
            return "promtool/prometheus not installed and no apt-get to install them (Debian package prometheus)"
        if os.geteuid() != 0:
            return "promtool/prometheus not installed; apt-get install prometheus needs root"
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
        for args in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", "prometheus"]):
            done = subprocess.run([*apt, *args], capture_output=True, text=True, check=False,
                                  env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if done.returncode != 0:
                lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
                return f"apt-get {args[0]} prometheus failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if promtool is None or prometheus is None:
        return "the Debian package prometheus did not provide promtool and prometheus"
    return Path(promtool), Path(prometheus)


def ensure_prometheus() -> Path:
    """promtool (prometheus beside it), from the Debian package, installed when missing where apt-get may be
    used; elsewhere the calling test is skipped with the reason, so the suite runs on any machine."""
    found = _prometheus_binaries()
    if isinstance(found, str):
        pytest.skip(found)
    return found[0]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JFROG_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "exporter", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=REPO)


class Clock:
    """A wall clock that moves only when told: an engine's runs at chosen times (change-driven parts)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
