"""Resident memory of `serve` watching one simulated JPD: once ready, then after each full round.

    python benchmarks/bench_serve_rss.py [--scenario healthy,large] [--rounds 3] [--interval 15s]
                                         [--runs 2] [--env MALLOC_ARENA_MAX=2]

Every default collector runs at --interval, so rounds follow each other quickly; a round is
complete when every collector has finished one more run (counted from the exporter's own
jfrog_exporter_collector_runs_total, scraped as Prometheus does: OpenMetrics first, gzip). Per scenario and run it
prints VmRSS with its anonymous and file-backed parts, then the peak (VmHWM). The simulator runs
in a process of its own and is not counted. Run it with another interpreter (a virtual
environment with only the runtime dependencies, as in the image) to measure that environment.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from common import TOKEN, free_port, process, simulator, wait_http

from exporter.collectors.registry import COLLECTORS

#: what Prometheus 2.x and 3.x send by default
PROMETHEUS_HEADERS = {"Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
                                "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                      "Accept-Encoding": "gzip"}
RUNS = re.compile(r'^jfrog_exporter_collector_runs_total\{collector="([^"]+)",[^}]*\} (\S+)$', re.M)


def memory(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of ``pid``, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(m.group(1)) / 1024 for key in ("VmRSS", "RssAnon", "RssFile", "VmHWM")
            if (m := re.search(rf"{key}:\s+(\d+)", status))}


def completed_rounds(port: int) -> int:
    """Runs of the collector that ran least: the rounds every collector finished."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=PROMETHEUS_HEADERS, timeout=30).text
    runs: dict[str, float] = {}
    for collector, value in RUNS.findall(text):
        runs[collector] = runs.get(collector, 0.0) + float(value)
    return int(min(runs.values())) if runs else 0


def config_file(url: str, interval: str, directory: str) -> str:
    collectors = "".join(f"      {name}: {{interval: {interval}}}\n"
                         for name, cls in COLLECTORS.items() if cls.enabled_by_default)
    path = Path(directory) / "bench.yaml"
    path.write_text(f"targets:\n  - name: bench\n    url: {url}\n    auth: {{token_env: JFROG_ACCESS_TOKEN}}\n"
                    f"    timeout: 60s\n    collectors:\n{collectors}")
    return str(path)


def line(label: str, mem: dict[str, float]) -> str:
    return (f"  {label:<10} RSS {mem['VmRSS']:6.1f} MB (anon {mem['RssAnon']:6.1f}, file {mem['RssFile']:5.1f})"
            f"  peak {mem['VmHWM']:6.1f} MB")


def one_run(url: str, args: argparse.Namespace, env: dict[str, str]) -> list[float]:
    """RSS once ready and after each round."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["serve", "--config", config_file(url, args.interval, tmp), "--listen", f"127.0.0.1:{port}",
               "--log-level", "warning"]
        with process(cmd, env={"JFROG_ACCESS_TOKEN": TOKEN, **env}) as proc:
            started = time.monotonic()
            wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=600)
            time.sleep(1)  # the first round's rendering and the memory it returns
            mem = memory(proc.pid)
            print(line(f"ready {time.monotonic() - started:.0f}s", mem))
            figures = [mem["VmRSS"]]
            done = completed_rounds(port)
            for _ in range(args.rounds):
                target = done + 1
                while (done := completed_rounds(port)) < target:
                    time.sleep(0.5)
                time.sleep(1)
                mem = memory(proc.pid)
                print(line(f"round {done}", mem))
                figures.append(mem["VmRSS"])
            return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="healthy,large", help="comma-separated simulator scenarios")
    parser.add_argument("--rounds", type=int, default=3, help="full rounds after the first")
    parser.add_argument("--interval", default="15s", help="interval of every collector")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment of the exporter process (e.g. MALLOC_ARENA_MAX=2)")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    for scenario in args.scenario.split(","):
        with simulator(scenario) as url:
            ready: list[float] = []
            last: list[float] = []
            for run in range(args.runs):
                print(f"{scenario}, run {run + 1}{' ' + ' '.join(args.env) if args.env else ''}:")
                figures = one_run(url, args, env)
                ready.append(figures[0])
                last.append(figures[-1])
            print(f"serve on {scenario}: RSS ready median {statistics.median(ready):.1f} MB, "
                  f"after {args.rounds} more rounds median {statistics.median(last):.1f} MB "
                  f"(min {min(last):.1f}, max {max(last):.1f})")


if __name__ == "__main__":
    main()
