"""docs/metrics.md is generated from the declared families and must not drift from them."""

from __future__ import annotations

import re

from exporter.families import REGISTRY
from exporter.reference import PERMISSIONS_BEGIN, PERMISSIONS_END, render_markdown, render_permissions
from tests.support import REPO


def test_reference_is_up_to_date() -> None:
    generated = render_markdown()
    committed = (REPO / "docs" / "metrics.md").read_text()
    assert committed == generated, "docs/metrics.md is out of date: run `jfrog-exporter reference > docs/metrics.md`"


def test_the_contract_families_are_declared_with_their_labels() -> None:
    families = {f.exposed_name: f for f in REGISTRY.families()}
    assert families["jfrog_storage_repo_used_bytes"].labels == ("target", "repo", "repo_type", "package_type")
    assert families["jfrog_license_expiry_timestamp_seconds"].labels == (
        "target", "license_type", "licensed_to", "node_id")
    assert families["jfrog_exporter_collector_runs_total"].labels == ("target", "collector", "outcome")
    assert families["jfrog_exporter_endpoint_up"].labels == ("target", "collector", "endpoint")


def test_the_permissions_table_in_the_readme_is_up_to_date() -> None:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(PERMISSIONS_BEGIN), readme.index(PERMISSIONS_END) + len(PERMISSIONS_END)
    assert readme[start:end] == render_permissions(), \
        "README.md's permissions table is out of date: run `jfrog-exporter reference --permissions`"


def test_every_route_template_a_collector_reads_declares_its_permission() -> None:
    declared = {e.template for e in REGISTRY.endpoints()}
    for module in (REPO / "exporter" / "collectors").glob("*.py"):
        pattern = r'"(/(?:artifactory|router|access|worker|rtfs|distribution|event)/[^"]+)"'
        for template in re.findall(pattern, module.read_text()):
            assert template in declared, f"{module.name}: {template} has no declared permission"
