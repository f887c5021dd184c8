"""Requests an exporter sends the JPD per hour at default settings, replayed on a virtual clock.

    python -m benchmarks.bench_requests [--scenario large] [--hours 2]

Every default collector of one target runs at its default interval, in order
of its start times, over --hours of virtual time (the engine's clock is set to
each run's time; the JPD's answers are the simulator's, in its own process).
It prints requests per hour and per collector: the first hour (the first
round reads everything) and the last one (steady state). Code that reads
every detail every run gives the same figure for both.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import inspect
from collections import Counter

from benchmarks.common import TOKEN, sim_requests, simulator
from exporter.collectors.registry import COLLECTORS
from exporter.config import AuthConfig, TargetConfig
from exporter.scheduler import Engine

START = 1_800_000_000.0  # a fixed day, so schedules replay the same way


class VirtualClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


async def replay(url: str, hours: int) -> list[Counter[str]]:
    target = TargetConfig.model_validate({"name": "bench", "url": url, "max_concurrency": 16, "timeout": "60s",
                                          "max_series": 1_000_000})
    target.auth = AuthConfig.from_values(token=TOKEN)
    names = [n for n, c in COLLECTORS.items() if c.enabled_by_default]
    clock = VirtualClock()
    kwargs = {"clock": clock} if "clock" in inspect.signature(Engine).parameters else {}
    engine = Engine([target], only=names, **kwargs)
    collectors = engine.targets["bench"].collectors
    due = [(START, name) for name in names]
    heapq.heapify(due)
    per_hour: list[Counter[str]] = [Counter() for _ in range(hours)]
    try:
        while due and due[0][0] < START + hours * 3600:
            at, name = heapq.heappop(due)
            clock.now = at
            before = sim_requests(url)
            await engine.run_collector("bench", name)
            per_hour[int((at - START) // 3600)][name] += sim_requests(url) - before
            heapq.heappush(due, (at + collectors[name].interval, name))
    finally:
        await engine.shutdown()
    return per_hour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="large")
    parser.add_argument("--hours", type=int, default=2)
    args = parser.parse_args()
    with simulator(args.scenario) as url:
        hours = asyncio.run(replay(url, args.hours))
    names = sorted({name for hour in hours for name in hour}, key=lambda n: -hours[-1][n])
    print(f"scenario {args.scenario}: JPD requests per hour at default settings")
    print("| hour | total | " + " | ".join(names) + " |")
    print("| --- " * (len(names) + 2) + "|")
    for i, hour in enumerate(hours, start=1):
        print(f"| {i} | {sum(hour.values()):,} | " + " | ".join(f"{hour[n]:,}" for n in names) + " |")


if __name__ == "__main__":
    main()
