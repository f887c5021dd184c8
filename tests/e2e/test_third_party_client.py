"""An unmodified third-party client (pyartifactory 2.11.2) against the simulator over loopback HTTP.

pyartifactory is synchronous (requests), so each call runs in a thread while the simulator serves from
the test's event loop. Expected values come from the scenario's data, never from literals.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import requests
from pyartifactory import Artifactory
from pyartifactory.exception import RepositoryNotFoundError, UserNotFoundError
from pydantic import SecretStr

from exporter.simulator.core import DEFAULT_PASSWORD, DEFAULT_READER_TOKEN, DEFAULT_USER, SimState
from exporter.simulator.routes.aql import ActivityLog, Item, activity_log
from exporter.simulator.security_data import AREA, SecurityArea
from tests.conftest import InProcessSimulator

T = TypeVar("T")


async def call(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


def admin_client(url: str, api_version: int = 1) -> Artifactory:
    return Artifactory(url=f"{url}/artifactory", auth=(DEFAULT_USER, SecretStr(DEFAULT_PASSWORD)),
                       api_version=api_version, timeout=10)


def security(state: SimState) -> SecurityArea:
    area = state.scenario.areas[AREA]
    assert isinstance(area, SecurityArea)
    return area


def frozen_items(state: SimState) -> ActivityLog:
    """The simulator's items, no longer growing, so a query's answer can be computed beforehand."""
    log = activity_log(state)
    log.growing = False
    return log


def aql(client: Artifactory, query: str) -> dict[str, Any]:
    """POST an AQL query through the client's own session and credentials: pyartifactory 2.11.2 has no AQL call."""
    response = client.artifacts._post("api/search/aql", data=query, headers={"Content-Type": "text/plain"})
    body: dict[str, Any] = response.json()
    return body


