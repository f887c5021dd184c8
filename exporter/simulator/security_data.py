"""Security and activity data a simulated JPD serves.

``scenario.areas["security"]`` holds users, groups, TLS certificates and
access tokens; a part that is ``None`` answers 404 like an edition without
it. ``scenario.areas["activity"]`` describes how artifacts are created and
downloaded over time; the AQL routes grow an item list from it. Dates are
relative to the start of the simulator's day so tests can compute the
expected values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Repo, Scenario

AREA = "security"
ACTIVITY_AREA = "activity"
DAY = 86400
SERVICE_ID = "jfac@01hsim7k4n5r2q7w9"
ARTIFACTORY_ID = "jfrt@01hsim7k4n5r2q7w9"


@dataclass
class SimUser:
    username: str
    realm: str  # internal, ldap, saml, ... as Access spells them
    status: str  # enabled, disabled, locked, invited
    groups: list[str] = field(default_factory=list)
    admin: bool = False

    @property
    def email(self) -> str:
        return f"{self.username}@acme.example.com"


@dataclass
class SimPermission:
    """A permission target; actions in the legacy letters (r, w, n, d, m) the v1 API speaks."""

    name: str
    repositories: list[str]
    users: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    includes: str = "**"
    excludes: str = ""
    #: a build section too (v2 only): build-info permissions live in the same target
    build: bool = False


@dataclass
class SimCertificate:
    alias: str
    issued_to: str
    issued_by: str
    issued_on: str
    valid_until: str  # rendered already: the documents show two formats


@dataclass
class SimToken:
    token_id: str
    subject: str
    issued_at: int
    expiry: int | str | None  # None: never expires; a string like the documents' "<epoch-in-secs>"
    description: str = ""
    refreshable: bool = False


@dataclass
class SecurityArea:
    users: list[SimUser] | None = field(default_factory=list)
    groups: list[str] | None = field(default_factory=list)
    certificates: list[SimCertificate] | None = field(default_factory=list)
    tokens: list[SimToken] | None = field(default_factory=list)
    permissions: list[SimPermission] | None = field(default_factory=list)

    def user(self, name: str) -> SimUser | None:
        return next((u for u in self.users or [] if u.username == name), None)

    def members(self, group: str) -> list[str]:
        return [u.username for u in self.users or [] if group in u.groups]

    def permission(self, name: str) -> SimPermission | None:
        return next((p for p in self.permissions or [] if p.name == name), None)


@dataclass
class ActivityArea:
    """Artifacts appear in ``repos`` at a steady rate from the simulator's start, and get downloaded."""

    repos: list[str]
    created_per_minute: float = 6.0
    downloads_per_minute: float = 20.0
    #: items that existed before the simulator started (an exporter must not count them)
    history: int = 200
    #: when the scenario was built: activity grows from here
    started: float = field(default_factory=time.time)


def iso_java(ts: float, offset_hours: int = 0) -> str:
    """ISO 8601 as Java's yyyy-MM-dd'T'HH:mm:ss.SSSZ renders it: "2019-05-01T10:00:00.000+0200"."""
    tz = timezone(timedelta(hours=offset_hours))
    dt = datetime.fromtimestamp(ts, tz)
    sign = "+" if offset_hours >= 0 else "-"
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}{sign}{abs(offset_hours):02d}00"


def js_date(ts: float, offset_hours: int = 2) -> str:
    """The other documented form: "Sun May 01 2019 10:00:00 GMT +02:00 (UTC)"."""
    tz = timezone(timedelta(hours=offset_hours))
    dt = datetime.fromtimestamp(ts, tz)
    sign = "+" if offset_hours >= 0 else "-"
    return dt.strftime("%a %b %d %Y %H:%M:%S") + f" GMT {sign}{abs(offset_hours):02d}:00 (UTC)"


def _user_subject(name: str) -> str:
    return f"{SERVICE_ID}/users/{name}"


def healthy_security(day: float) -> SecurityArea:
    users = [
        SimUser("admin", "internal", "enabled", ["admins"], admin=True),
        SimUser("ci-bot", "internal", "enabled", ["ci", "deployers"]),
        SimUser("release-bot", "internal", "enabled", ["deployers"]),
        SimUser("alice", "internal", "enabled", ["deployers", "qa"]),
        SimUser("bob", "internal", "disabled", ["readers"]),
        SimUser("carol", "internal", "locked", ["qa"]),
        SimUser("dave", "internal", "invited"),
        SimUser("reader", "internal", "enabled", ["readers"]),
        *(SimUser(f"ldap-user-{i:02d}", "ldap", "disabled" if i == 4 else "enabled", ["readers"]) for i in range(6)),
        *(SimUser(f"saml-user-{i:02d}", "saml", "enabled", ["readers"]) for i in range(3)),
    ]
    # Nothing an operator must act on: certificates valid for months, no token expiring within a week (expired
    # tokens stay listed until revoked, as on a real JPD, and raise nothing).
    certificates = [
        SimCertificate("partner-mtls", "Acme Partner", "Acme Issuing CA", iso_java(day - 300 * DAY),
                       iso_java(day + 90 * DAY + 10 * 3600, offset_hours=2)),
        SimCertificate("legacy-upstream", "Cool-Company", "Some_Other_CA", js_date(day - 400 * DAY),
                       js_date(day + 200 * DAY + 10 * 3600)),
    ]
    issued = int(day - 100 * DAY)
    tokens = [
        SimToken("tok-admin", _user_subject("admin"), issued, None, "admin UI token"),
        SimToken("tok-ci-2", _user_subject("ci-bot"), issued, int(day + 200 * DAY), "CI reads"),
        SimToken("tok-release", _user_subject("release-bot"), issued, str(int(day + 20 * DAY)), "releases"),
        SimToken("tok-alice", _user_subject("alice"), issued, int(day - 10 * DAY)),
        SimToken("tok-bob", _user_subject("bob"), issued, int(day - 2 * DAY)),
        SimToken("tok-service", ARTIFACTORY_ID, issued, int(day + 90 * DAY), "service token"),
        # The simulator's non-admin token lists only this one.
        SimToken("tok-reader", _user_subject("reader"), issued, int(day + 10 * DAY), "dashboards"),
    ]
    return SecurityArea(
        users=users,
        groups=["readers", "deployers", "ci", "admins", "qa"],
        certificates=certificates,
        tokens=tokens,
        permissions=healthy_permissions(),
    )


