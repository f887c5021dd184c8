"""Collector `security`: users, groups, TLS certificates, access tokens and the exporter's own token.

A token that CI depends on expiring is a classic outage, and so is the
exporter's own token expiring: the monitoring would die silently. Token
values never leave this module; only counts, subjects (bounded to the N
soonest to expire) and expiry times do.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

from pydantic import Field

from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Permission
from exporter.values import (
    UnexpectedShape,
    is_unavailable,
    lower_or_empty,
    parse_count,
    parse_iso_timestamp,
    scalar_text,
)

log = logging.getLogger(__name__)

F = Declarations("security")
USERS = F.endpoint("/access/api/v2/users", Permission.ADMIN)
GROUPS = F.endpoint("/access/api/v2/groups", Permission.ADMIN)
CERTIFICATES = F.endpoint("/artifactory/api/system/security/certificates", Permission.ADMIN)
TOKENS = F.endpoint("/access/api/v1/tokens", Permission.USER)

DAY = 86400.0
#: documented values of a user's status (4.4.2.1); every one is reported per realm, 0 when none
USER_STATUSES = ("enabled", "disabled", "locked", "invited")
#: non-overlapping expiry buckets of jfrog_access_tokens, so that they sum to the total
EXPIRY_BUCKETS = ("expired", "lt_7d", "7d_to_30d", "gt_30d", "never")
# The Access API documents 201 as its success code even for reads; real servers answer 200.
_OK = frozenset({200, 201})

USERS_COUNT = F.gauge("jfrog_users",
                      "Users by realm and status (GET /access/api/v2/users, polled in the background).",
                      "realm", "status", key=("realm", "status"))
USERS_TRUNCATED = F.gauge("jfrog_users_truncated",
                          "1 when the user or group list had more pages than max_pages allows: "
                          "jfrog_users and jfrog_groups then count only the pages read.")
GROUPS_COUNT = F.gauge("jfrog_groups", "Groups (GET /access/api/v2/groups).")
CERT_EXPIRY = F.gauge("jfrog_certificate_expiry_timestamp_seconds",
                      "Expiry (validUntil) of an installed TLS certificate as a Unix timestamp; "
                      "absent when the date cannot be read.", "alias")
CERT_INFO = F.info("jfrog_certificate_info", "An installed TLS certificate: who it was issued to and by.",
                   "alias", "issued_to", "issued_by")
TOKENS_COUNT = F.gauge("jfrog_access_tokens",
                       "Access tokens by subject kind and expiry: expired, lt_7d, 7d_to_30d, gt_30d or never; "
                       "the buckets do not overlap.", "subject_kind", "expiry")
TOKEN_SOONEST = F.gauge("jfrog_access_token_soonest_expiry_timestamp_seconds",
                        "Next expiry of a subject's tokens, for the subjects whose tokens expire first "
                        "(bounded by token_subjects).", "subject", "subject_kind")

T = TypeVar("T")


class SecuritySettings(CollectorSettings):
    users_page_size: int = Field(1000, ge=1, le=99_999, description="users/groups per page (limit=)")
    max_pages: int = Field(50, ge=1, le=10_000, description="pages of users or groups read per run at most")
    token_subjects: int = Field(20, ge=0, le=1000,
                                description="subjects whose soonest token expiry is reported, soonest first")


class SecurityCollector(Collector[SecuritySettings]):
    name = "security"
    default_interval = 600.0
    description = "users, groups, TLS certificates and access tokens"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned_dates: set[tuple[str, str]] = set()
        self._truncation_logged: set[str] = set()
        #: whether the group count now exported (the last good one) covers only part of the list
        self._groups_truncated = False

    async def collect(self, run: Run) -> None:
        await asyncio.gather(
            self._directory(run),
            run.part(CERTIFICATES, self._certificates),
            run.part(TOKENS, self._tokens),
        )

    async def _directory(self, run: Run) -> None:
        # jfrog_users_truncated covers both lists and belongs to the users part: groups are read first.
        await run.part(GROUPS, self._groups)
        await run.part(USERS, self._users)

    async def _groups(self, part: Part) -> None:
        pages, truncated = await self._pages(part, parse_groups_page)
        part.out.gauge(GROUPS_COUNT, sum(pages))
        self._groups_truncated = truncated

    async def _users(self, part: Part) -> None:
        pages, truncated = await self._pages(part, parse_users_page)
        users_families([user for page in pages for user in page], part.out)
        part.out.gauge(USERS_TRUNCATED, truncated or self._groups_truncated)

    async def _pages(self, part: Part, parser: Callable[[object], tuple[T, str | None]]) -> tuple[list[T], bool]:
        """Follow the cursor for at most max_pages pages: the pages, and whether max_pages cut the list short."""
        pages: list[T] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(self.settings.max_pages):
            params: dict[str, Any] = {"limit": self.settings.users_page_size}
            if cursor:
                params["cursor"] = cursor
            page, cursor = parse_result(parser, await part.get(params=params, accept=_OK))
            pages.append(page)
            # A server that hands back a cursor it already gave would loop forever.
            if cursor is None or cursor in seen:
                return pages, False
            seen.add(cursor)
        if part.endpoint not in self._truncation_logged:
            self._truncation_logged.add(part.endpoint)
            log.warning("%s has more than %d pages of %d; counting only those (raise max_pages)",
                        part.endpoint, self.settings.max_pages, self.settings.users_page_size)
        return pages, True

    async def _certificates(self, part: Part) -> None:
        certificates = parse_result(parse_certificates, await part.get())
        for cert in certificates:
            if cert.expires is None and (cert.alias, cert.valid_until) not in self._warned_dates:
                self._warned_dates.add((cert.alias, cert.valid_until))
                log.warning("certificate %r: cannot read validUntil %r; no expiry reported",
                            cert.alias, cert.valid_until)
        certificate_families(certificates, part.out)

    async def _tokens(self, part: Part) -> None:
        tokens = parse_result(parse_tokens, await part.get(accept=_OK))
        token_families(summarise_tokens(tokens, time.time(), self.settings.token_subjects), part.out)


def users_families(users: list[User], out: Emitter) -> None:
    """Users per realm and status; every documented status of a realm that has users, 0 when none."""
    counts: dict[tuple[str, str], int] = {}
    for user in users:
        for status in USER_STATUSES:
            counts.setdefault((user.realm, status), 0)
        key = (user.realm, user.status or "unknown")
        counts[key] = counts.get(key, 0) + 1
    out.touch(USERS_COUNT)
    for (realm, status), count in sorted(counts.items()):
        out.gauge(USERS_COUNT, count, realm=realm, status=status)


def certificate_families(certificates: list[Certificate], out: Emitter) -> None:
    out.touch(CERT_INFO, CERT_EXPIRY)
    for cert in certificates:
        out.info(CERT_INFO, alias=cert.alias, issued_to=cert.issued_to, issued_by=cert.issued_by)
        out.gauge(CERT_EXPIRY, cert.expires, alias=cert.alias)


def token_families(summary: TokenSummary, out: Emitter) -> None:
    out.touch(TOKENS_COUNT, TOKEN_SOONEST)
    for (kind, bucket), count in summary.counts.items():
        out.gauge(TOKENS_COUNT, count, subject_kind=kind, expiry=bucket)
    for subject, kind, expires in summary.soonest:
        out.gauge(TOKEN_SOONEST, expires, subject=subject, subject_kind=kind)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class User:
    realm: str
    status: str


@dataclass(frozen=True, slots=True)
class Certificate:
    alias: str
    issued_to: str
    issued_by: str
    valid_until: str
    expires: float | None


@dataclass(frozen=True, slots=True)
class Token:
    subject: str
    subject_kind: str
    expires: float | None  # None: never expires


@dataclass
class TokenSummary:
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (subject, subject_kind, soonest expiry) of the subjects whose next expiry comes first
    soonest: list[tuple[str, str, float]] = field(default_factory=list)


def _cursor(body: dict[str, Any]) -> str | None:
    cursor = body.get("cursor")
    return cursor if isinstance(cursor, str) and cursor.strip() else None


def parse_users_page(body: object) -> tuple[list[User], str | None]:
    """One page of GET /access/api/v2/users: the users' realm and status, and the next cursor."""
    if not isinstance(body, dict) or not isinstance(body.get("users"), list):
        raise UnexpectedShape("users", "an object with a 'users' list", body)
    users = []
    for entry in body["users"]:
        if not isinstance(entry, dict):
            raise UnexpectedShape("users", "JSON objects", entry)
        users.append(User(lower_or_empty(entry.get("realm")) or "unknown", lower_or_empty(entry.get("status"))))
    return users, _cursor(body)


