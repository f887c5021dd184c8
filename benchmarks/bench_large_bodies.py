"""Peak memory of one collection round when every endpoint of the JPD answers a large body.

    python benchmarks/bench_large_bodies.py [--runs 3]

The simulator answers every route with its `huge` fault (a 50 MB JSON body, under the default 64 MB
cap); `once` runs every collector against it. Prints, per run, the peak resident size of the `once`
process (ru_maxrss of the child) and its wall time, then the medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from common import REPO, TOKEN, simulator


def one_run(url: str) -> tuple[float, float]:
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child runs `once`, quietly; the parent reads its peak from wait4's rusage
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        os.execve(sys.executable, [sys.executable, "-m", "exporter", "once", "--url", url],
                  {**os.environ, "JFROG_ACCESS_TOKEN": TOKEN, "PYTHONPATH": str(REPO)})
    _, _, usage = os.wait4(pid, 0)
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    peaks: list[float] = []
    walls: list[float] = []
    with simulator("healthy", "--fault", "*=huge") as url:
        for run in range(args.runs):
            peak, wall = one_run(url)
            peaks.append(peak)
            walls.append(wall)
            print(f"run {run + 1}: peak RSS {peak:.0f} MB, {wall:.1f} s")
    print(f"once, every endpoint answering 50 MB: peak RSS median {statistics.median(peaks):.0f} MB "
          f"(min {min(peaks):.0f}, max {max(peaks):.0f}), wall median {statistics.median(walls):.1f} s")


if __name__ == "__main__":
    main()
