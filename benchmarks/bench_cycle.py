"""Collection cycles on the simulator: wall time against the ideal bound, memory, CPU, scaling.

    python benchmarks/bench_cycle.py [--latency-ms 50] [--concurrency 16] [--budget 50] [--warm 10]
                                     [--steady 50] [--scales 100,1000,10000]

For each scale (repositories in the simulated JPD; replicated, federated and
workers grow with it) it runs every default collector of one target together:
- one cycle with --latency-ms per request: requests sent, wall time, and the
  ideal bound: the longer of requests / concurrency x latency and requests /
  budget (--budget requests per second, the target's max_requests_per_second;
  0: unlimited);
- --warm cycles without latency, then --steady more: resident memory after
  the warm-up, its growth over the steady cycles, and CPU seconds per cycle.
The simulator runs in its own process, so the figures are the exporter's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from benchmarks.common import TOKEN, rss_mb, set_latency, sim_requests, simulator
from exporter.collectors.registry import COLLECTORS
from exporter.config import AuthConfig, TargetConfig
from exporter.scheduler import Engine


def _engine(url: str, concurrency: int, budget: float) -> Engine:
    target = TargetConfig.model_validate({"name": "bench", "url": url, "max_concurrency": concurrency,
                                          "max_requests_per_second": budget, "timeout": "60s",
                                          "max_series": 1_000_000})
    target.auth = AuthConfig.from_values(token=TOKEN)
    return Engine([target], only=[n for n, c in COLLECTORS.items() if c.enabled_by_default])


async def _cycle(engine: Engine) -> None:
    outcomes = await engine.run_all_once()
    failed = [o for o in outcomes if o.value not in ("success", "unsupported")]
    if failed:
        runs = {k: (r.outcome, r.reason) for k, r in engine.store.runs().items()}
        raise SystemExit(f"a collector failed: {runs}")


async def measure(url: str, args: argparse.Namespace) -> dict[str, float]:
    engine = _engine(url, args.concurrency, args.budget)
    try:
        set_latency(url, args.latency_ms)
        before = sim_requests(url)
        started = time.perf_counter()
        await _cycle(engine)
        wall = time.perf_counter() - started
        requests = sim_requests(url) - before
        budget = engine.targets["bench"].client.budget
        slowdowns = sum(budget.slowdowns.values())
        set_latency(url, 0)
        for _ in range(args.warm - 1):
            await _cycle(engine)
        gc.collect()
        rss_warm = rss_mb()
        cpu_started = time.process_time()
        for _ in range(args.steady):
            await _cycle(engine)
        cpu = (time.process_time() - cpu_started) / max(1, args.steady)
        gc.collect()
        rss_steady = rss_mb()
        payload = engine.store.payload
        series = payload.series if payload else 0
    finally:
        await engine.shutdown()
    bound = max(requests / args.concurrency * args.latency_ms / 1000,
                requests / args.budget if args.budget else 0.0)
    return {"requests": requests, "wall": wall, "bound": bound, "rss": rss_warm, "growth": rss_steady - rss_warm,
            "cpu": cpu, "series": series, "slowdowns": slowdowns}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--budget", type=float, default=TargetConfig.model_fields["max_requests_per_second"].default,
                        help="the target's max_requests_per_second (0: unlimited)")
    parser.add_argument("--warm", type=int, default=10)
    parser.add_argument("--steady", type=int, default=50)
    parser.add_argument("--scales", default="100,1000,10000")
    args = parser.parse_args()
    print(f"collectors: {', '.join(n for n, c in COLLECTORS.items() if c.enabled_by_default)}; "
          f"{args.latency_ms:g} ms per request, concurrency {args.concurrency}, "
          f"budget {f'{args.budget:g}/s' if args.budget else 'unlimited'}; "
          f"memory after {args.warm} cycles, growth over {args.steady} more")
    print(f"{'repos':>7} {'series':>8} {'requests':>9} {'wall s':>7} {'bound s':>8} {'wall/bound':>10} "
          f"{'RSS MB':>7} {'growth MB':>9} {'CPU s/cycle':>11} {'slowdowns':>9}")
    for scale in (int(s) for s in args.scales.split(",")):
        # A fresh process per scale, so memory figures do not carry over.
        with simulator("large", "--scale", str(scale)) as url:
            r = asyncio.run(measure(url, args))
        print(f"{scale:>7} {r['series']:>8.0f} {r['requests']:>9.0f} {r['wall']:>7.2f} {r['bound']:>8.2f} "
              f"{r['wall'] / r['bound']:>10.2f} {r['rss']:>7.1f} {r['growth']:>9.1f} {r['cpu']:>11.3f} "
              f"{r['slowdowns']:>9.0f}")


if __name__ == "__main__":
    main()