def parse_groups_page(body: object) -> tuple[int, str | None]:
    """One page of GET /access/api/v2/groups: how many groups it lists, and the next cursor."""
    if not isinstance(body, dict) or not isinstance(body.get("groups"), list):
        raise UnexpectedShape("groups", "an object with a 'groups' list", body)
    return len(body["groups"]), _cursor(body)


# "Sun May 01 2019 10:00:00 GMT +02:00 (UTC)", as in the sample of 2.9.55; the offset may also be
# written +0200 or be missing, and the trailing zone name is decoration.
_JS_DATE = re.compile(
    r"^(?:[A-Za-z]{3},?\s+)?(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})\s+"
    r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
    r"(?:\s*(?:GMT|UTC))?(?:\s*(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2}))?(?:\s*\(.*\))?\s*$"
)
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}


def parse_certificate_date(value: object) -> float | None:
    """validUntil in either documented format: ISO 8601 or "Sun May 01 2019 10:00:00 GMT +02:00 (UTC)"."""
    if is_unavailable(value) or not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    parsed = parse_iso_timestamp(value)
    if parsed is not None or not isinstance(value, str):
        return parsed
    match = _JS_DATE.match(value.strip())
    if not match:
        return None
    month = _MONTHS.get(match["mon"].lower())
    if month is None:
        return None
    offset = timedelta(0)
    if match["sign"]:
        offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
        if match["sign"] == "-":
            offset = -offset
    try:
        when = datetime(int(match["year"]), month, int(match["day"]), int(match["h"]), int(match["m"]),
                        int(match["s"] or 0), tzinfo=timezone(offset))
    except ValueError:
        return None
    return when.timestamp()


