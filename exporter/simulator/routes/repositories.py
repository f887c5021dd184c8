"""Repository configuration: GET /artifactory/api/repositories/{repoKey} (2.10.6), in the shape of
2.26 Repository Configuration JSON. The list of repositories is served with federation's routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, edition_refusal, jfrog_error
from exporter.simulator.scenarios import Repo

#: where each package type's remote repositories point
_UPSTREAMS = {"maven": "https://repo1.maven.org/maven2/", "docker": "https://registry-1.docker.io/",
              "npm": "https://registry.npmjs.org", "pypi": "https://files.pythonhosted.org"}


def _common(repo: Repo) -> dict[str, Any]:
    """Fields every class of repository has; the configuration spells rclass and packageType in lower case."""
    package = repo.package_type.lower()
    return {
        "key": repo.key, "rclass": repo.repo_type.lower(), "packageType": package,
        "description": "", "notes": "", "includesPattern": "**/*", "excludesPattern": "",
        "repoLayoutRef": "maven-2-default" if package == "maven" else "simple-default",
    }


def _stored() -> dict[str, Any]:
    """Local and federated repositories store what is deployed to them."""
    return {"checksumPolicyType": "client-checksums", "handleReleases": True, "handleSnapshots": True,
            "maxUniqueSnapshots": 0, "maxUniqueTags": 0, "snapshotVersionBehavior": "unique",
            "suppressPomConsistencyChecks": False, "blackedOut": False, "xrayIndex": False,
            "archiveBrowsingEnabled": False, "dockerApiVersion": "V2"}


def configuration(repo: Repo, repos: list[Repo], base: str) -> dict[str, Any]:
    body = _common(repo)
    kind = body["rclass"]
    if kind in ("local", "federated"):
        body.update(_stored())
    if kind == "federated":
        body["members"] = [{"url": f"{base}/artifactory/{repo.key}", "enabled": True}]
    elif kind == "remote":
        body.update({"url": _UPSTREAMS.get(body["packageType"], "https://example.com/"), "offline": False,
                     "blackedOut": False, "storeArtifactsLocally": True, "socketTimeoutMillis": 15000,
                     "retrievalCachePeriodSecs": 7200})
    elif kind == "virtual":
        # A virtual repository aggregates the stored and remote ones of its package type.
        members = [r.key for r in repos if r.package_type == repo.package_type and r.repo_type != "VIRTUAL"]
        body.update({"repositories": members,
                     "defaultDeploymentRepo": next((m for m in members if m.endswith("-local")), None)})
    return body


async def repository(request: web.Request) -> web.StreamResponse:
    """2.10.6 Get Repository Configuration; a Pro feature, refused by the free editions."""
    scenario = request.app[STATE].scenario
    refusal = edition_refusal(scenario.edition)
    if refusal is not None:
        return refusal
    key = request.match_info["key"]
    repo = next((r for r in scenario.repos if r.key == key), None)
    if repo is None:
        # 400, not 404: JFrog's own CLI takes a 400 here to mean "no such repository" (tests/field/federation.yaml).
        return jfrog_error(400, "Bad Request")
    return web.json_response(configuration(repo, scenario.repos, str(request.url.origin())))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/repositories/{key}", repository)
