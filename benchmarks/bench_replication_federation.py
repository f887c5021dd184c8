"""Cycle cost of the replication and federation collectors against the `large` scenario.

Starts a simulated JPD (`large`: 2,000 replicated repositories, 500 federated
repositories with 3 members each) with a fixed latency per request, runs each
collector for a few cycles and prints, per cycle: requests, wall time, and the
ideal bound requests / concurrency x latency (what a perfectly packed run under
the target's concurrency limit would take). The goal is wall time <= 1.25 x bound.

    python benchmarks/bench_replication_federation.py [--latency-ms 50] [--concurrency 8] [--cycles 3]

Pass --url to measure an already running simulator (its latency must match
--latency-ms). Exit code 0, or 1 with --strict when a steady-state cycle
misses the goal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.common import simulator  # noqa: E402
from exporter.client import JfrogClient  # noqa: E402
from exporter.collectors.registry import COLLECTORS  # noqa: E402
from exporter.config import AuthConfig, TargetConfig  # noqa: E402
from exporter.simulator.core import DEFAULT_TOKEN  # noqa: E402

GOAL = 1.25


@dataclass
class Cycle:
    collector: str
    cycle: int
    requests: int
    server_requests: int
    samples: int
    wall: float
    bound: float

    @property
    def ratio(self) -> float:
        return self.wall / self.bound if self.bound else float("inf")


@contextlib.contextmanager
def _simulator(latency_ms: float) -> Iterator[str]:
    with simulator("large", "--latency-ms", str(latency_ms), "--log-level", "warning") as url:
        yield url


async def _server_requests(http: httpx.AsyncClient, url: str) -> int:
    return int((await http.get(url + "/-/simulator")).json()["requests"])


async def _measure(url: str, names: list[str], latency_ms: float, concurrency: int, cycles: int) -> list[Cycle]:
    target = TargetConfig.model_validate({"name": "bench", "url": url, "max_concurrency": concurrency,
                                          "timeout": 60})
    target.auth = AuthConfig.from_values(token=DEFAULT_TOKEN)
    out: list[Cycle] = []
    async with httpx.AsyncClient() as control:
        for name in names:
            client = JfrogClient(target)
            collector = COLLECTORS[name](target, target.collector_settings(name))
            try:
                for cycle in range(1, cycles + 1):
                    before, server_before = client.stats.total(), await _server_requests(control, url)
                    started = time.perf_counter()
                    families = list(await collector.collect(client))
                    wall = time.perf_counter() - started
                    requests = client.stats.total() - before
                    server = await _server_requests(control, url) - server_before
                    samples = sum(len(f.samples) for f in families)
                    out.append(Cycle(name, cycle, requests, server, samples, wall,
                                     requests / concurrency * latency_ms / 1000.0))
            finally:
                await client.aclose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="latency per request (default 50)")
    parser.add_argument("--concurrency", type=int, default=8, help="the target's max_concurrency (default 8)")
    parser.add_argument("--cycles", type=int, default=3, help="cycles per collector (default 3)")
    parser.add_argument("--collector", action="append", choices=["replication", "federation"],
                        help="collector to measure (default both)")
    parser.add_argument("--url", help="an already running simulator of the large scenario")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a steady-state cycle misses the goal")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    names = args.collector or ["replication", "federation"]

    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(_simulator(args.latency_ms))
        results = asyncio.run(_measure(url, names, args.latency_ms, args.concurrency, args.cycles))

    print(f"scenario large, latency {args.latency_ms:g} ms per request, concurrency {args.concurrency}")
    print(f"{'collector':<12} {'cycle':>5} {'requests':>9} {'server':>7} {'series':>7} {'wall s':>8} "
          f"{'bound s':>8} {'wall/bound':>10}")
    missed = False
    for c in results:
        print(f"{c.collector:<12} {c.cycle:>5} {c.requests:>9} {c.server_requests:>7} {c.samples:>7} "
              f"{c.wall:>8.2f} {c.bound:>8.2f} {c.ratio:>10.3f}")
        # The first federation cycle may include mode detection; steady state is what is judged.
        if c.cycle > 1 and c.ratio > GOAL:
            missed = True
    print(f"goal: wall <= {GOAL} x bound from cycle 2 on: {'missed' if missed else 'met'}")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
