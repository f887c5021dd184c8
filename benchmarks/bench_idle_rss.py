"""Idle memory of `serve` watching one simulated JPD, after its first collection rounds.

    python benchmarks/bench_idle_rss.py [--scenario healthy] [--settle 20] [--runs 3] [--uncompiled-stdlib]

Prints, per run, the seconds from start to `/-/ready`, the resident size of the exporter process
(VmRSS) and its peak (VmHWM), then the medians. The simulator runs in a process of its own and is
not counted. ``--uncompiled-stdlib`` runs `serve` with bytecode for its package and the installed
libraries only, as in an image built on an official ``python`` image without compiling the standard
library: those images ship it without bytecode (docker-library/python#615), so with
``PYTHONDONTWRITEBYTECODE`` every start compiles what it imports of it.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import site
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import REPO, TOKEN, free_port, process, rss_mb, simulator, wait_http


def peak_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


@contextlib.contextmanager
def bytecode_without_stdlib() -> Iterator[dict[str, str]]:
    """An environment whose bytecode cache holds the package's and the libraries' compiled code only."""
    with tempfile.TemporaryDirectory() as cache:
        subprocess.run([sys.executable, "-X", f"pycache_prefix={cache}", "-m", "compileall", "-q",
                        *site.getsitepackages(), str(REPO / "exporter")], check=True, stdout=subprocess.DEVNULL)
        yield {"PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": "1"}


def one_run(url: str, settle: float, env: dict[str, str]) -> tuple[float, float, float]:
    port = free_port()
    args = ["serve", "--url", url, "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    started = time.monotonic()
    with process(args, env={"JFROG_ACCESS_TOKEN": TOKEN, **env}) as proc:
        wait_http(f"http://127.0.0.1:{port}/-/ready")
        ready = time.monotonic() - started
        time.sleep(settle)
        return ready, rss_mb(proc.pid), peak_mb(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after /-/ready")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--uncompiled-stdlib", action="store_true",
                        help="the standard library without bytecode, as official python images ship it")
    args = parser.parse_args()
    rss: list[float] = []
    ready: list[float] = []
    with simulator(args.scenario) as url, \
            bytecode_without_stdlib() if args.uncompiled_stdlib else contextlib.nullcontext({}) as env:
        for run in range(args.runs):
            took, now, peak = one_run(url, args.settle, env)
            rss.append(now)
            ready.append(took)
            print(f"run {run + 1}: ready after {took:.2f} s, RSS {now:.1f} MB, peak {peak:.1f} MB")
    print(f"serve on {args.scenario}, idle RSS median: {statistics.median(rss):.1f} MB "
          f"(min {min(rss):.1f}, max {max(rss):.1f}); ready after {statistics.median(ready):.2f} s (median)")


if __name__ == "__main__":
    main()
