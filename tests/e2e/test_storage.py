"""Collector `storage`: every storageinfo format, then the simulator's editions over HTTP."""

from __future__ import annotations

import pytest

from exporter.collectors.storage import parse_storage_info
from exporter.simulator.scenarios import GB
from tests.conftest import make_target
from tests.support import documented, series, value


def test_documented_sample() -> None:
    # 2.3.8 Get Storage Summary Info (jfrog-rest-apis.txt line 3696), made well-formed.
    info = parse_storage_info(documented("core", "storageinfo.json"))
    assert info.binaries == 125_726
    assert info.binaries_size_bytes == pytest.approx(3.48 * GB)
    assert info.artifacts == 2_084_408
    assert info.artifacts_size_bytes == pytest.approx(59.77 * GB)
    assert info.items == 2_176_580
    assert info.optimization_ratio == pytest.approx(0.0582)
    [store] = info.filestores
    assert store.storage_type == "filesystem"
    assert store.size_bytes == pytest.approx(204.28 * GB)
    assert store.used_bytes == pytest.approx(32.22 * GB)
    assert store.free_bytes == pytest.approx(172.06 * GB)
    # The TOTAL row is not a repository.
    assert [r.repo for r in info.repos] == ["plugins-release", "repo"]
    assert info.repos[0].repo_type == "virtual"
    assert info.repos[0].package_type == "maven"
    assert info.repos[0].used_bytes == 0


def test_unavailable_and_missing_values_give_no_value() -> None:
    info = parse_storage_info({
        "binariesSummary": {"binariesCount": "N/A", "binariesSize": "N/A", "optimization": "N/A"},
        "fileStoreSummary": {"storageType": "S3", "storageDirectory": "s3://user:secret@bucket/filestore"},
        "repositoriesSummaryList": [{"repoKey": "a", "repoType": "LOCAL", "usedSpace": "N/A"}],
    })
    assert info.binaries is None
    assert info.binaries_size_bytes is None
    assert info.optimization_ratio is None
    [store] = info.filestores
    assert store.size_bytes is None and store.used_bytes is None
    assert "secret" not in store.storage_dir
    assert info.repos[0].used_bytes is None
    assert info.repos[0].files is None


def test_exact_byte_fields_win() -> None:
    info = parse_storage_info({
        "fileStoreSummary": {"storageType": "filesystem", "totalSpace": "1.00 GB", "totalSpaceInBytes": 1073741999},
        "repositoriesSummaryList": [],
    })
    assert info.filestores[0].size_bytes == 1073741999


def test_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_storage_info(["not", "an", "object"])
    with pytest.raises(ValueError):
        parse_storage_info({"repositoriesSummaryList": "nope"})


async def test_healthy_storage_numbers(sim, collect_once) -> None:
    url, state = await sim.start("healthy")
    samples, _ = await collect_once([make_target(url)], only=["storage"])
    assert value(samples, "jfrog_storage_binaries") == 125_726
    assert value(samples, "jfrog_storage_binaries_size_bytes") == pytest.approx(3.48 * GB, rel=1e-3)
    assert value(samples, "jfrog_storage_filestore_size_bytes", storage_type="filesystem") == pytest.approx(
        204.28 * GB, rel=1e-3)
    assert value(samples, "jfrog_storage_repo_used_bytes", repo="libs-release-local", repo_type="local",
                 package_type="maven") == pytest.approx(12.5 * GB)
    assert value(samples, "jfrog_storage_repo_files", repo="docker-local") == 15_780
    assert value(samples, "jfrog_storage_repo_items", repo="docker-local") == 15_780 + 2_301
    assert len(series(samples, "jfrog_storage_repo_used_bytes")) == len(state.scenario.repos)
    assert series(samples, "jfrog_storage_repo_used_bytes", repo="TOTAL") == []


async def test_cloud_reports_no_filestore_sizes(sim, collect_once) -> None:
    url, _ = await sim.start("cloud")
    samples, _ = await collect_once([make_target(url)], only=["storage"])
    assert value(samples, "jfrog_storage_binaries") == 125_726
    assert series(samples, "jfrog_storage_filestore_size_bytes") == []
    assert series(samples, "jfrog_storage_filestore_free_bytes") == []
    assert value(samples, "jfrog_exporter_collector_success", collector="storage") == 1


async def test_repo_filters_apply(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    target = make_target(url, repos={"include": ["^libs-"], "exclude": ["snapshot"]})
    samples, _ = await collect_once([target], only=["storage"])
    repos = sorted(s["repo"] for s in series(samples, "jfrog_storage_repo_used_bytes"))
    assert repos == ["libs-federated", "libs-release", "libs-release-local"]


async def test_non_admin_token_is_forbidden(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token="simulator-reader-token")], only=["storage"])
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="storage", outcome="forbidden") == 1
    assert "this endpoint needs an admin user" in engine.store.run("sim", "storage").reason
