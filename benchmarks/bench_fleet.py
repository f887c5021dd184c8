"""One `serve` process watching a fleet: 10, 100 and 300 simulated JPDs with the default collectors.

    python -m benchmarks.bench_fleet [--sizes 10,100,300] [--speedup 5] [--simulators 1] [--before DIR]

Simulated JPDs (`healthy`; one, or ``--simulators N`` with the targets spread over them) answer for every
target: the targets differ by name more than by URL. For each size, prints:
- ready: seconds from start to /-/ready (every collector of every target ran once);
- RSS and peak RSS (MB) at the end of the measured window, and per target; from 20 targets on `serve` answers
  HTTP from a process of its own (``--web.serving-process auto``): RSS is then the sum of both processes (the
  pages they share counted twice), PSS what they take together (shared pages counted once), peak the sum
  of their peaks;
- collection CPU per hour and JPD requests per hour. Every default interval is divided by
  ``--speedup`` and the window lasts the longest one (600 s ÷ speedup): the window then holds the runs
  of 600 s at the default intervals, scaled ×6 to an hour. Runs skipped because the previous one was
  still going are printed: a saturated process under-reports;
- scrape p50/p99 (wrk, 16 connections, gzip) against a minimal server sending the same bytes from
  memory (benchmarks/baseline_server.py).

``--before DIR`` measures, for each size, the exporter package in DIR (e.g. ``git archive REV exporter |
tar -x -C DIR``) and then this one, side by side, so that a busy machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import (
    REPO,
    TOKEN,
    WrkResult,
    cpu_seconds,
    free_port,
    process,
    process_tree,
    served_gzip,
    sim_requests,
    simulator,
    tree_pss_mb,
    tree_rss_mb,
    wait_http,
    wrk,
)

#: the longest default interval (security): one window holds every collector's share of it
CYCLE = 600.0


def _collectors() -> dict[str, float]:
    from exporter.collectors.registry import COLLECTORS

    return {name: cls.default_interval for name, cls in COLLECTORS.items() if cls.enabled_by_default}


def _config(path: Path, urls: list[str], targets: int, speedup: float) -> Path:
    collectors = ", ".join(f"{name}: {{interval: {max(1.0, interval / speedup):g}s}}"
                           for name, interval in _collectors().items())
    path.write_text("targets:\n" + "".join(
        f"  - name: jpd-{i:03d}\n    url: {urls[i % len(urls)]}\n    auth: {{token_env: BENCH_TOKEN}}\n"
        f"    collectors: {{{collectors}}}\n" for i in range(targets)))
    return path


def _peak_mb(pid: int) -> float:
    total = 0.0
    for each in process_tree(pid):
        match = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{each}/status").read_text())
        total += int(match.group(1)) / 1024 if match else float("nan")
    return total


def _skipped(url: str) -> int:
    text = httpx.get(url + "/metrics", timeout=30).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("jfrog_exporter_runs_skipped_total{")))


def _baseline(payload: Path, seconds: int) -> WrkResult:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "baseline_server.py"), str(port),
                             str(payload), "text/plain; version=0.0.4; charset=utf-8", "gzip"])
    try:
        time.sleep(1.0)
        return wrk(f"http://127.0.0.1:{port}/metrics", seconds)
    finally:
        proc.terminate()
        proc.wait(10)


def _serve(tree: Path, args: list[str]) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    """`serve` of the exporter package in ``tree`` (imported from there, first on the path)."""
    return process(["serve", *args], env={"BENCH_TOKEN": TOKEN, "PYTHONPATH": str(tree)}, cwd=tree)


def one_size(sims: list[str], targets: int, speedup: float, seconds: int, tmp: Path, tree: Path,
             ready_within: float) -> dict[str, float] | None:
    """The figures of one process watching ``targets``; None when it was not ready within ``ready_within``."""
    config = _config(tmp / f"fleet-{targets}.yaml", sims, targets, speedup)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with _serve(tree, ["--config", str(config), "--listen", f"127.0.0.1:{port}", "--log-level", "error"]) as proc:
        try:
            wait_http(url + "/-/ready", timeout=ready_within)
        except SystemExit:
            print(f"{targets} targets ({tree}): not ready within {ready_within:g} s, "
                  f"RSS {tree_rss_mb(proc.pid):.1f} MB",
                  file=sys.stderr, flush=True)
            return None
        ready = time.monotonic() - started
        window = CYCLE / speedup
        cpu0, req0, t0 = cpu_seconds(proc.pid), sum(map(sim_requests, sims)), time.monotonic()
        time.sleep(window)
        cpu1, req1, t1 = cpu_seconds(proc.pid), sum(map(sim_requests, sims)), time.monotonic()
        rss, pss, peak = tree_rss_mb(proc.pid), tree_pss_mb(proc.pid), _peak_mb(proc.pid)
        skipped = _skipped(url)
        payload = tmp / f"payload-{targets}.gz"
        text, raw = served_gzip(url)
        payload.write_bytes(raw)
        scrape = wrk(url + "/metrics", seconds)
    baseline = _baseline(payload, seconds)
    per_hour = 3600 / CYCLE * window / (t1 - t0)  # the window holds the runs of one 600 s cycle
    series = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
    return {"targets": targets, "ready": ready, "rss": rss, "pss": pss, "peak": peak,
            "cpu_h": (cpu1 - cpu0) * per_hour,
            "cpu_window": (cpu1 - cpu0) / (t1 - t0), "req_h": (req1 - req0) * per_hour, "skipped": skipped,
            "series": series, "p50": scrape.p50_ms, "p99": scrape.p99_ms, "base_p50": baseline.p50_ms,
            "base_p99": baseline.p99_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,300", help="numbers of targets, comma-separated")
    parser.add_argument("--speedup", type=float, default=5.0, help="divide every default interval by this")
    parser.add_argument("--seconds", type=int, default=10, help="wrk's duration per measurement")
    parser.add_argument("--before", type=Path, metavar="DIR", help="also measure the exporter package in DIR")
    parser.add_argument("--simulators", type=int, default=1,
                        help="simulated JPDs the targets are spread over (one Python process each): a single one "
                        "saturates before a large fleet does, and runs are then skipped")
    parser.add_argument("--ready-within", type=float, default=900.0, help="seconds to wait for /-/ready")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    trees = [("before", args.before.resolve()), ("after", REPO)] if args.before else [("", REPO)]
    rows: list[tuple[str, dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        sims = [stack.enter_context(simulator("healthy")) for _ in range(args.simulators)]
        for size in (int(s) for s in args.sizes.split(",")):
            for label, tree in trees:
                row = one_size(sims, size, args.speedup, args.seconds, tmp, tree, args.ready_within)
                if row is not None:
                    rows.append((label, row))
                    print(f"{size} targets {label}: RSS {row['rss']:.1f} MB", file=sys.stderr, flush=True)
    print(f"default collectors ({', '.join(_collectors())}), intervals ÷ {args.speedup:g}, window "
          f"{CYCLE / args.speedup:g} s scaled to an hour; {args.simulators} simulator(s); wrk 16 connections × "
          f"{args.seconds} s, gzip")
    print(f"{'':6} {'targets':>7} {'series':>8} {'ready s':>8} {'RSS MB':>7} {'PSS MB':>7} {'peak MB':>8} "
          f"{'MB/target':>9} "
          f"{'CPU s/h':>8} {'core %':>6} {'JPD req/h':>10} {'skipped':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'p99 base':>8} {'p99 x':>6}")
    for label, r in rows:
        print(f"{label:6} {r['targets']:7.0f} {r['series']:8,.0f} {r['ready']:8.1f} {r['rss']:7.1f} {r['pss']:7.1f} "
              f"{r['peak']:8.1f} "
              f"{r['rss'] / r['targets']:9.2f} {r['cpu_h']:8.0f} {100 * r['cpu_h'] / 3600:6.1f} "
              f"{r['req_h']:10,.0f} {r['skipped']:7.0f} {r['p50']:7.2f} {r['p99']:7.2f} {r['base_p99']:8.2f} "
              f"{r['p99'] / r['base_p99']:6.2f}")
    for label, _ in trees:
        mine = [r for name, r in rows if name == label]
        if len(mine) > 1:
            first, last = mine[0], mine[-1]
            marginal = (last["rss"] - first["rss"]) / (last["targets"] - first["targets"])
            print(f"{label or 'memory'} per added target: {marginal:.2f} MB "
                  f"({first['targets']:.0f} → {last['targets']:.0f} targets)")


if __name__ == "__main__":
    main()
