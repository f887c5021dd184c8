"""Copy the alerting rules, their runbook and the dashboards into the Helm chart.

    python helm/sync_files.py           # rewrite helm/jfrog-exporter/files/{alerts,dashboards}
    python helm/sync_files.py --check   # exit 1 when the chart's copies differ from the sources

The chart carries copies, not links: Helm warns about every symbolic link it follows and a packaged
chart must be self-contained. alerts/ and dashboards/ stay the sources; run this after generating
them (a test fails while the copies are out of date).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHART_FILES = REPO / "helm" / "jfrog-exporter" / "files"

#: folder under files/ -> (source folder, patterns of the files the chart reads or ships)
SOURCES: dict[str, tuple[Path, tuple[str, ...]]] = {
    "alerts": (REPO / "alerts", ("*.yaml", "runbook.md")),
    "dashboards": (REPO / "dashboards", ("*.json",)),
}


def expected() -> dict[str, bytes]:
    """Path under files/ -> content, as the sources hold it now."""
    out: dict[str, bytes] = {}
    for folder, (source, patterns) in SOURCES.items():
        for pattern in patterns:
            for path in sorted(source.glob(pattern)):
                if path.is_file():
                    out[f"{folder}/{path.name}"] = path.read_bytes()
    return out


def present(files: Path = CHART_FILES) -> dict[str, bytes]:
    """Path under files/ -> content of what the chart holds now in the synchronised folders."""
    return {f"{folder}/{p.name}": p.read_bytes()
            for folder in SOURCES for p in sorted((files / folder).glob("*")) if p.is_file()}


def drift(files: Path = CHART_FILES) -> list[str]:
    """One line per file whose copy is missing, stale or left over."""
    want, have = expected(), present(files)
    lines = [f"files/{name}: missing" for name in sorted(set(want) - set(have))]
    lines += [f"files/{name}: differs from its source" for name in sorted(set(want) & set(have))
              if want[name] != have[name]]
    lines += [f"files/{name}: no longer in the sources" for name in sorted(set(have) - set(want))]
    return lines


def sync(files: Path = CHART_FILES) -> None:
    want = expected()
    for folder in SOURCES:
        target = files / folder
        if target.is_symlink():
            target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for path in target.iterdir():
            if f"{folder}/{path.name}" not in want:
                path.unlink()
    for name, content in want.items():
        path = files / name
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report copies that differ from the sources")
    args = parser.parse_args(argv)
    if args.check:
        stale = drift()
        for line in stale:
            print(f"helm/jfrog-exporter/{line}: run python helm/sync_files.py", file=sys.stderr)
        return 1 if stale else 0
    sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
