"""Does any collector leak? Python heap and resident size over many cycles, collector by collector.

    python -m benchmarks.bench_memory [--scale 5000] [--warm 10] [--cycles 40] [COLLECTOR ...]

Each collector runs alone against the simulator's `large` scenario; after the
warm-up, tracemalloc measures how much the Python heap grows over --cycles
more runs (a leak shows here), beside the growth of the resident size (which
also moves with the allocator's fragmentation).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tracemalloc

from benchmarks.common import TOKEN, rss_mb, simulator
from exporter.collectors.registry import COLLECTORS
from exporter.config import AuthConfig, TargetConfig
from exporter.scheduler import Engine


async def measure(url: str, name: str, warm: int, cycles: int) -> tuple[float, float]:
    target = TargetConfig.model_validate({"name": "bench", "url": url, "max_concurrency": 16, "timeout": "60s",
                                          "max_series": 1_000_000})
    target.auth = AuthConfig.from_values(token=TOKEN)
    engine = Engine([target], only=[name])
    try:
        for _ in range(warm):
            await engine.run_all_once()
        gc.collect()
        tracemalloc.start()
        heap, rss = tracemalloc.get_traced_memory()[0], rss_mb()
        for _ in range(cycles):
            await engine.run_all_once()
        gc.collect()
        heap_growth = (tracemalloc.get_traced_memory()[0] - heap) / 1e6
        tracemalloc.stop()
        return heap_growth, rss_mb() - rss
    finally:
        await engine.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=5000)
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("collectors", nargs="*", default=[n for n, c in COLLECTORS.items() if c.enabled_by_default])
    args = parser.parse_args()
    print(f"large scenario at {args.scale:,} repositories; growth over {args.cycles} runs after {args.warm}")
    print(f"{'collector':12} {'Python heap MB':>15} {'RSS MB':>8}")
    with simulator("large", "--scale", str(args.scale)) as url:
        for name in args.collectors:
            heap, rss = asyncio.run(measure(url, name, args.warm, args.cycles))
            print(f"{name:12} {heap:15.2f} {rss:8.1f}", flush=True)


if __name__ == "__main__":
    main()
