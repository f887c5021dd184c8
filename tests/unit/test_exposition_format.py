"""The incremental renderer produces exactly what prometheus_client would, in both formats."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from exporter.exposition import assemble, render_families
from exporter.families import Declarations, Emitter, Histogram, Registry

F = Declarations("test", Registry())
UP = F.gauge("jfrog_up", "1 if the JPD answered.")
FILES = F.gauge("jfrog_storage_repo_files", 'Files "in" a\\repo\nsecond line.', "repo")
EXECUTIONS = F.counter("jfrog_worker_executions", "Executions.", "worker", "status")
PUD = F.state_set("jfrog_pud_status", "PUD state.", ["never_run", "running"])
DURATIONS = F.histogram("jfrog_worker_execution_duration_seconds", "Durations.", "worker")


class _Registry:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _families() -> list[Metric]:
    out = Emitter("prod")
    out.gauge(UP, 1)
    out.gauge(FILES, 12345678901.5, repo='a"b\\c\nd')
    out.gauge(FILES, float("nan"), repo="nan")
    out.gauge(FILES, float("inf"), repo="inf")
    out.counter(EXECUTIONS, 3, worker="w", status="STATUS_SUCCESS")
    out.state(PUD, "running")
    hist = Histogram((0.1, 1.0))
    for v in (0.05, 0.5, 5):
        hist.observe(v)
    out.histogram(DURATIONS, hist.buckets, hist.cumulative(), hist.total, worker="w")
    untyped = Metric("vendor_thing", "A vendor family.", "untyped")
    untyped.add_sample("vendor_thing", {"a": "1"}, 2.0)
    return [*out.families(), untyped]


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
    up = Declarations("test", Registry()).gauge("jfrog_up", "up")
    a, b = Emitter("a"), Emitter("b")
    a.gauge(up, 1)
    b.gauge(up, 0)
    text = assemble([render_families(a.families()), render_families(b.families())]).decode()
    assert text == '# HELP jfrog_up up\n# TYPE jfrog_up gauge\njfrog_up{target="a"} 1.0\njfrog_up{target="b"} 0.0\n'


def test_a_lone_surrogate_from_the_jpd_renders_instead_of_failing() -> None:
    out = Emitter("prod")
    out.gauge(FILES, 1, repo="bad\udfffname")
    text = assemble([render_families(out.families())])
    assert b'repo="bad?name"' in text
    text.decode("utf-8")  # valid UTF-8 for the scraper


_TEXT = st.text(st.characters(exclude_categories=("Cs",)))  # a lone surrogate: see the test above


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(_TEXT, _TEXT, st.floats()), max_size=8))
def test_any_label_values_render_as_prometheus_client_renders_them(rows: list[tuple[str, str, float]]) -> None:
    out = Emitter("prod")
    for worker, status, value in rows:
        out.counter(EXECUTIONS, value, worker=worker, status=status)
    families = out.families()
    assert assemble([render_families(families)]) == generate_latest(_Registry(families))  # type: ignore[arg-type]
