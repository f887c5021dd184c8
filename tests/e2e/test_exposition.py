"""The exposition stays valid whatever the JPD sends: escaping, caps, one block per family."""

from __future__ import annotations

import subprocess

import pytest

from exporter.collectors.storage import REPO_FILES
from exporter.exposition import render_families
from exporter.families import Emitter
from exporter.scheduler import Engine
from exporter.simulator.scenarios import Repo
from exporter.snapshot import render_groups
from tests.conftest import make_target
from tests.support import ensure_prometheus, parse_exposition, series, value

AWKWARD = ['quo"te', "back\\slash", "new\nline", "ünïcødé-仓库", "tab\there"]


def test_label_values_are_escaped_in_both_formats() -> None:
    out = Emitter('tar"get\\')
    for i, name in enumerate(AWKWARD):
        out.gauge(REPO_FILES, i, repo=name, repo_type="local", package_type="generic")
    payload = render_groups(1, [render_families(out.families())])
    samples = parse_exposition(payload.text.decode())
    for i, name in enumerate(AWKWARD):
        assert value(samples, "jfrog_storage_repo_files", repo=name, target='tar"get\\') == i
    check = subprocess.run([str(ensure_prometheus()), "check", "metrics"], input=payload.text, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b'repo="quo\\"te"' in payload.text and b'repo="new\\nline"' in payload.text
    assert payload.openmetrics.rstrip().endswith(b"# EOF")


async def test_awkward_repository_names_from_the_jpd(sim, collect_once) -> None:
    url, state = await sim.start("healthy")
    for name in AWKWARD:
        state.scenario.repos.append(Repo(name, "LOCAL", "Generic", 1024, 1, 1))
    samples, _ = await collect_once([make_target(url)], only=["storage"])
    for name in AWKWARD:
        assert value(samples, "jfrog_storage_repo_used_bytes", repo=name) == 1024


@pytest.mark.parametrize("storage_first", [False, True], ids=["together", "storage-first"])
async def test_series_cap_drops_and_counts(sim, storage_first: bool) -> None:
    url, _ = await sim.start("large")
    engine = Engine([make_target(url, max_series=1000)], only=["health", "storage"])
    try:
        if storage_first:  # enough series to take the whole cap, reported before health's
            await engine.run_collector("sim", "storage")
            await engine.run_collector("sim", "health")
            await engine.render_now()
        else:
            await engine.run_all_once()
        payload = engine.store.payload
        assert payload is not None
        samples = parse_exposition(payload.text.decode())
    finally:
        await engine.shutdown()
    collected = sum(len(f.samples) for c in ("health", "storage") for f in engine.store.families("sim", c))
    assert collected <= 1000
    dropped = value(samples, "jfrog_exporter_series_dropped_total", collector="storage")
    assert dropped is not None and dropped > 39_000  # 10,000 repositories x 4 families
    assert value(samples, "jfrog_up") == 1  # health's series keep their share whichever reported first
    assert value(samples, "jfrog_exporter_series_dropped_total", collector="health") in (None, 0)
    assert len(series(samples, "jfrog_storage_repo_used_bytes")) < 1000


async def test_one_family_cannot_take_the_whole_budget(sim, caplog) -> None:
    url, _ = await sim.start("large", scale=600)
    engine = Engine([make_target(url, max_series_per_family=250)], only=["health", "storage"])
    try:
        await engine.run_all_once()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
    finally:
        await engine.shutdown()
    for family in ("jfrog_storage_repo_used_bytes", "jfrog_storage_repo_files"):
        assert len(series(samples, family)) == 250
    dropped = value(samples, "jfrog_exporter_series_dropped_total", collector="storage")
    assert dropped is not None and dropped >= 4 * (600 - 250)
    assert value(samples, "jfrog_up") == 1
    assert "more than max_series_per_family=250" in caplog.text
