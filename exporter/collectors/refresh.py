"""Change-driven polling: which items of a per-item part to read in a run.

The costly parts of a large JPD are one call per item (per repository, per
worker). Most items do not change between two runs, and a summary read in
the same run often says which may have: a replication whose cron fired, a
federation member in lag, a busy worker. A :class:`Refresh` remembers when
each item was last read and its parsed value; each run reads the items the
caller wants now, plus a slice of the others, oldest first, sized so that no
item's value gets older than ``max_age`` (the slow sweep). The part then
reports every item from what it holds, so series of items not read this run
keep their last values instead of disappearing.

A run that reads an item and fails to parse or fetch it leaves the held value
and its age as they were: the item stays the oldest, first in the next run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Refresh(Generic[K, V]):
    """What a part last read of each item, and when."""

    def __init__(self) -> None:
        self._read_at: dict[K, float] = {}
        self._values: dict[K, V] = {}

    def __len__(self) -> int:
        return len(self._values)

    def plan(self, items: Iterable[K], now: float, interval: float, max_age: float,
             wanted: Callable[[K], bool] | Collection[K] = ()) -> list[K]:
        """The items to read in this run, in the order given.

        Read: items never read, items ``wanted`` (a summary says they may have
        changed), items that would be older than ``max_age`` by the next run,
        and the oldest of the rest past half their ``max_age``: as many as
        spread one sweep over ``max_age / interval`` runs, so sweeps do not
        come as one burst. Items no longer listed are forgotten.
        """
        listed = list(dict.fromkeys(items))
        self.forget_except(listed)
        want = wanted if callable(wanted) else wanted.__contains__
        due: set[K] = set()
        rest: list[K] = []
        for item in listed:
            read_at = self._read_at.get(item)
            if read_at is None or want(item) or now + interval - read_at > max_age:
                due.add(item)
            elif now - read_at >= max_age / 2:
                rest.append(item)
        runs_per_sweep = max(1.0, max_age / max(interval, 1e-9))
        spread = min(len(rest), math.ceil(len(listed) / runs_per_sweep))
        if spread:
            rest.sort(key=lambda item: self._read_at[item])
            due.update(rest[:spread])
        return [item for item in listed if item in due]

    def update(self, values: Mapping[K, V], now: float) -> None:
        """Hold the values read now."""
        for item, value in values.items():
            self._values[item] = value
            self._read_at[item] = now

    def drop(self, items: Iterable[K]) -> None:
        """Forget items read and found gone (a 404): they have no value to hold."""
        for item in items:
            self._values.pop(item, None)
            self._read_at.pop(item, None)

    def forget_except(self, items: Collection[K]) -> None:
        keep = items if isinstance(items, set | frozenset | dict) else set(items)
        for item in [i for i in self._read_at if i not in keep]:
            del self._read_at[item]
            self._values.pop(item, None)

    def values(self) -> dict[K, V]:
        return self._values

    def read_at(self, item: K) -> float | None:
        return self._read_at.get(item)

    def waited(self, item: K, now: float, interval: float, gap: float) -> bool:
        """Whether ``gap`` has passed since ``item`` was read, or will have by half-way to the next run (runs
        come ``interval`` apart, give or take their jitter). False for an item never read."""
        read_at = self._read_at.get(item)
        return read_at is not None and now + interval / 2 - read_at >= gap

    def oldest(self) -> float | None:
        """When the least recently read item was read."""
        return min(self._read_at.values(), default=None)
