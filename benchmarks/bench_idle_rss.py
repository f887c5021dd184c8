"""Idle memory of `serve` watching one simulated JPD, after its first collection rounds.

    python benchmarks/bench_idle_rss.py [--scenario healthy] [--settle 20] [--runs 3]

Prints, per run, the resident size of the exporter process (VmRSS) and its peak (VmHWM),
then the median. The simulator runs in a process of its own and is not counted.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

from common import TOKEN, free_port, process, rss_mb, simulator, wait_http


def peak_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def one_run(url: str, settle: float) -> tuple[float, float]:
    port = free_port()
    args = ["serve", "--url", url, "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
    with process(args, env={"JFROG_ACCESS_TOKEN": TOKEN}) as proc:
        wait_http(f"http://127.0.0.1:{port}/-/ready")
        time.sleep(settle)
        return rss_mb(proc.pid), peak_mb(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="healthy")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait after /-/ready")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rss: list[float] = []
    with simulator(args.scenario) as url:
        for run in range(args.runs):
            now, peak = one_run(url, args.settle)
            rss.append(now)
            print(f"run {run + 1}: RSS {now:.1f} MB, peak {peak:.1f} MB")
    print(f"serve on {args.scenario}, idle RSS median: {statistics.median(rss):.1f} MB "
          f"(min {min(rss):.1f}, max {max(rss):.1f})")


if __name__ == "__main__":
    main()
