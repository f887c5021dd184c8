"""Where the memory of `serve` goes: libraries imported, the Python heap by module, the snapshot store.

    python benchmarks/bench_memory_breakdown.py [--scenario large] [--targets 1] [--top 15] [--skip-round]

1. Imports: the resident size of `python -c 'import X'` for each library `serve` loads, less that of
   a bare interpreter (each in a fresh process), then the slowest imports of `exporter.cli` by
   `python -X importtime` (cumulative microseconds).
2. One round of every default collector on the simulated JPD (in this process, as `once` does),
   under tracemalloc: the live Python heap grouped by package or exporter module, and what the
   snapshot store holds (rendered families, their bytes, the payload). ``--targets N`` watches the
   simulated JPD under N names, as a fleet does (with ``--scenario healthy``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import subprocess
import sys
import tracemalloc
from collections import Counter
from pathlib import Path

from common import REPO, TOKEN, byte_compiled, rss_mb, simulator

#: what `serve` imports, in about the order it does
LIBRARIES = ["ssl", "asyncio", "pydantic", "pydantic.main", "prometheus_client", "httpx", "h11",
             "apscheduler.schedulers.asyncio", "exporter.config", "exporter.scheduler", "exporter.server",
             "exporter.cli"]
#: imported only when a configuration asks for them: a file, JSON logs, basic auth
OPTIONAL = ["yaml", "pythonjsonlogger.json", "bcrypt"]

RSS_OF = "import re, sys\n{imports}\nprint(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"


def _rss_after(imports: str) -> float:
    out = subprocess.run([sys.executable, "-c", RSS_OF.format(imports=imports)], capture_output=True, text=True,
                         check=False, cwd=byte_compiled(REPO))
    return int(out.stdout.strip()) / 1024 if out.returncode == 0 else float("nan")


def imports(top: int) -> None:
    bare = _rss_after("")
    print(f"bare interpreter: {bare:.1f} MB; per library, in fresh processes: alone, and added to those above it")
    previous = bare
    for i, name in enumerate(LIBRARIES):
        alone = _rss_after(f"import {name}") - bare
        together = _rss_after("\n".join(f"import {n}" for n in LIBRARIES[:i + 1]))
        print(f"  {name:<32} alone +{alone:5.1f} MB, added +{together - previous:5.1f} MB (total {together:5.1f})")
        previous = together
    for name in OPTIONAL:
        print(f"  {name:<32} alone +{_rss_after(f'import {name}') - bare:5.1f} MB, added +"
              f"{_rss_after(chr(10).join(f'import {n}' for n in [*LIBRARIES, name])) - previous:5.1f} MB"
              " (only when configured)")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import exporter.cli"], capture_output=True,
                         text=True, check=False, cwd=byte_compiled(REPO)).stderr
    rows = []
    for row in out.splitlines()[1:]:
        _, cumulative, name = row.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative), name))
    print(f"slowest imports of exporter.cli (cumulative µs, top {top}; packages nest):")
    for cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"  {cumulative:>9,}  {name.rstrip()}")


def _owner(filename: str) -> str:
    """The package a file belongs to (site-packages or the standard library), or the exporter's module."""
    path = Path(filename)
    parts = path.parts
    if "exporter" in parts:
        return "exporter/" + "/".join(parts[parts.index("exporter") + 1:])
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if len(parts) < 2:
        return filename  # <frozen ...>, <string>
    return "stdlib/" + (parts[-2] if parts[-2] != f"python{sys.version_info[0]}.{sys.version_info[1]}"
                        else path.stem)


def _pymalloc_arenas() -> str:
    """Python's small-object allocator: arenas held from the system against the bytes in use in them."""
    import contextlib
    import io
    import os
    import tempfile

    # sys._debugmallocstats writes to the C stderr: catch it through a file.
    with tempfile.TemporaryFile() as tmp, contextlib.redirect_stderr(io.StringIO()):
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode()
    wanted = ("# arenas allocated current", "# arenas highwater mark", "# bytes in allocated blocks",
              "# bytes in available blocks")
    return "; ".join(" ".join(line.removeprefix("# ").split()) for line in text.splitlines()
                     if line.startswith(wanted))


async def one_round(url: str, top: int, targets: int = 1) -> None:
    tracemalloc.start()
    from exporter.collectors.registry import COLLECTORS
    from exporter.config import AuthConfig, TargetConfig
    from exporter.exposition import RenderedFamily
    from exporter.scheduler import Engine

    configs = [TargetConfig.model_validate({"name": f"bench-{i:03d}", "url": url, "timeout": "60s"})
               for i in range(targets)]
    for config in configs:
        config.auth = AuthConfig.from_values(token=TOKEN)
    engine = Engine(configs, only=[n for n, c in COLLECTORS.items() if c.enabled_by_default])
    try:
        await engine.run_all_once()
        gc.collect()
        snapshot = tracemalloc.take_snapshot()
        print(f"after one round: RSS {rss_mb():.1f} MB, Python heap {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB"
              f" (peak {tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB); by owner of the allocating line:")
        owners: Counter[str] = Counter()
        for stat in snapshot.statistics("filename"):
            owners[_owner(stat.traceback[0].filename)] += stat.size
        for owner, size in owners.most_common(top):
            print(f"  {size / 1e6:7.2f} MB  {owner}")
        store = engine.store
        families = [f for parts in store._rendered.values() for fams in parts.values() for f in fams]
        payload = store.payload
        assert payload is not None
        print(f"snapshot store: {len(families):,} rendered families, {sum(len(f.samples) for f in families) / 1e6:.1f}"
              f" MB of sample lines, {payload.series:,} series; payload gzip {len(payload.text_gzip) / 1e6:.2f} MB")
        tracemalloc.stop()  # while it traces, the allocator's statistics are not available
        arenas = _pymalloc_arenas()
        if arenas:
            print(f"  pymalloc: {arenas}")
        kinds = Counter(type(o).__name__ for o in gc.get_objects())
        print(f"  RenderedFamily objects alive: {kinds[RenderedFamily.__name__]:,}; most common objects tracked by"
              " the collector: " + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common(8)))
    finally:
        await engine.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="large")
    parser.add_argument("--targets", type=int, default=1, help="names the simulated JPD is watched under")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--skip-round", action="store_true", help="only the imports")
    args = parser.parse_args()
    imports(args.top)
    if not args.skip_round:
        with simulator(args.scenario) as url:
            asyncio.run(one_round(url, args.top, args.targets))


if __name__ == "__main__":
    main()
