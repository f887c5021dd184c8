"""A reload: targets added, removed and changed while running, every snapshot of what stays kept."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_TOKEN
from tests.conftest import make_target
from tests.support import exporter, parse_exposition, scrape, series, simulator


async def test_apply_adds_removes_and_rebuilds_targets_keeping_their_data(sim) -> None:
    url, _ = await sim.start()
    a, b = make_target(url, name="a"), make_target(url, name="b")
    engine = Engine([a, b], ["health", "storage"])
    try:
        await engine.run_all_once()
        client_a = engine.targets["a"].client
        changes = await engine.apply([make_target(url, name="a"), make_target(url, name="c")])
        assert changes == ["b removed", "c added"]
        assert engine.targets["a"].client is client_a, "an unchanged target keeps its client and state"
        assert ("b", "health") not in engine.store.runs()
        assert engine.store.families("a", "storage"), "kept"

        changes = await engine.apply([make_target(url, name="a", timeout=5), make_target(url, name="c")])
        assert changes == ["a changed"]
        assert engine.targets["a"].client is not client_a
        assert engine.store.families("a", "storage"), "a changed target keeps its data until it runs"
        assert engine.store.run("a", "health").last_run is not None

        await engine.run_all_once()
        assert engine.store.payload is not None
        samples = parse_exposition(engine.store.payload.text.decode())
    finally:
        await engine.shutdown()
    assert {s["target"] for s in series(samples, "jfrog_up")} == {"a", "c"}


def _config(path: Path, *targets: tuple[str, str]) -> None:
    entries = "".join(f"  - name: {name}\n    url: {url}\n    auth: {{token_env: SIM_TOKEN}}\n"
                      f"    collectors: {{storage: {{enabled: false}}}}\n" for name, url in targets)
    path.write_text("targets:\n" + entries)


def _targets(url: str) -> set[str]:
    return {s["target"] for s in series(scrape(url), "jfrog_up")}


def _until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_sighup_and_post_reload_apply_a_new_configuration_and_refuse_a_bad_one(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    with simulator(tmp_path, "healthy") as sim:
        _config(config, ("a", sim.url))
        with exporter(tmp_path, "--config", str(config), "--web.enable-lifecycle",
                      env={"SIM_TOKEN": DEFAULT_TOKEN}) as exp:
            assert _targets(exp.url) == {"a"}

            _config(config, ("a", sim.url), ("b", sim.url))
            exp.proc.send_signal(signal.SIGHUP)
            _until(lambda: _targets(exp.url) == {"a", "b"})
            assert "configuration reloaded: b added" in exp.output()

            config.write_text("targets:\n  - url: ftp://nowhere\n")
            refused = httpx.post(exp.url + "/-/reload", timeout=10)
            assert refused.status_code == 500 and "reload refused" in refused.text
            assert "'ftp://nowhere' is not an http(s) URL" in refused.text
            assert _targets(exp.url) == {"a", "b"}, "the running configuration stays"

            _config(config, ("b", sim.url))
            done = httpx.post(exp.url + "/-/reload", timeout=10)
            assert done.status_code == 200 and done.text == "reloaded: a removed\n"
            assert _targets(exp.url) == {"b"}
            assert exp.proc.poll() is None


def test_without_the_lifecycle_flag_there_is_no_reload_endpoint_and_sighup_still_reloads(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    with simulator(tmp_path, "healthy") as sim:
        _config(config, ("a", sim.url))
        with exporter(tmp_path, "--config", str(config), env={"SIM_TOKEN": DEFAULT_TOKEN}) as exp:
            assert httpx.post(exp.url + "/-/reload", timeout=10).status_code in (404, 405)
            config.write_text("targets: [")
            exp.proc.send_signal(signal.SIGHUP)
            _until(lambda: "reload refused" in exp.output())
            assert "invalid YAML" in exp.output()
            assert _targets(exp.url) == {"a"}
            assert exp.stop() == 0
