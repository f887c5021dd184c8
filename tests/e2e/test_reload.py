"""A reload: targets added, removed and changed while running, every snapshot of what stays kept."""

from __future__ import annotations

from exporter.scheduler import Engine
from tests.conftest import make_target
from tests.support import parse_exposition, series


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
