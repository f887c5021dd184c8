"""Pure parsers for the value formats the JFrog APIs use.

Artifactory renders many numbers for humans: "125,726", "3.48 GB",
"32.22 GB (15.77%)", "5.82%", "May 15, 2014". These functions turn them into
base units and return ``None`` for values the JPD reports as unavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
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


def is_unavailable(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().upper() in _UNAVAILABLE)


def parse_count(value: object) -> float | None:
    """A count that may be a number or a string with thousands separators."""
    if is_unavailable(value) or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
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
        return float(value)
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
        return float(value) / 100.0
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
        # The APIs that send numbers send epoch milliseconds.
        return float(value) / 1000.0
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
    raise ValueError(f"{what}: expected a JSON array" + (f" or an object with {wrappers[0]!r}" if wrappers else ""))
