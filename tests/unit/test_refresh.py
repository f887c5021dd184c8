"""Change-driven polling: which items a run reads, and how the sweep bounds the age of the others."""

from __future__ import annotations

import pytest

from exporter.collectors.base import Occasional, Part, Run
from exporter.collectors.refresh import Refresh
from exporter.families import Declarations, Registry
from exporter.outcomes import CollectionError, Outcome, PartResult
from exporter.snapshot import SnapshotStore
from tests.conftest import make_target
from tests.support import parse_exposition, value

pytestmark = pytest.mark.unit

ITEMS = [f"repo-{i:03d}" for i in range(120)]

A = Declarations("test", Registry()).gauge("jfrog_test_a", "A.")


def _run(held: Refresh[str, int], now: float, wanted: set[str] | None = None) -> list[str]:
    due = held.plan(ITEMS, now, interval=60, max_age=3600, wanted=wanted or set())
    held.update({item: int(now) for item in due}, now)
    return due


def test_the_first_run_reads_everything_then_only_what_is_wanted() -> None:
    held: Refresh[str, int] = Refresh()
    assert _run(held, 0) == ITEMS
    assert _run(held, 60, wanted={"repo-007", "repo-100"}) == ["repo-007", "repo-100"]
    assert len(held) == len(ITEMS)


def test_the_sweep_keeps_every_item_younger_than_max_age_and_spreads_the_reads() -> None:
    held: Refresh[str, int] = Refresh()
    reads_per_run = []
    for minute in range(0, 4 * 60 + 1):
        reads_per_run.append(len(_run(held, minute * 60.0)))
        ages = [minute * 60.0 - (held.read_at(item) or 0) for item in ITEMS]
        assert max(ages) <= 3600
    # After the first run and the first sweep, no run reads more than a share of the whole.
    assert max(reads_per_run[61:]) <= 4
    assert 3 * 110 <= sum(reads_per_run[61:241]) <= 3 * 130  # about one read per item and hour


def test_items_no_longer_listed_are_forgotten_and_gone_ones_dropped() -> None:
    held: Refresh[str, int] = Refresh()
    held.plan(["a", "b", "c"], 0, 60, 3600)
    held.update({"a": 1, "b": 2, "c": 3}, 0)
    held.drop(["c"])
    assert held.plan(["a"], 60, 60, 3600) == []
    assert held.values() == {"a": 1}
    assert held.plan(["a", "b"], 120, 60, 3600) == ["b"]  # listed again: never read since forgotten


def test_an_item_whose_read_failed_stays_first_in_line() -> None:
    held: Refresh[str, int] = Refresh()
    held.update({"a": 1, "b": 1}, 0)
    assert held.plan(["a", "b"], 3560, 60, 3600) == ["a", "b"]
    held.update({"b": 2}, 3560)  # a's read failed
    assert held.plan(["a", "b"], 3620, 60, 3600) == ["a"]


async def test_an_occasional_part_is_held_between_reads_and_read_again_after_a_failure() -> None:
    store = SnapshotStore()
    store.register("sim", "c", 30)
    occasional = Occasional(every=900, interval=30)
    answers: list[float | None] = []

    async def fetch(part: Part) -> None:
        answers.append(part.now)
        if part.now == 1900:
            raise CollectionError(Outcome.ERROR, "HTTP 500")
        part.out.gauge(A, part.now)

    async def run_at(now: float) -> PartResult:
        run = Run(make_target("http://jpd.example"), None, "c", now=now)  # type: ignore[arg-type]
        await occasional.part(run, "/a", fetch)
        store.record("sim", "c", run.parts, 0.1, now=now)
        return run.parts["/a"]

    assert (await run_at(1000)).oldest_read == 1000
    held = await run_at(1030)
    assert held.held and held.succeeded and held.families is None and held.oldest_read == 1000
    [record] = store.run("sim", "c").parts
    assert (record.last_success, record.oldest_read) == (1000, 1000)  # not read at 1030: no fresh success
    assert value(parse_exposition(store.render().text.decode()), "jfrog_test_a") == 1000  # still served
    await run_at(1880)
    assert answers == [1000]  # held: not yet 900 s old half-way to the next run
    assert not (await run_at(1900)).succeeded
    assert store.run("sim", "c").parts[0].oldest_read == 1000
    await run_at(1930)  # the last read failed: read again at once
    occasional.expire()  # the JPD restarted
    await run_at(1960)
    assert answers == [1000, 1900, 1930, 1960]
    assert value(parse_exposition(store.render().text.decode()), "jfrog_test_a") == 1960
