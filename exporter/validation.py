"""Validators shared by the configuration and the collectors' own settings.

Kept apart from both so neither imports the other to reach them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, BeforeValidator

from exporter.redaction import without_userinfo

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Accept seconds as a number or Prometheus-style strings: "30s", "5m", "1h30m", "250ms"."""
    seconds = _seconds(value)
    if seconds <= 0:
        raise ValueError("a duration must be greater than zero")
    return seconds


def _seconds(value: Any) -> float:
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
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a duration (a finite number of seconds, or e.g. 30s, 5m)")
    return seconds


def within(low: float, high: float, what: str) -> Callable[[float], float]:
    """A check that a duration lies in [low, high], naming both ends when it does not."""

    def check(seconds: float) -> float:
        if not low <= seconds <= high:
            raise ValueError(f"{what} must be between {_say(low)} and {_say(high)}, not {_say(seconds)}")
        return seconds

    return check


def _say(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _duration_or_zero(value: Any) -> float:
    # Unlike an interval, zero is a valid choice for a delay ("0", "0s").
    seconds = _seconds(value)
    if seconds < 0:
        raise ValueError("a duration must not be negative")
    return seconds


#: a delay that may be zero ("0", "0s", "30s", "2m"); bounds come with the field
Delay = Annotated[float, BeforeValidator(_duration_or_zero)]
#: how often a collector runs: more often than every second only loads the JPD, and beyond a day the
#: scheduler's arithmetic is the only limit (a typo such as 1e15 would end the process)
Interval = Annotated[float, BeforeValidator(parse_duration), AfterValidator(within(1, 86400, "an interval"))]
#: how long one call may take
Timeout = Annotated[float, BeforeValidator(parse_duration), AfterValidator(within(0.1, 3600, "a timeout"))]


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate regular expressions from the configuration, naming the one that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return patterns


def base_url(url: str, service_path: str) -> tuple[str, bool]:
    """An http(s) base URL without trailing slash or user-info, and without ``service_path`` at its end
    (``/artifactory``, ``/distribution``: users paste a service's URL); also whether that was cut."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{without_userinfo(url)!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ValueError("credentials must not be part of the URL; use auth")
    path = parts.path.rstrip("/")
    cut = path.endswith(service_path)
    if cut:
        path = path[: -len(service_path)]
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), cut
