"""docs/metrics.md is generated from the collectors and must not drift from them."""

from __future__ import annotations

from exporter.reference import collect_entries, render_markdown
from tests.support import REPO


async def test_reference_is_up_to_date() -> None:
    entries = await collect_entries()
    generated = render_markdown(entries)
    committed = (REPO / "docs" / "metrics.md").read_text()
    assert committed == generated, "docs/metrics.md is out of date: run `jfrog-exporter reference > docs/metrics.md`"
    # The contract's families are all there, with their labels.
    assert entries["jfrog_storage_repo_used_bytes"].labels == {"target", "repo", "repo_type", "package_type"}
    assert entries["jfrog_license_expiry_timestamp_seconds"].labels >= {"target", "license_type", "node_id"}
    assert entries["jfrog_exporter_collector_runs_total"].typ == "counter"
