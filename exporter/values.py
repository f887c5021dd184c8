"""Pure parsers for the value formats the JFrog APIs use.

Artifactory renders many numbers for humans: "125,726", "3.48 GB",
"32.22 GB (15.77%)", "5.82%", "May 15, 2014". These functions turn them into
base units and return ``None`` for values the JPD reports as unavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)?[^/?#]*@")

_UNAVAILABLE = {"", "N/A", "NA", "N/R", "NONE", "NULL", "-"}

# Artifactory's sizes are 1024-based whatever the unit is called.
_SIZE_UNITS = {
    "": 1,
    "B": 1,
    "BYTE": 1,
    "BYTES": 1,
    "KB": 1024,
    "K": 1024,
    "KIB": 1024,
    "MB": 1024**2,
    "M": 1024**2,
    "MIB": 1024**2,
    "GB": 1024**3,
    "G": 1024**3,
    "GIB": 1024**3,
    "TB": 1024**4,
    "T": 1024**4,
    "TIB": 1024**4,
    "PB": 1024**5,
    "PIB": 1024**5,
}

_SIZE_RE = re.compile(r"^\s*([-+]?[\d,]*\.?\d+)\s*([A-Za-z]*)\s*(?:\(\s*[-+]?[\d.,]+\s*%\s*\))?\s*$")
_PERCENT_RE = re.compile(r"^\s*([-+]?[\d,]*\.?\d+)\s*%\s*$")


class UnexpectedShape(ValueError):
    """A body, or a part of one, of another shape than the parser reads; the message says what it was."""

    def __init__(self, what: str, expected: str, seen: object) -> None:
        super().__init__(f"{what}: expected {expected}, got {json_type(seen)}")


_SCALAR_TYPES = {type(None): "null", bool: "a boolean", int: "a number", float: "a number"}


def json_type(value: object) -> str:
    """What a decoded JSON value is, for a message: its type and an object's first keys, never a value (values
    may be huge, nested without end, or secret)."""
    if isinstance(value, dict):
        keys = [str(k)[:40] for k in list(value)[:5]]
        return f"an object with {', '.join(keys)}{', …' if len(value) > 5 else ''}" if value else "an empty object"
    if isinstance(value, list):
        return f"an array of {len(value)}" if value else "an empty array"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    return _SCALAR_TYPES.get(type(value), type(value).__name__)


def scalar_text(value: object) -> str:
    """A JSON scalar as text for a label or an identity, read as ``str(value or "")``.

    Objects and arrays name nothing (and could nest deeper than ``str``
    can recurse): they give "" too, as does an integer too long to print.
    """
    if not value or isinstance(value, dict | list):
        return ""
    try:
        return str(value)
    except ValueError:  # an integer of more digits than Python prints: no name is that long
        return ""


def json_text(value: object, depth: int = 4) -> str:
    """A decoded body as JSON text for a message; members deeper than ``depth`` are elided."""
    return json.dumps(_elided(value, depth), sort_keys=True)


def _elided(value: object, depth: int) -> object:
    # Bounded by ``depth``, whatever the body's nesting; numbers too long to print are elided too.
    if isinstance(value, dict):
        return {str(k): _elided(v, depth - 1) for k, v in value.items()} if depth > 0 else "{…}"
    if isinstance(value, list):
        return [_elided(v, depth - 1) for v in value] if depth > 0 else "[…]"
    if isinstance(value, int) and value.bit_length() > 64:
        return "…"
    return value


def is_unavailable(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().upper() in _UNAVAILABLE)


def _number(value: int | float) -> float | None:
    """A JSON number as a float; None for an integer beyond the float range (no count or time is that large)."""
    try:
        return float(value)
    except OverflowError:
        return None


def parse_count(value: object) -> float | None:
    """A count that may be a number or a string with thousands separators."""
    if is_unavailable(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def parse_size(value: object) -> float | None:
    """A size such as "3.48 GB", "0 bytes", "32.22 GB (15.77%)" or a plain number of bytes."""
    if is_unavailable(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _number(value)
    if not isinstance(value, str):
        return None
    match = _SIZE_RE.match(value)
    if not match:
        return None
    unit = match.group(2).upper()
    factor = _SIZE_UNITS.get(unit)
    if factor is None:
        return None
    return float(match.group(1).replace(",", "")) * factor


def parse_percent_ratio(value: object) -> float | None:
    """"5.82%" -> 0.0582."""
    if is_unavailable(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = _number(value)
        return None if number is None else number / 100.0
    if isinstance(value, str):
        match = _PERCENT_RE.match(value)
        if match:
            return float(match.group(1).replace(",", "")) / 100.0
    return None


_LICENSE_DATE_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%Y-%m-%d", "%d %b %Y")


def parse_license_date(value: object) -> float | None:
    """License dates such as "May 15, 2014"; "N/R" (Cloud) and unknown formats give ``None``."""
    if is_unavailable(value) or not isinstance(value, str):
        return None
    text = value.strip()
    for fmt in _LICENSE_DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp()
        except ValueError:
            continue
    return None


def parse_iso_timestamp(value: object) -> float | None:
    """ISO 8601 with offset ("2015-12-27T15:08:49.050+02:00", "...Z") or epoch millis -> epoch seconds."""
    if is_unavailable(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # The APIs that send numbers send epoch milliseconds; an infinite one is no point in time.
        millis = _number(value)
        return millis / 1000.0 if millis is not None and math.isfinite(millis) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 could not read "+0200"; keep accepting it explicitly.
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def lower_or_empty(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def safe_url(url: object) -> str:
    """A URL fit for a label: no user-info, no query or fragment, no trailing slash."""
    if not isinstance(url, str):
        return ""
    text = _USERINFO.sub(lambda m: m.group("scheme") or "", url.strip(), count=1)
    text = text.split("#", 1)[0].split("?", 1)[0]
    return text.rstrip("/")


def jwt_expiry(token: str | None) -> float | None:
    """The ``exp`` claim of a JWT, decoded locally without verification; None for reference tokens."""
    if not token:
        return None
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp <= 0:
        return None
    return float(exp)


def listed(body: object, what: str, *wrappers: str) -> list[Any]:
    """The entries of a list answer, as real servers send it: a JSON array, or the array wrapped in an
    object under one of ``wrappers`` (tests/field: licenses, unavailableMirrors)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in wrappers:
            if isinstance(body.get(key), list):
                return list(body[key])
    raise UnexpectedShape(what, "a JSON array" + (f" or an object with {wrappers[0]!r}" if wrappers else ""), body)
