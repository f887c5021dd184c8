"""Collector `security`: users, groups, TLS certificates, access tokens and the exporter's own token.

A token that CI depends on expiring is a classic outage, and so is the
exporter's own token expiring: the monitoring would die silently. Token
values never leave this module; only counts, subjects (bounded to the N
soonest to expire) and expiry times do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from prometheus_client.core import Metric
from pydantic import Field

from exporter.client import ApiResult, CollectionError, JfrogClient
from exporter.collectors.base import Collector, CollectorSettings, parse_result
from exporter.metrics import MetricSet
from exporter.values import is_unavailable, lower_or_empty, parse_count, parse_iso_timestamp

log = logging.getLogger(__name__)

USERS = "/access/api/v2/users"
GROUPS = "/access/api/v2/groups"
CERTIFICATES = "/artifactory/api/system/security/certificates"
TOKENS = "/access/api/v1/tokens"

DAY = 86400.0
#: documented values of a user's status (4.4.2.1); every one is reported per realm, 0 when none
USER_STATUSES = ("enabled", "disabled", "locked", "invited")
#: non-overlapping expiry buckets of jfrog_access_tokens, so that they sum to the total
EXPIRY_BUCKETS = ("expired", "lt_7d", "7d_to_30d", "gt_30d", "never")
# The Access API documents 201 as its success code even for reads; real servers answer 200.
_OK = frozenset({200, 201})


# -- parsers -----------------------------------------------------------------

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
        raise ValueError("users: expected an object with a 'users' list")
    users = []
    for entry in body["users"]:
        if not isinstance(entry, dict):
            raise ValueError("users: expected JSON objects")
        users.append(User(lower_or_empty(entry.get("realm")) or "unknown", lower_or_empty(entry.get("status"))))
    return users, _cursor(body)


def parse_groups_page(body: object) -> tuple[int, str | None]:
    """One page of GET /access/api/v2/groups: how many groups it lists, and the next cursor."""
    if not isinstance(body, dict) or not isinstance(body.get("groups"), list):
        raise ValueError("groups: expected an object with a 'groups' list")
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
    if parsed is not None:
        return parsed
    assert isinstance(value, str)
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
        raise ValueError("certificates: expected a JSON list")
    out = []
    for entry in body:
        if not isinstance(entry, dict):
            raise ValueError("certificates: expected JSON objects")
        valid_until = entry.get("validUntil")
        out.append(Certificate(
            alias=str(entry.get("certificateAlias") or ""),
            issued_to=str(entry.get("issuedTo") or ""),
            issued_by=str(entry.get("issuedBy") or ""),
            valid_until="" if valid_until is None else str(valid_until),
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
        raise ValueError("tokens: expected an object with a 'tokens' list")
    out = []
    for entry in body["tokens"]:
        if not isinstance(entry, dict):
            raise ValueError("tokens: expected JSON objects")
        subject = str(entry.get("subject") or "")
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


# -- collector ---------------------------------------------------------------

USERS_HELP = "Users by realm and status (GET /access/api/v2/users, polled in the background)."
USERS_TRUNCATED_HELP = ("1 when the user or group list had more pages than max_pages allows: "
                        "jfrog_users and jfrog_groups then count only the pages read.")
GROUPS_HELP = "Groups (GET /access/api/v2/groups)."
CERT_EXPIRY_HELP = ("Expiry (validUntil) of an installed TLS certificate as a Unix timestamp; "
                    "absent when the date cannot be read.")
CERT_INFO_HELP = "An installed TLS certificate: who it was issued to and by."
TOKENS_HELP = ("Access tokens by subject kind and expiry: expired, lt_7d, 7d_to_30d, gt_30d or never; "
               "the buckets do not overlap.")
TOKEN_SOONEST_HELP = ("Next expiry of a subject's tokens, for the subjects whose tokens expire first "
                      "(bounded by token_subjects).")
OWN_TOKEN_HELP = ("Expiry of the access token the exporter itself uses, from its JWT exp claim "
                  "(decoded locally); absent for reference tokens and basic auth.")


class SecuritySettings(CollectorSettings):
    users_page_size: int = Field(1000, ge=1, le=99_999, description="users/groups per page (limit=)")
    max_pages: int = Field(50, ge=1, le=10_000, description="pages of users or groups read per run at most")
    token_subjects: int = Field(20, ge=0, le=1000,
                                description="subjects whose soonest token expiry is reported, soonest first")


T = TypeVar("T")


@dataclass
class _Listing(Generic[T]):
    """A cursor-paged listing: the last call's result, the pages read, and whether max_pages cut it short."""

    result: ApiResult
    pages: list[T]
    truncated: bool = False


