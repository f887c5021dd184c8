"""A family's series kept as label values and numbers until rendered.

A part of a large JPD emits tens of thousands of series (storage: one per
repository and figure). As prometheus-client ``Sample`` objects, each with its
own label dict and float, a series costs about 290 bytes while its run lasts,
and that moment, a few such runs at once, sets how many memory arenas the
process keeps for good. Kept here as the tuple of label values the emitter's
duplicate check holds anyway and one slot of a ``double`` array, it costs about
a third of that. A ``Sample`` is made only for a reader that asks for one
(the series caps, the landing page's gauges, tools and tests); rendering reads
the rows directly.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import overload

from prometheus_client.core import Metric
from prometheus_client.samples import Sample


class SampleRows(Sequence[Sample]):
    """The samples of one family, each a tuple of label values (in ``labels``' order) and a number."""

    __slots__ = ("labels", "name", "numbers", "rows")

    def __init__(self, name: str, labels: tuple[str, ...]) -> None:
        self.name = name
        self.labels = labels
        self.rows: list[tuple[str, ...]] = []
        self.numbers = array("d")

    def append_row(self, values: tuple[str, ...], number: float) -> None:
        self.rows.append(values)
        self.numbers.append(number)

    def _sample(self, values: tuple[str, ...], number: float) -> Sample:
        return Sample(self.name, dict(zip(self.labels, values, strict=True)), number)

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Sample: ...

    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...

    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self._sample(self.rows[i], self.numbers[i]) for i in range(*index.indices(len(self.rows)))]
        return self._sample(self.rows[index], self.numbers[index])

    def __iter__(self) -> Iterator[Sample]:
        for values, number in zip(self.rows, self.numbers, strict=True):
            yield self._sample(values, number)

    def __eq__(self, other: object) -> bool:
        # Metric.__eq__ compares samples: equal to any sequence of the same Samples, as a list would be.
        if isinstance(other, SampleRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the list it stands for


class SeriesFamily(Metric):
    """A gauge or counter family whose samples are :class:`SampleRows` (``name`` of a counter without ``_total``)."""

    samples: SampleRows  # type: ignore[assignment]  # a Sequence[Sample] read like prometheus-client's list

    def __init__(self, name: str, documentation: str, typ: str, labels: Sequence[str]) -> None:
        super().__init__(name, documentation, typ)
        self.samples = SampleRows(name + "_total" if typ == "counter" else name, tuple(labels))

    def add_row(self, values: tuple[str, ...], value: float) -> None:
        self.samples.append_row(values, value)
