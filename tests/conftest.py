from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.config import AuthConfig, TargetConfig
from exporter.recording import load_recording
from exporter.scheduler import Engine
from exporter.simulator import replay, scenarios
from exporter.simulator.app import start
from exporter.simulator.core import DEFAULT_TOKEN, SimState
from tests.support import Samples, parse_exposition


class InProcessSimulator:
    """A simulated JPD on a free loopback port inside the test's event loop."""

    def __init__(self) -> None:
        self.runners: list[Any] = []

    async def start(self, scenario: str = "healthy", scale: int | None = None, **state: Any) -> tuple[str, SimState]:
        sim_state = SimState(scenarios.build(scenario, scale=scale), **state)
        runner, port = await start(sim_state)
        self.runners.append(runner)
        return f"http://127.0.0.1:{port}", sim_state

    async def replay(self, directory: Path) -> tuple[str, replay.ReplayState]:
        """A recording written by `record`, served as `simulate --replay` serves it."""
        state = replay.ReplayState(load_recording(directory))
        runner, port = await replay.start(state)
        self.runners.append(runner)
        return f"http://127.0.0.1:{port}", state


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No JFROG_* variable of the machine running the tests: configuration comes from the test alone."""
    for name in list(os.environ):
        if name.startswith("JFROG_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.fixture
async def sim() -> AsyncIterator[InProcessSimulator]:
    simulator = InProcessSimulator()
    yield simulator
    for runner in simulator.runners:
        await runner.cleanup()


def make_target(url: str, name: str = "sim", token: str = DEFAULT_TOKEN, **fields: Any) -> TargetConfig:
    """A target on the simulator. Without a request budget unless one is given: the tests of what is collected
    would spend most of their time waiting for it (tests/e2e/test_budget.py and tests/unit/test_budget.py test
    it; the tests that run ``serve`` and ``demo`` as processes keep the default)."""
    fields.setdefault("max_requests_per_second", 0)
    target = TargetConfig.model_validate({"name": name, "url": url, **fields})
    target.auth = AuthConfig.from_values(token=token)
    return target


@pytest.fixture
def collect_once() -> Callable[..., Any]:
    """Run collectors once against targets in-process; returns (samples, engine)."""

    async def run(targets: list[TargetConfig], only: list[str] | None = None) -> tuple[Samples, Engine]:
        engine = Engine(targets, only)
        try:
            await engine.run_all_once()
        finally:
            await engine.shutdown()
        assert engine.store.payload is not None
        return parse_exposition(engine.store.payload.text.decode()), engine

    return run


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-seconds", default="30", help="duration of the soak test (default 30)")


#: the layer of each test folder, as a marker: `pytest -m unit` runs the fast layer alone
LAYERS = ("unit", "e2e", "packaging")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(Path(__file__).parent).parts
        if parts and parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
