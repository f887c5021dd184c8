"""Collector `storage`: /artifactory/api/storageinfo.

Artifactory renders this summary for humans ("125,726", "3.48 GB",
"32.22 GB (15.77%)"); newer versions add exact ``...InBytes`` fields, which
win when present. Cloud omits the filestore sizes: those give no series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Permission
from exporter.values import (
    UnexpectedShape,
    lower_or_empty,
    parse_count,
    parse_percent_ratio,
    parse_size,
    safe_url,
    scalar_text,
)

F = Declarations("storage")
STORAGEINFO = F.endpoint("/artifactory/api/storageinfo", Permission.ADMIN)

BINARIES = F.gauge("jfrog_storage_binaries", "Number of binaries in the filestore (deduplicated).")
BINARIES_SIZE = F.gauge("jfrog_storage_binaries_size_bytes", "Size of the binaries in the filestore.")
ARTIFACTS = F.gauge("jfrog_storage_artifacts", "Number of artifacts (files in repositories).")
ARTIFACTS_SIZE = F.gauge("jfrog_storage_artifacts_size_bytes", "Size of all artifacts before deduplication.")
ITEMS = F.gauge("jfrog_storage_items", "Number of items (files and folders).")
OPTIMIZATION = F.gauge("jfrog_storage_optimization_ratio",
                       "Binaries size over artifacts size, as reported by the JPD (0..1).")
_STORE = ("storage_type", "storage_dir")
FILESTORE_SIZE = F.gauge("jfrog_storage_filestore_size_bytes", "Total space of the filestore.", *_STORE)
FILESTORE_USED = F.gauge("jfrog_storage_filestore_used_bytes", "Used space of the filestore.", *_STORE)
FILESTORE_FREE = F.gauge("jfrog_storage_filestore_free_bytes", "Free space of the filestore.", *_STORE)
_REPO = ("repo", "repo_type", "package_type")
REPO_USED = F.gauge("jfrog_storage_repo_used_bytes", "Space used by a repository.", *_REPO)
REPO_FILES = F.gauge("jfrog_storage_repo_files", "Files in a repository.", *_REPO)
REPO_FOLDERS = F.gauge("jfrog_storage_repo_folders", "Folders in a repository.", *_REPO)
REPO_ITEMS = F.gauge("jfrog_storage_repo_items", "Items (files and folders) in a repository.", *_REPO)


class StorageCollector(Collector[CollectorSettings]):
    name = "storage"
    default_interval = 300.0
    description = "binaries, filestore and per-repository storage summary"

    async def collect(self, run: Run) -> None:
        await run.part(STORAGEINFO, self._storage)

    async def _storage(self, part: Part) -> None:
        info = parse_result(parse_storage_info, await part.get())
        storage_families(info, part.out, self.target.repos.allows)


def storage_families(info: StorageInfo, out: Emitter, allows: Callable[[str], bool] = lambda _: True) -> None:
    """Emit the storage families; ``allows`` is the target's repository filter."""
    out.touch(FILESTORE_SIZE, FILESTORE_USED, FILESTORE_FREE, REPO_USED, REPO_FILES, REPO_FOLDERS, REPO_ITEMS)
    out.gauge(BINARIES, info.binaries)
    out.gauge(BINARIES_SIZE, info.binaries_size_bytes)
    out.gauge(ARTIFACTS, info.artifacts)
    out.gauge(ARTIFACTS_SIZE, info.artifacts_size_bytes)
    out.gauge(ITEMS, info.items)
    out.gauge(OPTIMIZATION, info.optimization_ratio)
    for store in info.filestores:
        labels = {"storage_type": store.storage_type, "storage_dir": store.storage_dir}
        out.gauge(FILESTORE_SIZE, store.size_bytes, **labels)
        out.gauge(FILESTORE_USED, store.used_bytes, **labels)
        out.gauge(FILESTORE_FREE, store.free_bytes, **labels)
    for repo in info.repos:
        if not allows(repo.repo):
            continue
        labels = {"repo": repo.repo, "repo_type": repo.repo_type, "package_type": repo.package_type}
        out.gauge(REPO_USED, repo.used_bytes, **labels)
        out.gauge(REPO_FILES, repo.files, **labels)
        out.gauge(REPO_FOLDERS, repo.folders, **labels)
        out.gauge(REPO_ITEMS, repo.items, **labels)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RepoStorage:
    repo: str
    repo_type: str
    package_type: str
    used_bytes: float | None
    files: float | None
    folders: float | None
    items: float | None


@dataclass(frozen=True, slots=True)
class Filestore:
    storage_type: str
    storage_dir: str
    size_bytes: float | None
    used_bytes: float | None
    free_bytes: float | None


@dataclass(slots=True)
class StorageInfo:
    binaries: float | None = None
    binaries_size_bytes: float | None = None
    artifacts: float | None = None
    artifacts_size_bytes: float | None = None
    items: float | None = None
    optimization_ratio: float | None = None
    filestores: list[Filestore] = field(default_factory=list)
    repos: list[RepoStorage] = field(default_factory=list)


def _bytes(summary: dict[str, object], key: str) -> float | None:
    exact = summary.get(key + "InBytes")
    return parse_count(exact) if exact is not None else parse_size(summary.get(key))


def parse_storage_info(body: object) -> StorageInfo:
    if not isinstance(body, dict):
        raise UnexpectedShape("storage info", "a JSON object", body)
    info = StorageInfo()
    binaries = body.get("binariesSummary") or {}
    if isinstance(binaries, dict):
        info.binaries = parse_count(binaries.get("binariesCount"))
        info.binaries_size_bytes = _bytes(binaries, "binariesSize")
        info.artifacts = parse_count(binaries.get("artifactsCount"))
        info.artifacts_size_bytes = _bytes(binaries, "artifactsSize")
        info.items = parse_count(binaries.get("itemsCount"))
        info.optimization_ratio = parse_percent_ratio(binaries.get("optimization"))
    stores = body.get("fileStoreSummary")
    for store in stores if isinstance(stores, list) else [stores] if isinstance(stores, dict) else []:
        if not isinstance(store, dict):
            continue
        info.filestores.append(
            Filestore(
                storage_type=lower_or_empty(store.get("storageType")),
                storage_dir=safe_url(store.get("storageDirectory")),
                size_bytes=_bytes(store, "totalSpace"),
                used_bytes=_bytes(store, "usedSpace"),
                free_bytes=_bytes(store, "freeSpace"),
            )
        )
    repos = body.get("repositoriesSummaryList") or []
    if not isinstance(repos, list):
        raise UnexpectedShape("storage info: repositoriesSummaryList", "a JSON array", repos)
    for repo in repos:
        key = scalar_text(repo.get("repoKey")) if isinstance(repo, dict) else ""
        if not key:
            continue
        # The TOTAL row sums the others; it is not a repository.
        if key == "TOTAL" and lower_or_empty(repo.get("repoType")) == "na":
            continue
        info.repos.append(
            RepoStorage(
                repo=key,
                repo_type=lower_or_empty(repo.get("repoType")),
                package_type=lower_or_empty(repo.get("packageType")),
                used_bytes=_bytes(repo, "usedSpace"),
                files=parse_count(repo.get("filesCount")),
                folders=parse_count(repo.get("foldersCount")),
                items=parse_count(repo.get("itemsCount")),
            )
        )
    return info
