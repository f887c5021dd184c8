"""/metrics under concurrent scrapers, against a minimal server sending the same bytes.

    python benchmarks/bench_scrape.py [--seconds 10] [--connections 16]

Runs the simulator's `large` scenario and exporters watching it:
- one idle (collectors every hour) to count requests sent to the JPD per scrape;
- one with the default intervals, measured with the JPD answering at once and
  then with 500 ms per request (collection cycles are then in flight during
  the whole measurement);
- one collecting every 5 s at 0 ms, a stress case where collection takes most
  of a core beside the scrapers: answered by a thread of the collecting process
  (``--web.serving-process shared``, what ``auto`` does for one target), then by a
  process of its own (``own``).
Prints p50/p99 latency and requests/s of each, and the ratios to the baseline.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    REPO,
    TOKEN,
    free_port,
    process,
    served_gzip,
    set_latency,
    sim_requests,
    simulator,
    wait_http,
    wrk,
)


def _config(path: Path, url: str, interval: str) -> Path:
    collectors = ", ".join(f"{name}: {{interval: {interval}}}" if interval else f"{name}: {{}}"
                           for name in _collectors())
    path.write_text(
        f"targets:\n  - name: large\n    url: {url}\n    auth: {{token_env: BENCH_TOKEN}}\n"
        f"    timeout: 30s\n    max_concurrency: 16\n    collectors: {{{collectors}}}\n"
    )
    return path


def _collectors() -> list[str]:
    from exporter.collectors.registry import COLLECTORS

    return [name for name, cls in COLLECTORS.items() if cls.enabled_by_default]


@contextlib.contextmanager
def _exporter(config: Path, serving: str = "auto") -> object:
    port = free_port()
    with process(["serve", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-level", "error",
                  "--web.serving-process", serving], env={"BENCH_TOKEN": TOKEN}) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/-/ready", timeout=600)
        yield url, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    rows = []
    with simulator("large") as sim:
        with _exporter(_config(tmp / "idle.yaml", sim, "1h")) as (idle, _):
            text, raw = served_gzip(idle)
            series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
            before = sim_requests(sim)
            result = wrk(idle + "/metrics", args.seconds, args.connections)
            per_scrape = (sim_requests(sim) - before) / max(1.0, result.requests_per_second * args.seconds)
            rows.append(("idle (collectors hourly)", result))
        payload = tmp / "payload.gz"
        payload.write_bytes(raw)
        port = free_port()
        baseline_proc = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "baseline_server.py"), str(port), str(payload),
             "text/plain; version=0.0.4; charset=utf-8", "gzip"])
        try:
            time.sleep(1.0)
            baseline = wrk(f"http://127.0.0.1:{port}/metrics", args.seconds, args.connections)
        finally:
            baseline_proc.terminate()
        with _exporter(_config(tmp / "default.yaml", sim, "")) as (default, _):
            rows.append(("default intervals, JPD 0 ms", wrk(default + "/metrics", args.seconds, args.connections)))
            set_latency(sim, 500)
            time.sleep(2)
            rows.append(("default intervals, JPD 500 ms",
                         wrk(default + "/metrics", args.seconds, args.connections)))
            set_latency(sim, 0)
        for serving in ("shared", "own"):
            with _exporter(_config(tmp / "busy.yaml", sim, "5s"), serving) as (busy, _):
                rows.append((f"every 5 s, JPD 0 ms (stress), {serving}",
                             wrk(busy + "/metrics", args.seconds, args.connections)))
    print(f"payload: {series:,} series, {len(text) / 1e6:.1f} MB text, {len(raw) / 1e6:.2f} MB gzip; "
          f"{args.connections} connections for {args.seconds}s each (wrk, Accept-Encoding: gzip)")
    print(f"{'server':40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p50 x':>6} {'p99 x':>6} {'req/s x':>7}")
    print(f"{'baseline (same bytes from memory)':40} {baseline.requests_per_second:9.0f} "
          f"{baseline.p50_ms:8.2f} {baseline.p99_ms:8.2f}")
    for name, r in rows:
        print(f"{name:40} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
              f"{r.p50_ms / baseline.p50_ms:6.2f} {r.p99_ms / baseline.p99_ms:6.2f} "
              f"{baseline.requests_per_second / r.requests_per_second:7.2f}")
    print(f"requests sent to the JPD per scrape: {per_scrape:.4f}")


if __name__ == "__main__":
    main()