class SecurityCollector(Collector):
    name = "security"
    default_interval = 600.0
    description = "users, groups, TLS certificates, access tokens and the expiry of the exporter's own token"
    settings_model = SecuritySettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._warned_dates: set[tuple[str, str]] = set()
        self._truncation_logged: set[str] = set()

    @property
    def _config(self) -> SecuritySettings:
        assert isinstance(self.settings, SecuritySettings)
        return self.settings

    async def collect(self, client: JfrogClient) -> list[Metric]:
        metrics = MetricSet(self.target.name)
        # Local and always available: report it even when the JPD refuses everything else.
        metrics.gauge("jfrog_exporter_token_expiry_timestamp_seconds", OWN_TOKEN_HELP,
                      jwt_expiry(self.target.auth.token()))
        users, groups, certificates, tokens = await asyncio.gather(
            self._paged(client, USERS, parse_users_page),
            self._paged(client, GROUPS, parse_groups_page),
            client.get(CERTIFICATES),
            client.get(TOKENS, accept=_OK),
        )
        families = metrics.families()
        failures: list[CollectionError] = []
        for listing in (users, groups):
            if not (listing.result.ok or listing.result.unsupported):
                failures.append(CollectionError(listing.result.outcome,
                                                f"{listing.result.endpoint}: {listing.result.reason}"))
        if users.result.ok or groups.result.ok:
            part = MetricSet(self.target.name)
            if users.result.ok:
                self._add_users(part, users.pages)
            if groups.result.ok:
                part.gauge("jfrog_groups", GROUPS_HELP, sum(groups.pages))
            part.gauge("jfrog_users_truncated", USERS_TRUNCATED_HELP,
                       1.0 if users.truncated or groups.truncated else 0.0)
            families += part.families()
        for result, add in ((certificates, self._add_certificates), (tokens, self._add_tokens)):
            if result.unsupported:
                continue
            # Each part in its own set: one that fails half-way must not blank its previous data.
            part = MetricSet(self.target.name)
            try:
                add(part, result)
            except CollectionError as exc:
                failures.append(exc)
                continue
            families += part.families()
        if failures:
            reasons = "; ".join(f.reason for f in failures)
            # What did succeed replaces its previous data; the rest of the last snapshot stays.
            raise CollectionError(failures[0].outcome, reasons, partial=families)
        return families

    async def _paged(self, client: JfrogClient, endpoint: str,
                     parser: Callable[[object], tuple[T, str | None]]) -> _Listing[T]:
        """Follow the cursor for at most max_pages pages."""
        pages: list[T] = []
        cursor: str | None = None
        seen: set[str] = set()
        ok: ApiResult | None = None
        for _ in range(self._config.max_pages):
            params: dict[str, Any] = {"limit": self._config.users_page_size}
            if cursor:
                params["cursor"] = cursor
            result = await client.get(endpoint, params=params, accept=_OK)
            if not result.ok:
                return _Listing(result, [])
            try:
                page, cursor = parse_result(parser, result)
            except CollectionError as exc:
                return _Listing(ApiResult(endpoint, exc.outcome, result.status, None,
                                          exc.reason.removeprefix(f"{endpoint}: ")), [])
            pages.append(page)
            ok = result
            # A server that hands back a cursor it already gave would loop forever.
            if cursor is None or cursor in seen:
                return _Listing(result, pages)
            seen.add(cursor)
        assert ok is not None
        if endpoint not in self._truncation_logged:
            self._truncation_logged.add(endpoint)
            log.warning("target=%s: %s has more than %d pages of %d; counting only those (raise max_pages)",
                        self.target.name, endpoint, self._config.max_pages, self._config.users_page_size)
        return _Listing(ok, pages, truncated=True)

    def _add_users(self, metrics: MetricSet, pages: list[list[User]]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for page in pages:
            for user in page:
                for status in USER_STATUSES:
                    counts.setdefault((user.realm, status), 0)
                counts[(user.realm, user.status)] = counts.get((user.realm, user.status), 0) + 1
        metrics.declare("jfrog_users", USERS_HELP)
        for (realm, status), count in sorted(counts.items()):
            metrics.gauge("jfrog_users", USERS_HELP, count, realm=realm, status=status or "unknown")

    def _add_certificates(self, metrics: MetricSet, result: ApiResult) -> None:
        metrics.declare("jfrog_certificate_info", CERT_INFO_HELP)
        metrics.declare("jfrog_certificate_expiry_timestamp_seconds", CERT_EXPIRY_HELP)
        for cert in parse_result(parse_certificates, result):
            metrics.info("jfrog_certificate_info", CERT_INFO_HELP, alias=cert.alias, issued_to=cert.issued_to,
                         issued_by=cert.issued_by)
            if cert.expires is None and (cert.alias, cert.valid_until) not in self._warned_dates:
                self._warned_dates.add((cert.alias, cert.valid_until))
                log.warning("target=%s: certificate %r: cannot read validUntil %r; no expiry reported",
                            self.target.name, cert.alias, cert.valid_until)
            metrics.gauge("jfrog_certificate_expiry_timestamp_seconds", CERT_EXPIRY_HELP, cert.expires,
                          alias=cert.alias)

    def _add_tokens(self, metrics: MetricSet, result: ApiResult) -> None:
        tokens = parse_result(parse_tokens, result)
        summary = summarise_tokens(tokens, time.time(), self._config.token_subjects)
        metrics.declare("jfrog_access_tokens", TOKENS_HELP)
        for (kind, bucket), count in summary.counts.items():
            metrics.gauge("jfrog_access_tokens", TOKENS_HELP, count, subject_kind=kind, expiry=bucket)
        metrics.declare("jfrog_access_token_soonest_expiry_timestamp_seconds", TOKEN_SOONEST_HELP)
        for subject, kind, expires in summary.soonest:
            metrics.gauge("jfrog_access_token_soonest_expiry_timestamp_seconds", TOKEN_SOONEST_HELP, expires,
                          subject=subject, subject_kind=kind)

