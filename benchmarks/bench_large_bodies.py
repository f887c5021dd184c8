"""Peak memory of one collection round when every endpoint of the JPD answers a large body.

    python benchmarks/bench_large_bodies.py [--runs 3] [--size-mb 50] [--cap-mb N]

The simulator answers every route with its `huge` fault (a JSON body of --size-mb MB); `once` runs every
collector against it, with the default cap on answers or --cap-mb. Prints, per run, the peak resident size of the `once`
process (ru_maxrss of the child) and its wall time, then the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import REPO, TOKEN, simulator


def one_run(url: str, cap_mb: int | None) -> tuple[float, float]:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child runs `once`, quietly; the parent reads its peak from wait4's rusage
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        env = {**os.environ, "JFROG_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
        args = ["--url", url]
        if cap_mb is not None:
            config = Path(tempfile.mkdtemp()) / "config.yaml"
            config.write_text(f"targets:\n  - url: {url}\n    auth: {{token_env: JFROG_ACCESS_TOKEN}}\n"
                              f"    max_response_bytes: {cap_mb << 20}\n")
            args = ["--config", str(config)]
        os.execve(sys.executable, [sys.executable, "-m", "exporter", "once", *args], env)
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--cap-mb", type=int, default=None)
    args = parser.parse_args()
    peaks: list[float] = []
    walls: list[float] = []
    with simulator("healthy") as url:
        fault = {"route": "*", "kind": "huge", "size": args.size_mb << 20}
        httpx.post(url + "/-/simulator", json={"faults": [fault]}, timeout=10).raise_for_status()
        for run in range(args.runs):
            peak, wall = one_run(url, args.cap_mb)
            peaks.append(peak)
            walls.append(wall)
            print(f"run {run + 1}: peak RSS {peak:.0f} MB, {wall:.1f} s")
    cap = f"{args.cap_mb} MB cap" if args.cap_mb is not None else "default cap"
    print(f"once, every endpoint answering {args.size_mb} MB ({cap}): "
          f"peak RSS median {statistics.median(peaks):.0f} MB (min {min(peaks):.0f}, max {max(peaks):.0f}), "
          f"wall median {statistics.median(walls):.1f} s")


if __name__ == "__main__":
    main()
