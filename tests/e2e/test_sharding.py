"""Two `serve --shard` processes over one configuration share its targets; a reload keeps the rule."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from exporter.sharding import shard_of
from exporter.simulator.core import DEFAULT_TOKEN
from tests.support import exporter, scrape, series, simulator


def _config(path: Path, url: str, names: list[str]) -> None:
    path.write_text("targets:\n" + "".join(
        f"  - {{name: {name}, url: {url!r}, auth: {{token_env: SIM_TOKEN}}}}\n"
        for name in names))


def _watched(url: str) -> set[str]:
    return {s["target"] for s in series(scrape(url), "jfrog_up")}


def test_two_shards_each_expose_only_their_targets_and_reload_applies_the_shard(tmp_path: Path) -> None:
    names = ["eu", "us", "ap", "prod", "qa"]
    wanted = {i: {n for n in names if shard_of(n, 2) == i} for i in (0, 1)}
    assert wanted[0] and wanted[1], "names on both shards"
    config = tmp_path / "fleet.yaml"
    env = {"SIM_TOKEN": DEFAULT_TOKEN}
    with simulator(tmp_path, "healthy") as sim:
        _config(config, sim.url, names)
        with exporter(tmp_path, "--config", str(config), "--collector", "health", "--shard", "0/2", env=env) as first, \
                exporter(tmp_path, "--config", str(config), "--collector", "health",
                         env=env | {"JFROG_EXPORTER_SHARD": "1/2"}) as second:
            assert _watched(first.url) == wanted[0]
            assert _watched(second.url) == wanted[1]
            assert f"shard 0/2: watching {len(wanted[0])} of 5 configured target(s)" in first.output()

            added = [n for n in ("ci", "dev", "staging", "lab") if shard_of(n, 2) == 1][:1]
            _config(config, sim.url, names + added)
            second.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while _watched(second.url) != wanted[1] | set(added):
                assert time.monotonic() < deadline, second.output()
                time.sleep(0.1)
            assert f"shard 1/2: watching {len(wanted[1]) + 1} of 6 configured target(s)" in second.output()
            assert _watched(first.url) == wanted[0], "the other shard did not reload and keeps its share"


def test_a_shard_with_no_target_is_ready_and_serves_its_own_metrics(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text("targets:\n  - {name: eu, url: 'http://127.0.0.1:9', auth: {token_env: SIM_TOKEN}}\n")
    empty = 1 - shard_of("eu", 2)
    with exporter(tmp_path, "--config", str(config), "--shard", f"{empty}/2",
                  env={"SIM_TOKEN": DEFAULT_TOKEN}) as exp:
        samples = scrape(exp.url)
        assert not series(samples, "jfrog_up")
        assert series(samples, "jfrog_exporter_build_info")
        assert "for no target: only the exporter's own metrics; ready now" in exp.output()
