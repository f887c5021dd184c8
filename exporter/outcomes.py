"""What a call, a part or a run ended in, and the one rule that combines several.

Outcomes are ordered by how much they tell an on-call engineer: a fault of
the exporter's own configuration (its URL, its credentials) outranks the
JPD's trouble, which outranks a single bad answer. The worst outcome of the
parts is the run's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric


class Outcome(StrEnum):
    SUCCESS = "success"
    #: the JPD is a JFrog Platform whose edition lacks the endpoint: nothing to report
    UNSUPPORTED = "unsupported"
    #: the URL does not lead to a JFrog Platform
    MISCONFIGURED = "misconfigured"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    BAD_RESPONSE = "bad_response"
    ERROR = "error"


#: outcomes that mean "the JPD answered and the data is current"
SUCCESSFUL_OUTCOMES = frozenset({Outcome.SUCCESS, Outcome.UNSUPPORTED})

#: worst first: what the exporter must fix, then what the JPD must fix, then a bad answer
_SEVERITY = (
    Outcome.MISCONFIGURED,
    Outcome.UNAUTHORIZED,
    Outcome.FORBIDDEN,
    Outcome.UNREACHABLE,
    Outcome.TIMEOUT,
    Outcome.ERROR,
    Outcome.BAD_RESPONSE,
    Outcome.SUCCESS,
    Outcome.UNSUPPORTED,
)
_RANK = {outcome: rank for rank, outcome in enumerate(_SEVERITY)}


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """The outcome that describes them all; no outcomes at all is a success.

    Success outranks unsupported: a run with one working part and one the
    edition lacks did collect something.
    """
    return min(outcomes, key=_RANK.__getitem__, default=Outcome.SUCCESS)


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate from the JPD's JSON (``"\\udfff"``) becomes "?", which
    every page, log and exposition can encode."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


class CollectionError(Exception):
    """A call or a part that could not produce the data it needed."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        reason = printable(reason)
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def combine(failures: Sequence[tuple[str, Outcome, str]], total: int, what: str = "calls") -> CollectionError | None:
    """One error for several failed items (``(item, outcome, reason)``), or None if none failed.

    The error carries the worst outcome and names the first item that had it,
    so "3 of 2,000 calls failed" still says which one to look at.
    """
    if not failures:
        return None
    outcome = worst(f[1] for f in failures)
    item, _, reason = next(f for f in failures if f[1] is outcome)
    # Reasons of calls already start with their endpoint; say it once.
    detail = reason if not item or reason.startswith(item) else f"{item}: {reason}"
    if len(failures) == 1 and total == 1:
        return CollectionError(outcome, detail)
    return CollectionError(outcome, f"{len(failures)} of {total} {what} failed; first: {detail}")


@dataclass(frozen=True, slots=True)
class PartResult:
    """How one part of a run ended.

    ``families`` is the part's new data; None keeps the data of its last
    success (a failure, or a part that could not run because one it needs failed).
    """

    endpoint: str
    outcome: Outcome
    reason: str
    families: list[Metric] | None
    #: the part this one could not run without, when that one failed
    needs: str | None = None
    #: a change-driven part: when the least recently read of its items was read (epoch seconds)
    oldest_read: float | None = None
    #: not read in this run on purpose: it ends as its last read did, whose data (and last success) stand
    held: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", printable(self.reason))

    @property
    def succeeded(self) -> bool:
        return self.outcome in SUCCESSFUL_OUTCOMES
