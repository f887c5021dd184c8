"""Python's small-object arenas in `serve` watching one simulated JPD: how many, how full, and when they filled.

    python benchmarks/bench_arenas.py [--scenario large] [--interval 15s] [--after 60]

`serve` runs as in bench_serve_rss.py (every default collector every --interval), with a thread that
reads sys.getallocatedblocks() every 20 ms and, at each new high (at most once a second), notes the
objects the garbage collector tracks, by type, and what each thread is running. --after seconds after
/-/ready it prints the resident size, the allocator's statistics (sys._debugmallocstats()) and the
busiest moment seen. Python's allocator hands an arena back only once every object in it is freed, so
the arenas counted are those of that moment, less the few emptied since. Run it with the interpreter of
a runtime-only environment, as bench_serve_rss.py.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_serve_rss import config_file, memory
from common import REPO, TOKEN, byte_compiled, free_port, simulator, wait_http

#: run in the exporter's process, before `serve`
PROBE = r"""
import collections, gc, json, os, signal, sys, threading, time
peak = {"blocks": 0}

def sample():
    noted = 0.0
    while True:
        time.sleep(0.02)
        blocks = sys.getallocatedblocks()
        if blocks > peak["blocks"] * 1.01 and time.monotonic() - noted > 1:
            noted = time.monotonic()
            kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
            running = [f"{f.f_code.co_name} ({f.f_code.co_filename.rsplit('/', 1)[-1]})"
                       for f in sys._current_frames().values()]
            peak.update(blocks=blocks, objects=kinds.most_common(8), running=running)

def report(*_):
    path = os.environ["ARENAS_REPORT"]
    fd = os.open(path + ".stats", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        sys._debugmallocstats()
    finally:
        os.dup2(saved, 2)
        os.close(fd)
        os.close(saved)
    with open(path + ".tmp", "w") as out:
        json.dump({"blocks_now": sys.getallocatedblocks(), **peak}, out)
    os.replace(path + ".tmp", path)

signal.signal(signal.SIGUSR1, report)
threading.Thread(target=sample, daemon=True).start()
from exporter.cli import main
sys.exit(main(sys.argv[1:]))
"""

STATS = ("arenas allocated total", "arenas reclaimed", "arenas highwater mark", "arenas allocated current",
         "bytes in allocated blocks", "bytes in available blocks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="large")
    parser.add_argument("--interval", default="15s", help="interval of every collector")
    parser.add_argument("--after", type=float, default=60.0, help="seconds after /-/ready")
    args = parser.parse_args()
    port = free_port()
    with simulator(args.scenario) as url, tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-c", PROBE, "serve", "--config", config_file(url, args.interval, tmp),
               "--listen", f"127.0.0.1:{port}", "--log-level", "warning"]
        env = {**os.environ, "JFROG_ACCESS_TOKEN": TOKEN, "ARENAS_REPORT": str(report)}
        proc = subprocess.Popen(cmd, cwd=byte_compiled(REPO), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=600)
            time.sleep(args.after)
            mem = memory(proc.pid)
            proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 120
            while not report.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
            found = json.loads(report.read_text())
            stats = Path(str(report) + ".stats").read_text()
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"serve on {args.scenario}, {args.after:.0f} s after ready: RSS {mem['VmRSS']:.1f} MB "
          f"(anon {mem['RssAnon']:.1f}, file {mem['RssFile']:.1f}), peak {mem['VmHWM']:.1f} MB")
    figures = {key: int(m.group(1).replace(",", "")) for key in STATS
               if (m := re.search(rf"# {key}\s+=\s+([\d,]+)", stats))}
    for key, value in figures.items():
        print(f"  {key:<28} {value / 1e6:8.1f} MB" if key.startswith("bytes") else f"  {key:<28} {value:8d}")
    arenas = figures.get("arenas allocated current", 0) * (1 << 20)
    empty = arenas - figures.get("bytes in allocated blocks", 0) - figures.get("bytes in available blocks", 0)
    print(f"  arenas {arenas / 1e6:.1f} MB, of which in empty pools and pool headers {empty / 1e6:.1f} MB")
    print(f"  allocated blocks now {found['blocks_now']:,}; at the busiest moment {found['blocks']:,}")
    print(f"    objects tracked then, by type: {found.get('objects')}")
    print(f"    running then: {found.get('running')}")


if __name__ == "__main__":
    main()