def parse_certificates(body: object) -> list[Certificate]:
    """GET /api/system/security/certificates; an unreadable date leaves ``expires`` None."""
    if not isinstance(body, list):
        raise UnexpectedShape("certificates", "a JSON array", body)
    out = []
    for entry in body:
        if not isinstance(entry, dict):
            raise UnexpectedShape("certificates", "JSON objects", entry)
        valid_until = entry.get("validUntil")
        out.append(Certificate(
            alias=scalar_text(entry.get("certificateAlias")),
            issued_to=scalar_text(entry.get("issuedTo")),
            issued_by=scalar_text(entry.get("issuedBy")),
            valid_until=scalar_text(valid_until),
            expires=parse_certificate_date(valid_until),
        ))
    return out


def subject_kind(subject: str) -> str:
    """What a token's subject names: ``<service-id>/users/<name>`` is a user, a bare service id a service."""
    parts = subject.strip("/").split("/")
    if len(parts) >= 3:
        return {"users": "user", "groups": "group", "nodes": "node"}.get(parts[-2], "other")
    if len(parts) == 1 and re.fullmatch(r"[a-z][a-z0-9-]*@[^/\s]+", parts[0]):
        return "service"
    return "other"


def _expiry(value: object) -> float | None:
    # Tokens that never expire have no expiry (or 0); the documents show the epoch as a string or a number.
    seconds = parse_count(value)
    return seconds if seconds else None


def parse_tokens(body: object) -> list[Token]:
    """GET /access/api/v1/tokens: subject and expiry of each token (its id and value are not kept)."""
    if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
        raise UnexpectedShape("tokens", "an object with a 'tokens' list", body)
    out = []
    for entry in body["tokens"]:
        if not isinstance(entry, dict):
            raise UnexpectedShape("tokens", "JSON objects", entry)
        subject = scalar_text(entry.get("subject"))
        out.append(Token(subject, subject_kind(subject), _expiry(entry.get("expiry"))))
    return out


def expiry_bucket(expires: float | None, now: float) -> str:
    if expires is None:
        return "never"
    left = expires - now
    if left <= 0:
        return "expired"
    if left <= 7 * DAY:
        return "lt_7d"
    if left <= 30 * DAY:
        return "7d_to_30d"
    return "gt_30d"


def summarise_tokens(tokens: list[Token], now: float, soonest: int) -> TokenSummary:
    """Counts per subject kind and bucket; the next expiry of the ``soonest`` subjects due first.

    Expired tokens are counted but do not compete for the per-subject series:
    those are about what is going to break next.
    """
    summary = TokenSummary()
    for kind in sorted({t.subject_kind for t in tokens}):
        for bucket in EXPIRY_BUCKETS:
            summary.counts[(kind, bucket)] = 0
    next_expiry: dict[str, tuple[float, str]] = {}
    for token in tokens:
        bucket = expiry_bucket(token.expires, now)
        summary.counts[(token.subject_kind, bucket)] += 1
        if token.expires is not None and bucket != "expired":
            known = next_expiry.get(token.subject)
            if known is None or token.expires < known[0]:
                next_expiry[token.subject] = (token.expires, token.subject_kind)
    ranked = sorted(next_expiry.items(), key=lambda item: (item[1][0], item[0]))[:soonest]
    summary.soonest = [(subject, kind, expires) for subject, (expires, kind) in ranked]
    return summary
