"""Helpers the benchmark scripts share: processes on loopback, wrk, RSS and CPU readings."""

from __future__ import annotations

import compileall
import contextlib
import functools
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TOKEN = "simulator-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0, status: int = 200) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == status:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer {status} within {timeout}s")


@functools.cache
def byte_compiled(tree: Path = REPO) -> Path:
    """``tree``, its package's bytecode written as ``pip install`` writes it for the image.

    A process that compiles the sources as it imports them keeps about 0.2 MB more once idle (1.7 MB
    right after the imports); with ``PYTHONDONTWRITEBYTECODE`` set every run would, so runs from a
    source tree would measure what an installed exporter never pays.
    """
    compileall.compile_dir(tree / "exporter", quiet=1)
    return tree


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m exporter ARGS`` run from ``cwd`` (another tree's package, first on the path), stopped at exit."""
    byte_compiled(cwd)
    proc = subprocess.Popen([sys.executable, "-m", "exporter", *args], cwd=cwd,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def simulator(scenario: str = "large", *extra: str) -> Iterator[str]:
    port = free_port()
    with process(["simulate", "--scenario", scenario, "--listen", f"127.0.0.1:{port}", *extra]):
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/-/simulator")
        yield url


def served_gzip(url: str) -> tuple[bytes, bytes]:
    """/metrics as the exporter sends it to a scraper asking for gzip: the text, and the very bytes on the wire
    (which a baseline server then sends)."""
    with httpx.stream("GET", url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30) as response:
        response.raise_for_status()
        raw = b"".join(response.iter_raw())
    return gzip.decompress(raw), raw


def sim_requests(url: str) -> int:
    return int(httpx.get(url + "/-/simulator").json()["requests"])


def set_latency(url: str, ms: float) -> None:
    httpx.post(url + "/-/simulator", json={"latency_ms": ms}).raise_for_status()


def rss_mb(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or 'self'}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+)", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and of the processes it started (a serving process of its own)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in process_tree(pid):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children: `serve` and its serving process, when it has one."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def tree_rss_mb(pid: int) -> float:
    """The resident size of ``pid`` and its children, pages they share counted in each (an upper bound)."""
    return sum(rss_mb(each) for each in process_tree(pid))


def tree_pss_mb(pid: int) -> float:
    """The proportional set size of ``pid`` and its children: each shared page counted once, split among them
    (what they cost together, as a memory cgroup sees it; RSS counts shared pages in each)."""
    total = 0
    for each in process_tree(pid):
        match = re.search(r"^Pss:\s+(\d+) kB", Path(f"/proc/{each}/smaps_rollup").read_text(), re.M)
        total += int(match.group(1)) if match else 0
    return total / 1024


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url: str, seconds: int = 10, connections: int = 16, threads: int = 2) -> WrkResult:
    """Concurrent scrapers with Prometheus's Accept-Encoding, via Debian's wrk."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", "Accept-Encoding: gzip", url],
        capture_output=True, text=True, check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: the thread statistics above also contain percentages ("85.50%").
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    return WrkResult(rps, p50, p99)