def degraded_security(day: float) -> SecurityArea:
    """The healthy data, and what needs acting on: a client certificate that expired 30 days ago, in the other
    documented date format, and a CI token that expires in 3 days."""
    security = healthy_security(day)
    assert security.certificates is not None and security.tokens is not None
    security.certificates.append(SimCertificate("expired-client", "JFrog", "Some_CA", js_date(day - 800 * DAY),
                                                iso_java(day - 30 * DAY)))
    security.tokens.insert(1, SimToken("tok-ci-1", _user_subject("ci-bot"), int(day - 100 * DAY),
                                       int(day + 3 * DAY), "CI deploys", True))
    return security


def healthy_permissions() -> list[SimPermission]:
    """The two targets a new Artifactory has, and a few a team adds; one name has a space, as "Any Remote" does."""
    return [
        SimPermission("Anything", ["ANY"], groups={"readers": "r"}),
        SimPermission("Any Remote", ["ANY REMOTE"], groups={"ci": "rw"}),
        SimPermission("deploy-releases", ["libs-release-local", "libs-snapshot-local"],
                      users={"release-bot": "rwdn"}, groups={"deployers": "rwn", "admins": "mrwdn"}, build=True),
        SimPermission("docker-push", ["docker-local"], users={"alice": "rw"}, groups={"ci": "rwd"},
                      excludes="**/*-SNAPSHOT/**"),
    ]


def activity_repos(repos: list[Repo]) -> list[str]:
    """Where items live: local and federated repositories, and the caches of remote ones."""
    out = []
    for repo in repos:
        kind = repo.repo_type.upper()
        if kind in ("LOCAL", "FEDERATED"):
            out.append(repo.key)
        elif kind == "REMOTE":
            out.append(f"{repo.key}-cache")
    return out


def healthy_areas(day: float, repos: list[Repo]) -> dict[str, Any]:
    """The areas of the healthy scenario (and those built from it)."""
    return {AREA: healthy_security(day), ACTIVITY_AREA: ActivityArea(activity_repos(repos))}


def oss_areas(day: float, repos: list[Repo]) -> dict[str, Any]:
    """OSS has Access (users, groups, tokens) but no certificate management, a Pro feature."""
    security = healthy_security(day)
    security.certificates = None
    without_federation = [r for r in repos if r.repo_type.upper() != "FEDERATED"]
    return {AREA: security, ACTIVITY_AREA: ActivityArea(activity_repos(without_federation))}


_REALMS = ("internal", "ldap", "saml", "oauth")
_STATUSES = ("enabled", "enabled", "enabled", "enabled", "enabled", "enabled", "disabled", "locked", "invited")


def populate_large(scenario: Scenario, day: float, users: int = 5_000, tokens: int = 3_000) -> None:
    """Thousands of users (several pages), groups and tokens; certificates in both date formats."""
    security = healthy_security(day)
    security.users = [
        SimUser(f"user-{i:05d}", _REALMS[i % len(_REALMS)], _STATUSES[(i // 4) % len(_STATUSES)]) for i in range(users)
    ]
    security.groups = [f"group-{i:04d}" for i in range(400)]
    for i, user in enumerate(security.users):
        user.groups = [f"group-{i % 400:04d}"]
    security.permissions = [
        SimPermission(f"perm-{i:04d}", [repo.key], groups={f"group-{i % 400:04d}": "rw"})
        for i, repo in enumerate(scenario.repos[:500])
    ]
    security.certificates = [
        SimCertificate(f"cert-{i:02d}", f"host-{i:02d}.example.com", "Acme Issuing CA", iso_java(day - 100 * DAY),
                       (iso_java if i % 2 else js_date)(day + (i * 17 % 400 - 20) * DAY))
        for i in range(20)
    ]
    issued = int(day - 100 * DAY)
    security.tokens = [
        SimToken(f"tok-{i:05d}", _user_subject(f"user-{i % 1500:05d}"), issued,
                 None if i % 10 == 0 else int(day + ((i * 7919) % 800 - 100) * DAY + i))
        for i in range(tokens)
    ]
    scenario.areas[AREA] = security
    scenario.areas[ACTIVITY_AREA] = ActivityArea(activity_repos(scenario.repos[:200]), created_per_minute=60.0,
                                                 downloads_per_minute=300.0, history=2_000)


def now_iso(ts: float) -> str:
    """AQL's date rendering: "2015-01-01T10:10:10.123Z"."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
