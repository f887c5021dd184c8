"""Keeping the configured credentials out of everything the exporter says.

A reverse proxy or a JPD may echo the request's Authorization header in an
error body; such a body becomes a reason, which is logged and shown on the
landing page. Reasons pass through :func:`redact` first.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

REDACTED = "<redacted>"

# What follows an authorization scheme, or a field named like a credential, is a credential, whichever one.
# A credential has a digit or a symbol in it, so the words of "Basic authentication failed" stay.
_CREDENTIAL = r"(?=[^\s\"',;]*[0-9=+/._-])[^\s\"',;]{8,}"
_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)" + _CREDENTIAL)
_FIELD = re.compile(r"(?i)\b(authorization|x-jfrog-art-api|api[_-]?key|access[_-]?token|password)"
                    r"([\"']?\s*[:=]\s*[\"']?)" + _CREDENTIAL)
# user:password@ in a URL of any scheme, typed right or not (htps://, ftp://).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")
#: a secret shorter than this is not looked for: it would match ordinary words
_MIN_SECRET = 6
#: a text cut short may end with the start of a secret; this many characters of it are enough to hide
_MIN_PREFIX = 8


def secret_values(token: str | None, basic: tuple[str, str] | None) -> list[str]:
    """The strings that must never be shown: the token, the password and the Basic header's value."""
    values = [token or ""]
    if basic is not None:
        user, password = basic
        values += [password, base64.b64encode(f"{user}:{password}".encode()).decode("ascii")]
    return sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, every credential after an auth scheme, and a secret's start at a cut
    (``…``) replaced by a marker."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
        elif text.endswith("…"):
            text = _cut_prefix(text, secret)
    for pattern in (_SCHEME, _FIELD):
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return without_userinfo(text)


def without_userinfo(text: str) -> str:
    """Every URL in ``text`` without its user-info, whatever its scheme."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)


def _cut_prefix(text: str, secret: str) -> str:
    body = text[:-1]
    for size in range(min(len(secret) - 1, len(body)), _MIN_PREFIX - 1, -1):
        if body.endswith(secret[:size]):
            return body[:-size] + REDACTED + "…"
    return text
