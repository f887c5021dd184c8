"""Security routes: Access users and groups (cursor-paged), TLS certificates, access tokens."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, admin, jfrog_error
from exporter.simulator.security_data import AREA, SecurityArea, SimToken

DEFAULT_LIMIT = 1000


def _area(request: web.Request) -> SecurityArea | None:
    area = request.app[STATE].scenario.areas.get(AREA)
    return area if isinstance(area, SecurityArea) else None


def _page(request: web.Request, entries: list[Any], max_limit: int) -> tuple[list[Any], str | None]:
    """Entries after the cursor, at most ``limit``; the cursor is opaque to clients (an offset here)."""
    try:
        limit = int(request.query.get("limit", DEFAULT_LIMIT))
        start = int(request.query.get("cursor") or 0)
    except ValueError:
        raise web.HTTPBadRequest(text="limit and cursor must be numbers") from None
    if not 1 <= limit <= max_limit or start < 0:
        raise web.HTTPBadRequest(text=f"limit must be between 1 and {max_limit}")
    page = entries[start:start + limit]
    nxt = start + limit
    return page, (str(nxt) if nxt < len(entries) else None)


@admin
async def users(request: web.Request) -> web.StreamResponse:
    """4.4.2 Get User List: {"users": [...], "cursor": "..."} with the cursor absent on the last page."""
    area = _area(request)
    if area is None or area.users is None:
        return jfrog_error(404, "Not Found")
    base = str(request.url.origin())
    page, cursor = _page(request, area.users, 1_000_000)
    body: dict[str, Any] = {"users": [
        {"username": u.username, "uri": f"{base}/access/api/v2/users/{u.username}", "realm": u.realm,
         "status": u.status}
        for u in page
    ]}
    if cursor:
        body["cursor"] = cursor
    return web.json_response(body)


@admin
async def groups(request: web.Request) -> web.StreamResponse:
    """4.5.2 Get a List of Groups."""
    area = _area(request)
    if area is None or area.groups is None:
        return jfrog_error(404, "Not Found")
    base = str(request.url.origin())
    page, cursor = _page(request, area.groups, 99_999)
    body: dict[str, Any] = {"groups": [
        {"group_name": name, "uri": f"{base}/access/api/v2/groups/{name}"} for name in page
    ]}
    if cursor:
        body["cursor"] = cursor
    return web.json_response(body)


@admin
async def certificates(request: web.Request) -> web.StreamResponse:
    """2.9.55 Get Certificates."""
    area = _area(request)
    if area is None or area.certificates is None:
        return jfrog_error(404, "File not found.")
    return web.json_response([
        {"certificateAlias": c.alias, "issuedTo": c.issued_to, "issuedBy": c.issued_by, "issuedOn": c.issued_on,
         "validUntil": c.valid_until, "fingerPrint": "ab:cd:ef:01:23:45"}
        for c in area.certificates
    ])


def _token(token: SimToken) -> dict[str, Any]:
    body: dict[str, Any] = {"token_id": token.token_id, "subject": token.subject, "issued_at": token.issued_at,
                            "issuer": token.subject.split("/", 1)[0], "refreshable": token.refreshable}
    if token.expiry is not None:
        body["expiry"] = token.expiry
    if token.description:
        body["description"] = token.description
    return body


async def tokens(request: web.Request) -> web.StreamResponse:
    """4.7.1.3 Get Tokens: an admin sees every token, another user only the tokens of its own subject."""
    state = request.app[STATE]
    area = _area(request)
    if area is None or area.tokens is None:
        return jfrog_error(404, "Not Found")
    role = state.credentials.role(request.headers.get("Authorization", ""))
    listed = area.tokens if role == "admin" else [t for t in area.tokens if t.subject.endswith("/users/reader")]
    return web.json_response({"tokens": [_token(t) for t in listed]})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/access/api/v2/users", users)
    router.add_get("/access/api/v2/groups", groups)
    router.add_get("/artifactory/api/system/security/certificates", certificates)
    router.add_get("/access/api/v1/tokens", tokens)
