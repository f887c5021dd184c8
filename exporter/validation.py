"""Validators shared by the configuration and the collectors' own settings.

Kept apart from both so neither imports the other to reach them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
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
