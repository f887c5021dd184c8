"""What every collector is: a name, a default interval and an async collect.

A collector instance belongs to one target, so collectors that must remember
something between runs (counters built from histories) keep it on ``self``.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar, cast

from prometheus_client.core import Metric
from pydantic import BaseModel, BeforeValidator, ConfigDict

from exporter.client import ApiResult, CollectionError, Outcome

if TYPE_CHECKING:
    from exporter.client import JfrogClient
    from exporter.config import TargetConfig

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """Accept seconds as a number or Prometheus-style strings: "30s", "5m", "1h30m", "250ms"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration (use e.g. 30s, 5m, 1h30m)") from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 30s, 5m or a number of seconds")
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate regular expressions from the configuration, naming the one that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


class CollectorSettings(BaseModel):
    """Per-target settings every collector accepts; collectors may extend it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    interval: Duration | None = None


class Collector(ABC):
    """One area of the JPD, polled on its own schedule for one target."""

    name: ClassVar[str]
    default_interval: ClassVar[float]
    enabled_by_default: ClassVar[bool] = True
    description: ClassVar[str] = ""
    settings_model: ClassVar[type[CollectorSettings]] = CollectorSettings

    def __init__(self, target: TargetConfig, settings: CollectorSettings) -> None:
        self.target = target
        self.settings = settings

    @property
    def interval(self) -> float:
        return self.settings.interval or self.default_interval

    @abstractmethod
    async def collect(self, client: JfrogClient) -> Iterable[Metric]:
        """Return the complete families of this run.

        Raise :class:`exporter.client.CollectionError` when the data would be
        incomplete; with outcome ``unsupported`` when the edition lacks the
        whole area (counted as success: nothing to report).
        """


T = TypeVar("T")


def parse_result(parser: Callable[[Any], T], result: ApiResult) -> T:
    """Parse the body of a successful call with a pure parser.

    A failed call fails the run with its own outcome; a body of the wrong
    shape fails it as bad_response.
    """
    body = result.require()
    try:
        return parser(body)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CollectionError(Outcome.BAD_RESPONSE, f"{result.endpoint}: unexpected shape: {exc}") from None


async def run_bounded(jobs: Sequence[Callable[[], Awaitable[T]]], workers: int) -> list[T]:
    """Run ``jobs`` with at most ``workers`` in flight; results in the order of ``jobs``.

    The client's limit alone would queue every call at once, first come first
    served: a follow-up call (the next page of a list) would then wait behind
    all the others, and so would other collectors' calls to the same JPD.
    A job that raises stops the others and the exception propagates.
    """
    results: list[T | None] = [None] * len(jobs)
    queue = iter(enumerate(jobs))

    async def worker() -> None:
        for index, job in queue:
            results[index] = await job()

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(workers, len(jobs))))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return cast(list[T], results)
