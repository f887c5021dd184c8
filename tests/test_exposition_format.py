"""The incremental renderer produces exactly what prometheus_client would, in both formats."""

from __future__ import annotations

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.exposition import assemble, render_families
from exporter.metrics import Histogram, MetricSet


class _Registry:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _families() -> list[Metric]:
    metrics = MetricSet("prod")
    metrics.gauge("jfrog_up", "1 if the JPD answered.", 1)
    metrics.gauge("jfrog_storage_repo_files", 'Files "in" a\\repo\nsecond line.', 12345678901.5, repo='a"b\\c\nd')
    metrics.gauge("jfrog_storage_repo_files", "ignored", float("nan"), repo="nan")
    metrics.gauge("jfrog_storage_repo_files", "ignored", float("inf"), repo="inf")
    metrics.counter("jfrog_worker_executions", "Executions.", 3, worker="w", status="STATUS_SUCCESS")
    metrics.state_set("jfrog_pud_status", "PUD state.", ["never_run", "running"], "running")
    hist = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 5):
        hist.observe(v)
    metrics.histogram("jfrog_worker_execution_duration_seconds", "Durations.", hist.buckets, hist.cumulative(),
                      hist.total, worker="w")
    untyped = Metric("vendor_thing", "A vendor family.", "untyped")
    untyped.add_sample("vendor_thing", {"a": "1"}, 2.0)
    return [*metrics.families(), untyped]


def test_text_matches_prometheus_client() -> None:
    families = _families()
    assert assemble([render_families(families)]) == generate_latest(_Registry(families))  # type: ignore[arg-type]


def test_openmetrics_matches_prometheus_client_and_parses() -> None:
    families = _families()
    ours = assemble([render_families(families)], openmetrics=True)
    assert ours == generate_openmetrics(_Registry(families))
    names = {f.name for f in parse_openmetrics(ours.decode())}
    assert {"jfrog_up", "jfrog_worker_executions", "vendor_thing"} <= names


def test_same_family_from_two_targets_is_one_block() -> None:
    a, b = MetricSet("a"), MetricSet("b")
    a.gauge("jfrog_up", "up", 1)
    b.gauge("jfrog_up", "up", 0)
    text = assemble([render_families(a.families()), render_families(b.families())]).decode()
    assert text == '# HELP jfrog_up up\n# TYPE jfrog_up gauge\njfrog_up{target="a"} 1.0\njfrog_up{target="b"} 0.0\n'
