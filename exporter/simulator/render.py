"""Values rendered the way Artifactory renders them for humans."""

from __future__ import annotations

from datetime import UTC, datetime

_UNITS = ("KB", "MB", "GB", "TB", "PB")


def human_size(size: float) -> str:
    """1024-based, two decimals: "3.48 GB", "0 bytes"."""
    if size < 1024:
        return f"{int(size)} bytes"
    value = float(size)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.2f} {unit}"
    raise AssertionError("unreachable")


def human_count(count: int) -> str:
    """Thousands separators: "2,176,580"."""
    return f"{count:,}"


def percent(part: float, whole: float) -> str:
    return f"{(100.0 * part / whole) if whole else 0.0:.2f}%"


def license_date(ts: float) -> str:
    """"May 15, 2014"."""
    return datetime.fromtimestamp(ts, UTC).strftime("%b %d, %Y").replace(" 0", " ")


def iso8601(ts: float) -> str:
    """"2015-12-27T15:08:49.050+02:00" style, in UTC."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"
