"""Artifactory's own security API (before Access took users and groups over): users, groups and
permission targets under /artifactory/api/security, and the v2 permission targets.

The documents mark these "Requires Artifactory Pro": the free editions refuse them with the Pro-only
400 (tests/field/editions.yaml). Version 1 is admin-only; version 2 also answers a user who may
manage a target, with just those targets.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from exporter.simulator.core import STATE, admin, edition_refusal, jfrog_error
from exporter.simulator.security_data import AREA, DAY, SecurityArea, SimPermission, SimUser, iso_java

#: what the server answers for a name it does not know (tests/field/security.yaml)
_NOT_FOUND = "Not Found"
#: the v2 words of the v1 letters, in the order the documents list them
_ACTIONS = {"r": "read", "w": "write", "n": "annotate", "d": "delete", "m": "manage", "x": "distribute"}
_V1 = "/artifactory/api/security"
_V2 = "/artifactory/api/v2/security"


def _area(request: web.Request) -> SecurityArea | web.Response:
    """The scenario's security data, or the answer of a JPD that cannot serve it."""
    state = request.app[STATE]
    refusal = edition_refusal(state.scenario.edition)
    if refusal is not None:
        return refusal
    area = state.scenario.areas.get(AREA)
    if not isinstance(area, SecurityArea) or area.users is None:
        return jfrog_error(404, _NOT_FOUND)
    return area


def _name(request: web.Request) -> str:
    """The entity name of the path: "+" stands for a space (the server's default, per the documents)."""
    return request.match_info["name"].replace("+", " ")


def _listing(request: web.Request, root: str, names: list[str]) -> web.Response:
    base = f"{request.url.origin()}{root}"
    return web.json_response([{"name": n, "uri": f"{base}/{quote(n)}"} for n in names])


@admin
async def users(request: web.Request) -> web.StreamResponse:
    """2.9.58.1 Get Users: name, uri and realm of each user."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    base = f"{request.url.origin()}{_V1}/users"
    return web.json_response([{"name": u.username, "uri": f"{base}/{quote(u.username)}", "realm": u.realm}
                              for u in area.users or []])


def _user(user: SimUser, now: float) -> dict[str, Any]:
    """2.28 User+json, read side: no password; realm and lastLoggedIn are the server's."""
    body: dict[str, Any] = {
        "name": user.username, "email": user.email, "admin": user.admin,
        "profileUpdatable": user.realm == "internal", "disableUIAccess": False,
        # Users of an external realm sign in there: they have no internal password.
        "internalPasswordDisabled": user.realm != "internal",
        "realm": user.realm, "groups": list(user.groups), "watchManager": False, "policyManager": False,
    }
    if user.status == "enabled":
        # An hour before the start of the day, so the value holds all day long.
        body["lastLoggedIn"] = iso_java(now - now % DAY - 3600)
    return body


@admin
async def user(request: web.Request) -> web.StreamResponse:
    """2.9.2 Get User Details."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    found = area.user(_name(request))
    if found is None:
        return jfrog_error(404, _NOT_FOUND)
    return web.json_response(_user(found, time.time()))


@admin
async def groups(request: web.Request) -> web.StreamResponse:
    """2.9.58.8 Get Groups."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    return _listing(request, f"{_V1}/groups", list(area.groups or []))


@admin
async def group(request: web.Request) -> web.StreamResponse:
    """2.9.58.9 Get Group Details; its members with includeUsers=true (since 6.13)."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    name = _name(request)
    if name not in (area.groups or []):
        return jfrog_error(404, _NOT_FOUND)
    body: dict[str, Any] = {
        "name": name, "description": f"The {name} group", "autoJoin": name == "readers",
        "adminPrivileges": name == "admins", "realm": "internal",
        "watchManager": False, "policyManager": False, "reportsManager": False,
    }
    if request.query.get("includeUsers", "").lower() == "true":
        body["userNames"] = area.members(name)
    return web.json_response(body)


@admin
async def permissions(request: web.Request) -> web.StreamResponse:
    """2.9.20 Get Permission Targets."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    return _listing(request, f"{_V1}/permissions", [p.name for p in area.permissions or []])


@admin
async def permission(request: web.Request) -> web.StreamResponse:
    """2.9.21 Get Permission Target Details, in the v1 shape (2.28 PermissionTarget+json)."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    target = area.permission(_name(request))
    if target is None:
        return jfrog_error(404, _NOT_FOUND)
    return web.json_response({
        "name": target.name, "includesPattern": target.includes, "excludesPattern": target.excludes,
        "repositories": list(target.repositories),
        "principals": {"users": {k: list(v) for k, v in target.users.items()},
                       "groups": {k: list(v) for k, v in target.groups.items()}},
    })


def _manages(area: SecurityArea, username: str | None, target: SimPermission) -> bool:
    """Whether a user holds "m" on the target, itself or through one of its groups."""
    found = area.user(username) if username else None
    if found is None:
        return False
    if "m" in target.users.get(found.username, ""):
        return True
    return any("m" in target.groups.get(g, "") for g in found.groups)


def _caller(request: web.Request) -> tuple[bool, str | None]:
    """(is admin, user name) of the request's credentials."""
    state = request.app[STATE]
    role = state.credentials.role(request.headers.get("Authorization", ""))
    # The simulator's non-admin token belongs to the user "reader" (see security_data).
    return role == "admin", (state.credentials.user if role == "admin" else "reader")


def _section(target: SimPermission, repositories: list[str], includes: list[str]) -> dict[str, Any]:
    def words(letters: str) -> list[str]:
        return [_ACTIONS[c] for c in letters if c in _ACTIONS]

    return {
        "include-patterns": includes,
        "exclude-patterns": [target.excludes] if target.excludes else [],
        "repositories": repositories,
        "actions": {"users": {k: words(v) for k, v in target.users.items()},
                    "groups": {k: words(v) for k, v in target.groups.items()}},
    }


async def permissions_v2(request: web.Request) -> web.StreamResponse:
    """3.2.1 Get Permission Targets: all for an admin, the ones it may manage for another user."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    is_admin, username = _caller(request)
    names = [p.name for p in area.permissions or [] if is_admin or _manages(area, username, p)]
    return _listing(request, f"{_V2}/permissions", names)


async def permission_v2(request: web.Request) -> web.StreamResponse:
    """3.2.2 Get Permission Target Details (2.28 PermissionTargetV2+json)."""
    area = _area(request)
    if isinstance(area, web.Response):
        return area
    target = area.permission(_name(request))
    if target is None:
        return jfrog_error(404, _NOT_FOUND)
    is_admin, username = _caller(request)
    if not is_admin and not _manages(area, username, target):
        return jfrog_error(403, "Forbidden")
    body: dict[str, Any] = {"name": target.name,
                            "repo": _section(target, list(target.repositories), [target.includes])}
    if target.build:
        body["build"] = _section(target, ["artifactory-build-info"], ["**"])
    return web.json_response(body)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"{_V1}/users", users)
    router.add_get(f"{_V1}/users/{{name}}", user)
    router.add_get(f"{_V1}/groups", groups)
    router.add_get(f"{_V1}/groups/{{name}}", group)
    router.add_get(f"{_V1}/permissions", permissions)
    router.add_get(f"{_V1}/permissions/{{name}}", permission)
    router.add_get(f"{_V2}/permissions", permissions_v2)
    router.add_get(f"{_V2}/permissions/{{name}}", permission_v2)