async def test_users(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    client, area = admin_client(url), security(state)
    listed = await call(client.users.list)
    assert [u.name for u in listed] == [u.username for u in area.users or []]
    assert {u.name: u.realm for u in listed} == {u.username: u.realm for u in area.users or []}
    for expected in area.users or []:
        got = await call(lambda name=expected.username: client.users.get(name))  # type: ignore[misc]
        assert (got.name, got.admin, got.realm) == (expected.username, expected.admin, expected.realm)
        assert got.groups == expected.groups
        assert (got.lastLoggedIn is not None) == (expected.status == "enabled")
    with pytest.raises(UserNotFoundError):
        await call(lambda: client.users.get("nobody"))


async def test_groups(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    client, area = admin_client(url), security(state)
    assert [g.name for g in await call(client.groups.list)] == area.groups
    for name in area.groups or []:
        got = await call(lambda name=name: client.groups.get(name))  # type: ignore[misc]
        # pyartifactory asks with includeUsers=true: the members come along.
        assert got.name == name and got.userNames == area.members(name)
    assert (await call(lambda: client.groups.get("admins"))).adminPrivileges


async def test_permissions_v1(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    client, area = admin_client(url), security(state)
    listed = await call(client.permissions.list)
    assert [p.name for p in listed] == [p.name for p in area.permissions or []]
    for expected in area.permissions or []:
        got = await call(lambda name=expected.name: client.permissions.get(name))  # type: ignore[misc]
        assert got.repositories == expected.repositories
        principals = got.principals  # type: ignore[union-attr]
        assert {g: "".join(a.value for a in acts) for g, acts in (principals.groups or {}).items()} == expected.groups
        assert {u: "".join(a.value for a in acts) for u, acts in (principals.users or {}).items()} == expected.users


async def test_permissions_v2(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    client, area = admin_client(url, api_version=2), security(state)
    assert [p.name for p in await call(client.permissions.list)] == [p.name for p in area.permissions or []]
    for expected in area.permissions or []:
        got = await call(lambda name=expected.name: client.permissions.get(name))  # type: ignore[misc]
        assert got.repo is not None and got.repo.repositories == expected.repositories  # type: ignore[union-attr]
        assert (got.build is not None) == expected.build  # type: ignore[union-attr]
    # A space may be written "+" in the path, as the documents say.
    spaced = next(p.name for p in area.permissions or [] if " " in p.name)
    plus = await call(lambda: client.permissions.get(spaced.replace(" ", "+")))
    assert plus.name == spaced


async def test_repositories(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    client, repos = admin_client(url), state.scenario.repos
    listed = await call(client.repositories.list)
    assert [(r.key, r.type, r.packageType) for r in listed] == [(r.key, r.repo_type, r.package_type) for r in repos]
    for expected in repos:
        got = await call(lambda key=expected.key: client.repositories.get_repo(key))  # type: ignore[misc]
        assert (got.key, got.rclass.value) == (expected.key, expected.repo_type.lower())
        assert got.packageType.value == expected.package_type.lower()
    with pytest.raises(RepositoryNotFoundError):
        await call(lambda: client.repositories.get_repo("no-such-repo"))


def expected_page(items: list[Item], repo: str, pattern: str, limit: int) -> list[Item]:
    found = [i for i in items if i.repo == repo and fnmatch.fnmatchcase(i.name, pattern)]
    return sorted(found, key=lambda i: i.size, reverse=True)[:limit]


async def test_aql_criteria_include_sort_limit(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    log = frozen_items(state)
    repo = log.items[0].repo
    query = (f'items.find({{"repo": "{repo}", "name": {{"$match": "lib-*.jar"}}}})'
             '.include("repo", "path", "name", "size", "actual_sha1").sort({"$desc": ["size"]}).limit(5)')
    body = await call(lambda: aql(admin_client(url), query))
    expected = expected_page(log.items, repo, "lib-*.jar", 5)
    assert [(r["name"], r["size"]) for r in body["results"]] == [(i.name, i.size) for i in expected]
    assert all(set(r) == {"repo", "path", "name", "size", "actual_sha1"} for r in body["results"])
    assert body["range"] == {"start_pos": 0, "end_pos": len(expected), "total": len(expected), "limit": 5}


async def test_aql_as_jfrog_cli_writes_it(sim: InProcessSimulator) -> None:
    """JFrog's CLI repeats "$or" in one object (an exclusion, then the search) and skips the repository root."""
    url, state = await sim.start()
    log = frozen_items(state)
    repo = log.items[0].repo
    query = (f'items.find({{"path": {{"$ne": "."}}, "$or": [{{"name": {{"$nmatch": "lib-1*"}}}}], '
             f'"$or": [{{"$and": [{{"repo": "{repo}", "path": {{"$match": "*"}}, "name": {{"$match": "*.jar"}}}}]}}]}})'
             '.include("name", "repo", "path", "actual_md5", "actual_sha1", "sha256", "size", "type")'
             '.sort({"$asc": ["name"]}).offset(2).limit(3)')
    body = await call(lambda: aql(admin_client(url), query))
    found = sorted((i for i in log.items if i.repo == repo and not i.name.startswith("lib-1")), key=lambda i: i.name)
    assert [r["name"] for r in body["results"]] == [i.name for i in found[2:5]]
    assert body["range"]["start_pos"] == 2


async def test_reader_is_refused_admin_apis(sim: InProcessSimulator) -> None:
    url, state = await sim.start()
    reader = Artifactory(url=f"{url}/artifactory", access_token=DEFAULT_READER_TOKEN, timeout=10)
    for listing in (reader.users.list, reader.groups.list, reader.permissions.list):
        with pytest.raises(requests.HTTPError) as refused:
            await call(listing)
        assert refused.value.response is not None and refused.value.response.status_code == 403
    # Version 2 answers a non-admin too, with the targets it may manage: the reader manages none.
    reader_v2 = Artifactory(url=f"{url}/artifactory", access_token=DEFAULT_READER_TOKEN, api_version=2, timeout=10)
    assert await call(reader_v2.permissions.list) == []
    # AQL is open to any user, who must ask for repo, path and name.
    body = await call(lambda: aql(reader, 'items.find().include("repo", "path", "name").limit(1)'))
    assert len(body["results"]) == 1 and len(frozen_items(state).items) >= 1


async def test_free_edition_refuses_pro_security_api(sim: InProcessSimulator) -> None:
    url, _ = await sim.start("oss")
    with pytest.raises(requests.HTTPError) as refused:
        await call(admin_client(url).users.list)
    assert refused.value.response is not None and refused.value.response.status_code == 400
    assert "Artifactory Pro" in refused.value.response.json()["errors"][0]["message"]
