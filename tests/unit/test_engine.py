"""The engine: parts fail alone, a bug stays in its part, back-off only when nothing answers."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from exporter.collectors.base import Collector, CollectorSettings, Part, Run
from exporter.outcomes import Outcome
from exporter.scheduler import BACKOFF_AFTER, Engine
from tests.conftest import make_target
from tests.support import Samples, parse_exposition, value

Handler = Callable[[httpx.Request], httpx.Response]

ANSWERS: dict[str, httpx.Response] = {
    "/artifactory/api/system/ping": httpx.Response(200, text="OK"),
    "/artifactory/api/v1/system/readiness": httpx.Response(200, json={"code": "OK"}),
    "/router/api/v1/system/health": httpx.Response(200, json={"router": {"node_id": "n1", "state": "HEALTHY"}}),
    "/artifactory/api/system/version": httpx.Response(200, json={"version": "7.104.3", "revision": "1"}),
    "/artifactory/api/system/licenses": httpx.Response(200, json=[
        {"type": "Enterprise", "validThrough": "Jan 1, 2030", "licensedTo": "Acme", "nodeId": "n1"}]),
    "/jfconnect/api/v1/system/ping": httpx.Response(200, text="Ok"),
    "/jfconnect/api/v1/system/readiness": httpx.Response(200, text="Ok"),
    "/access/api/v1/system/ping": httpx.Response(200, text="OK"),
    "/access/api/v1/system/federation": httpx.Response(200, json={"configurations": []}),
}


def jpd(overrides: dict[str, httpx.Response] | None = None) -> httpx.MockTransport:
    answers = {**ANSWERS, **(overrides or {})}

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers.get(request.url.path)
        if answer is None:
            return httpx.Response(404, json={"errors": [{"status": 404, "message": "Not Found"}]})
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return httpx.MockTransport(handle)


async def run_health(engine: Engine) -> Samples:
    await engine.run_collector("t", "health")
    await engine.render_now()
    assert engine.store.payload is not None
    return parse_exposition(engine.store.payload.text.decode())


async def test_a_failing_endpoint_fails_its_part_only() -> None:
    transport = jpd({"/artifactory/api/system/version": httpx.Response(500, text="boom")})
    engine = Engine([make_target("http://jpd", name="t", retries=0)], ["health"], transport=transport)
    samples = await run_health(engine)
    await engine.shutdown()
    assert value(samples, "jfrog_up") == 1
    assert value(samples, "jfrog_license_info", licensed_to="Acme") == 1
    assert value(samples, "jfrog_artifactory_info") is None
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/version") == 0
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 1
    assert value(samples, "jfrog_exporter_collector_success") == 0
    assert value(samples, "jfrog_exporter_collector_runs_total", outcome="error") == 1


class Broken(Collector[CollectorSettings]):
    name = "health"
    default_interval = 30.0

    async def collect(self, run: Run) -> None:
        await run.part("/fine", self._fine)
        await run.part("/broken", self._broken)

    @staticmethod
    async def _fine(part: Part) -> None:
        return None

    @staticmethod
    async def _broken(part: Part) -> None:
        raise KeyError("a bug")


async def test_a_bug_in_one_part_is_an_error_of_that_part() -> None:
    target = make_target("http://jpd", name="t")
    engine = Engine([target], ["health"], transport=jpd())
    engine.targets["t"].collectors["health"] = Broken(target, CollectorSettings())
    outcome = await engine.run_collector("t", "health")
    await engine.shutdown()
    parts = {p.endpoint: p for p in engine.store.run("t", "health").parts}
    assert outcome is Outcome.ERROR
    assert parts["/fine"].outcome is Outcome.SUCCESS
    assert parts["/broken"].reason == "internal error: KeyError: 'a bug'"


async def test_back_off_only_while_no_part_answers() -> None:
    forbidden = {"/artifactory/api/system/licenses": httpx.Response(403, json={"errors": [{"message": "no"}]})}
    engine = Engine([make_target("http://jpd", name="t")], ["health"], transport=jpd(forbidden))
    for _ in range(BACKOFF_AFTER + 1):
        await engine.run_collector("t", "health")
    await engine.shutdown()
    assert engine.store.run("t", "health").interval == 30  # one part refused: the JPD is fine

    down = httpx.MockTransport(lambda request: httpx.Response(503, text="maintenance"))
    engine = Engine([make_target("http://jpd", name="t", retries=0)], ["health"], transport=down)
    for _ in range(BACKOFF_AFTER + 1):
        await engine.run_collector("t", "health")
    await engine.shutdown()
    assert engine.store.run("t", "health").interval > 30


async def test_the_self_metrics_name_every_part() -> None:
    engine = Engine([make_target("http://jpd", name="t")], ["health"], transport=jpd())
    samples = await run_health(engine)
    await engine.shutdown()
    endpoints = {dict(labels)["endpoint"] for (name, labels) in samples if name == "jfrog_exporter_endpoint_up"}
    assert endpoints == set(ANSWERS)
    assert value(samples, "jfrog_exporter_collector_success") == 1
    assert value(samples, "jfrog_exporter_credentials_accepted") == 1


async def test_data_that_cannot_be_rendered_fails_the_run_and_keeps_the_last_good_data(monkeypatch, caplog) -> None:
    engine = Engine([make_target("http://jpd.example", name="t")], ["health"], transport=jpd())
    try:
        assert value(await run_health(engine), "jfrog_up") == 1

        def broken(families: object) -> object:
            raise UnicodeEncodeError("utf-8", "\udfff", 0, 1, "surrogates not allowed")

        monkeypatch.setattr("exporter.scheduler.render_families", broken)
        samples = await run_health(engine)
    finally:
        await engine.shutdown()
    run = engine.store.run("t", "health")
    assert run.outcome is Outcome.ERROR and "cannot render the data" in run.reason
    assert value(samples, "jfrog_exporter_collector_success", collector="health") == 0
    assert value(samples, "jfrog_up") == 1, "the last good data stays"
    assert "cannot render the run's data" in caplog.text


async def test_a_fleet_s_first_rounds_start_staggered_within_a_bound() -> None:
    from exporter.scheduler import STAGGER_MAX, TARGET_STAGGER

    async def first_runs(count: int) -> list[float]:
        engine = Engine([make_target("http://jpd.example", name=f"t{i}") for i in range(count)], ["health"],
                        transport=jpd())
        engine.start()
        try:
            assert engine._scheduler is not None
            times = {job.id: job.next_run_time.timestamp() for job in engine._scheduler.get_jobs()}
        finally:
            await engine.shutdown()
        return [times[f"t{i}/health"] - times["t0/health"] for i in range(count)]

    few = await first_runs(5)
    assert few == sorted(few) and abs(few[-1] - 4 * TARGET_STAGGER) < 0.01, "a few targets: 50 ms apart"
    many = await first_runs(1000)
    # Never all at once, and the last target starts within the bound however large the fleet.
    assert len({round(t, 3) for t in many}) == 1000
    assert STAGGER_MAX - 0.1 < many[-1] <= STAGGER_MAX


async def test_renderings_asked_for_by_runs_are_spaced_by_their_own_cost() -> None:
    """In a fleet runs end one after another; renderings must not take more than 1/(1 + RENDER_SPACING) of the
    time, whatever the number of runs asking for one meanwhile."""
    import asyncio
    import time

    from exporter.scheduler import RENDER_SPACING

    engine = Engine([make_target("http://jpd.example")], ["health"], transport=jpd())
    spans: list[tuple[float, float]] = []

    async def slow_render(locked: bool = False) -> None:
        started = time.monotonic()
        await asyncio.sleep(0.05)
        spans.append((started, time.monotonic()))

    engine.render_now = slow_render  # type: ignore[method-assign]
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # a run ending every 10 ms
            engine.request_render()
            await asyncio.sleep(0.01)
    finally:
        await engine.shutdown()
    assert 2 <= len(spans) <= 5
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start - end >= RENDER_SPACING * 0.05 * 0.9


def test_serve_leaves_full_garbage_collections_to_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from exporter import cli, scheduler

    saved = gc.get_threshold()
    ran: list[str] = []
    monkeypatch.setattr(cli, "_run_exporter_command", lambda args: ran.append(args.command) or 0)
    try:
        gc.set_threshold(700, 10, 10)
        assert cli.main(["once", "--url", "http://127.0.0.1:9"]) == 0
        assert gc.get_threshold() == (700, 10, 10), "a one-off command keeps Python's collections"
        assert cli.main(["serve", "--url", "http://127.0.0.1:9"]) == 0
        young, middle, full = gc.get_threshold()
        assert (young, middle) == (700, 10) and full >= 1_000_000_000
        assert ran == ["once", "serve"]
    finally:
        gc.set_threshold(*saved)
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    engine = Engine([])
    gc.callbacks.append(seen)
    try:
        engine.collect_garbage_if_due(time.monotonic())
        assert 2 not in collections, "not due yet"
        engine.collect_garbage_if_due(time.monotonic() + scheduler.FULL_COLLECTION_EVERY)
        assert 2 in collections
        collections.clear()
        engine.collect_garbage_if_due(time.monotonic() + scheduler.FULL_COLLECTION_EVERY + 1)
        assert 2 not in collections, "the next one a full interval later"
    finally:
        gc.callbacks.remove(seen)


async def test_renderings_run_one_at_a_time_on_one_thread_in_the_runs_log_context(monkeypatch) -> None:
    from exporter import scheduler
    from exporter.logs import _where

    seen: list[tuple[str, dict[str, object]]] = []
    render_parts = scheduler._render_parts

    def watched(parts):  # type: ignore[no-untyped-def]
        seen.append((threading.current_thread().name, dict(_where.get() or {})))
        time.sleep(0.02)  # long enough for the targets' runs to overlap
        return render_parts(parts)

    monkeypatch.setattr(scheduler, "_render_parts", watched)
    engine = Engine([make_target("http://jpd", name=f"t{i}") for i in range(4)], ["health"], transport=jpd())
    try:
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    assert len(seen) == 4 and len({thread for thread, _ in seen}) == 1
    assert seen[0][0].startswith("render") and threading.current_thread().name != seen[0][0]
    assert {fields.get("target") for _, fields in seen} == {"t0", "t1", "t2", "t3"}
