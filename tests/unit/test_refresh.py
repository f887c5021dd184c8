"""Change-driven polling: which items a run reads, and how the sweep bounds the age of the others."""

from __future__ import annotations

import pytest

from exporter.collectors.refresh import Refresh

pytestmark = pytest.mark.unit

ITEMS = [f"repo-{i:03d}" for i in range(120)]


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
