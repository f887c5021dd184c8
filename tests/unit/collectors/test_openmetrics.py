"""Collector `openmetrics`: the lenient parser on documented bodies and every quirk, the families it hands
over, and the collector's labels, names, filters and limits; whatever the JPD sends, both renderings stay valid."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
    UnknownMetricFamily,
)

from exporter.collectors import openmetrics
from exporter.collectors.openmetrics import (
    ADDED_LABELS,
    CLAIMS,
    DROP_REASONS,
    OpenMetricsCollector,
    OpenMetricsSettings,
)
from exporter.config import ConfigError, load_targets_file
from exporter.exposition import render_families
from exporter.families import Declarations, Emitter, Registry, merge_families
from exporter.openmetrics_parser import NO_HELP, Body, Family, parse_body, parse_sample_line, read_body, to_metrics
from exporter.simulator import scenarios
from exporter.simulator.routes.openmetrics import artifactory_body, rtfs_body
from exporter.snapshot import Payload, render_groups
from tests.conftest import make_target
from tests.prometheus import exposition_problems, promtool_check
from tests.support import REPO

PAYLOADS = REPO / "tests" / "payloads" / "openmetrics"
# 2.3.34 Get the Open Metrics for Artifactory (jfrog-rest-apis.txt lines 4666-4704), copied verbatim: the
# documents' trailing spaces and the GC sample wrapped over two lines included.
ARTIFACTORY_DOCUMENTED = (PAYLOADS / "artifactory-documented.txt").read_text()
# 5.6.8 Get the Open Metrics for Distribution (jfrog-rest-apis.txt lines 31519-31559), the lines the page
# layout wrapped joined again: OpenMetrics-style counters, TYPE before HELP, an empty HELP, a histogram
# with one bucket sent twice and no +Inf bucket.
DISTRIBUTION_DOCUMENTED = (PAYLOADS / "distribution-documented.txt").read_text()

MakeCollector = Callable[..., OpenMetricsCollector]


def _family(body: Body, name: str) -> Family:
    found = [f for f in body.families if f.name == name]
    assert len(found) == 1, f"{name}: {[f.name for f in body.families]}"
    return found[0]


def _values(family: Family) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, s.labels): s.value for s in family.samples}


# -- the parser on the documented bodies ----------------------------------------


def test_documented_artifactory_sample() -> None:
    body = parse_body(ARTIFACTORY_DOCUMENTED)
    # The GC sample the page wrapped over two lines: two unreadable lines, skipped, nothing else lost.
    assert body.unparseable_lines == 2
    # The body repeats the system figures in a second dump: the later values win.
    assert body.duplicate_samples == 3
    cpu = _family(body, "sys_cpu_totaltime_seconds")
    assert (cpu.type, cpu.help) == ("gauge", "Total cpu time from the threads in seconds")
    assert _values(cpu) == {("sys_cpu_totaltime_seconds", ()): 1576.388}
    assert _values(_family(body, "app_disk_free_bytes")) == {("app_disk_free_bytes", ()): 9.599553e10}
    assert _values(_family(body, "app_disk_total_bytes")) == {("app_disk_total_bytes", ()): 1.038806e11}
    # Families sent with only "# UPDATED" lines are untyped, under the vendor's names (gauges ending in _total).
    pool = _family(body, "jfrt_http_connections_available_total")
    assert pool.type == "unknown"
    assert _values(pool) == {
        ("jfrt_http_connections_available_total", (("max", "50"), ("pool", "insight-remote-1602763529314"))): 46.0
    }
    assert _values(_family(body, "jfrt_runtime_heap_maxmemory_bytes")) == {
        ("jfrt_runtime_heap_maxmemory_bytes", ()): 2.147484e09}
    assert _values(_family(body, "jfrt_runtime_heap_processors_total")) == {
        ("jfrt_runtime_heap_processors_total", ()): 4.0}
    assert body.retyped_families == 0 and body.conflicting_samples == 0
    assert len(body.families) == 11


def test_documented_gc_sample_on_one_line() -> None:
    text = ARTIFACTORY_DOCUMENTED.replace('"TRASH_AND_BINARIES"}  \n0.007', '"TRASH_AND_BINARIES"} 0.007')
    body = parse_body(text)
    assert body.unparseable_lines == 0
    gc = _family(body, "jfrt_artifacts_gc_duration_seconds")
    assert (gc.type, gc.help) == ("gauge", "Time taken for garbage collection")
    labels = (("end", "1595837400008"), ("start", "1595837400001"), ("status", "COMPLETED"),
              ("type", "TRASH_AND_BINARIES"))
    assert _values(gc) == {("jfrt_artifacts_gc_duration_seconds", labels): 0.007}


def test_documented_distribution_sample() -> None:
    body = parse_body(DISTRIBUTION_DOCUMENTED)
    assert body.unparseable_lines == 0
    # OpenMetrics-style counters: family name without _total, samples with it.
    per_status = _family(body, "jfds_number_of_distributions_per_status")
    assert (per_status.type, per_status.help) == ("counter", "number of distributions per state")
    assert {dict(s.labels)["status"]: s.value for s in per_status.samples} == {"completed": 112.0, "failed": 6.0}
    assert {s.name for s in per_status.samples} == {"jfds_number_of_distributions_per_status_total"}
    assert _family(body, "jfds_stuck_distributions_by_status").help == ""
    # The histogram has no +Inf bucket: not a histogram either format accepts. Its values stay, untyped,
    # under the vendor's sample names; the bucket sent twice keeps its later value.
    assert body.retyped_families == 1 and body.duplicate_samples == 1
    buckets = _family(body, "jfds_number_of_artifacts_in_release_bundle_version_bucket")
    assert buckets.type == "unknown" and len(buckets.samples) == 8
    assert {dict(s.labels)["le"]: s.value for s in buckets.samples}["100.0"] == 111.0
    assert _family(body, "jfds_number_of_artifacts_in_release_bundle_version_count").samples[0].value == 121.0
    assert _family(body, "jfds_number_of_artifacts_in_release_bundle_version_sum").samples[0].value == 1705.0
    assert _family(body, "jfds_number_of_artifacts_in_release_bundle_version_max").type == "gauge"


# -- the parser on each quirk ------------------------------------------------------


def test_repeated_help_and_type_blocks_merge_into_one_family() -> None:
    text = (
        "# HELP jfrt_http_connections_leased_total Leased Connections\n"
        "# UPDATED jfrt_http_connections_leased_total 1602763596303\n"
        "# TYPE jfrt_http_connections_leased_total gauge\n"
        'jfrt_http_connections_leased_total{max="50",pool="maven-remote"} 3 1602763596305\n'
        "# HELP jfrt_http_connections_leased_total Leased Connections\n"
        "# UPDATED jfrt_http_connections_leased_total 1602763596303\n"
        "# TYPE jfrt_http_connections_leased_total gauge\n"
        'jfrt_http_connections_leased_total{max="50",pool="docker-remote"} 0 1602763596305\n'
    )
    body = parse_body(text)
    assert [f.name for f in body.families] == ["jfrt_http_connections_leased_total"]
    family = body.families[0]
    assert (family.type, family.help) == ("gauge", "Leased Connections")
    assert {dict(s.labels)["pool"]: s.value for s in family.samples} == {"maven-remote": 3.0, "docker-remote": 0.0}
    assert body.duplicate_samples == 0 and body.unparseable_lines == 0


def test_updated_and_eof_lines_are_ignored_wherever_they_are() -> None:
    text = ("# UPDATED a 1602763596303\n# EOF\na 1\n# UNIT a seconds\n# some other comment\n\n"
            "# EOF\nb 2\n# EOF\n")
    body = parse_body(text)
    assert [(f.name, f.samples[0].value) for f in body.families] == [("a", 1.0), ("b", 2.0)]
    assert body.unparseable_lines == 0


def test_timestamps_and_exemplars_are_dropped() -> None:
    sample = parse_sample_line("sys_cpu_totaltime_seconds 129.909 1595837402516")
    assert (sample.name, sample.labels, sample.value) == ("sys_cpu_totaltime_seconds", (), 129.909)
    exemplar = parse_sample_line('requests_total{code="200"} 17 1.5 # {trace_id="abc"} 1 1.2')
    assert (exemplar.labels, exemplar.value) == ((("code", "200"),), 17.0)


def test_escaped_help_and_label_values() -> None:
    text = (
        '# HELP app_disk_used_bytes Used bytes of \\"$JFROG_HOME\\"\\nas seen by the JVM (C:\\\\ on Windows)\n'
        "# TYPE app_disk_used_bytes gauge\n"
        'app_disk_used_bytes{path="C:\\\\jfrog",note="say \\"hi\\"\\nbye"} 5\n'
    )
    family = parse_body(text).families[0]
    assert family.help == 'Used bytes of "$JFROG_HOME"\nas seen by the JVM (C:\\ on Windows)'
    assert dict(family.samples[0].labels) == {"path": "C:\\jfrog", "note": 'say "hi"\nbye'}


@pytest.mark.parametrize("line", [
    'foo{a="b" 1',
    "foo",
    "foo 1_000",
    "foo 12,5",
    "foo bar",
    "foo 1 notatimestamp",
    "foo 1 2 3",
    "1foo 2",
    "{} 1",
    'foo{__name__="bar"} 1',
    'foo{a="1",a="2"} 1',
    'foo{a=1} 1',
    'foo{a="unterminated} 1',
    "foo-bar 1",
    "<html><body>Bad gateway</body></html>",
    "# HELP 9bad help for an invalid name",
])
def test_a_line_that_cannot_be_parsed_is_skipped_and_counted(line: str) -> None:
    body = parse_body(f"before 1\n{line}\nafter 2\n")
    assert body.unparseable_lines == 1
    assert [(f.name, f.samples[0].value) for f in body.families] == [("before", 1.0), ("after", 2.0)]


def test_line_ends_are_newlines_only() -> None:
    body = parse_body('a{note="one\u2028two\x85three"} 1\r\nb 2\r\n')
    assert [(f.name, dict(f.samples[0].labels)) for f in body.families] == [
        ("a", {"note": "one\u2028two\x85three"}), ("b", {})]
    assert body.unparseable_lines == 0


def test_identical_series_keep_the_last_and_empty_labels_are_absent() -> None:
    text = 'pool{name="a",zone=""} 1\npool{name="a"} 2\npool{name="b"} 3\npool{ name = "a" , } 4\n'
    body = parse_body(text)
    assert body.duplicate_samples == 2
    assert {s.labels: s.value for s in body.families[0].samples} == {(("name", "a"),): 4.0, (("name", "b"),): 3.0}


def test_vendor_target_label_is_kept_as_exported_target() -> None:
    sample = parse_sample_line('queue{target="dr-site",x="1"} 12', frozenset({"target"}))
    assert sample.labels == (("exported_target", "dr-site"), ("x", "1"))
    with pytest.raises(ValueError):
        parse_sample_line('queue{target="a",exported_target="b"} 1', frozenset({"target"}))


@pytest.mark.parametrize(("text", "expected"), [
    # Prometheus text style counter and OpenMetrics style counter: both become family "c" with samples c_total.
    ("# TYPE c_total counter\nc_total 3\n", [("c", "counter", ["c_total"])]),
    ("# TYPE c counter\nc_total 3\nc_created 1.6e9\n", [("c", "counter", ["c_total", "c_created"])]),
    # A counter whose sample lacks _total cannot render as a counter: untyped, same name.
    ("# TYPE c counter\nc 3\n", [("c", "unknown", ["c"])]),
    ("# TYPE c counter\nc_total NaN\n", [("c_total", "unknown", ["c_total"])]),
    ("# TYPE c counter\nc_total -1\n", [("c_total", "unknown", ["c_total"])]),
    # A _created without its _total; a counter family whose name keeps a _total (CounterMetricFamily drops it).
    ("# TYPE c counter\nc_created 1.6e9\n", [("c_created", "unknown", ["c_created"])]),
    ("# TYPE c_total_total counter\nc_total_total 1\n", [("c_total_total", "unknown", ["c_total_total"])]),
    # A gauge named like a counter stays a gauge under its own name.
    ("# TYPE g_total gauge\ng_total -5\n", [("g_total", "gauge", ["g_total"])]),
    # TYPE blocks that disagree: the family is untyped.
    ("# TYPE m gauge\nm 1\n# TYPE m counter\n", [("m", "unknown", ["m"])]),
    ("# TYPE m untyped\nm 1\n", [("m", "unknown", ["m"])]),
    ("# TYPE m timer\nm 1\n", [("m", "unknown", ["m"])]),
    # Types only OpenMetrics knows are not re-typed by guesswork.
    ("# TYPE s stateset\ns{s=\"a\"} 1\n", [("s", "unknown", ["s"])]),
    ("# TYPE i info\ni_info{v=\"1\"} 1\n", [("i_info", "unknown", ["i_info"])]),
])
def test_types_the_samples_can_carry(text: str, expected: list[tuple[str, str, list[str]]]) -> None:
    body = parse_body(text)
    assert [(f.name, f.type, [s.name for s in f.samples]) for f in body.families] == expected


def test_valid_histogram_is_ordered_and_its_last_bound_spelled_plus_inf() -> None:
    text = (
        "# TYPE h histogram\n"
        'h_bucket{le="Inf",x="1"} 4\nh_bucket{le="0.5",x="1"} 3\nh_count{x="1"} 4\nh_sum{x="1"} 1.5\n'
        'h_bucket{le="0.1",x="1"} 1\nh_bucket{le="+Inf",x="2"} 0\n'
    )
    body = parse_body(text)
    assert body.retyped_families == 0
    family = _family(body, "h")
    assert family.type == "histogram"
    assert [(s.name, dict(s.labels).get("le"), dict(s.labels)["x"]) for s in family.samples] == [
        ("h_bucket", "0.1", "1"), ("h_bucket", "0.5", "1"), ("h_bucket", "+Inf", "1"), ("h_count", None, "1"),
        ("h_sum", None, "1"), ("h_bucket", "+Inf", "2")]


@pytest.mark.parametrize("samples", [
    'h_bucket{le="1"} 4\nh_count 4\nh_sum 2\n',  # no +Inf bucket
    'h_bucket{le="1"} 5\nh_bucket{le="+Inf"} 4\nh_count 4\nh_sum 2\n',  # buckets not cumulative
    'h_bucket{le="+Inf"} 4\nh_count 5\nh_sum 2\n',  # count differs from +Inf
    'h_bucket{le="+Inf"} 4\nh_count 4\n',  # count without sum
    'h_bucket{le="+Inf"} 4.5\n',  # not a whole number
    'h_bucket{le="abc"} 1\nh_bucket{le="+Inf"} 4\n',
    'h_bucket 1\n',  # no le label
    'h_bucket{le="1"} 1\nh_bucket{le="1.0"} 2\nh_bucket{le="+Inf"} 4\n',  # one bound spelt twice
    'h_bucket{le="+Inf"} 4\nh_count 4\nh_sum 2\nh_created 1.6e9\n',  # HistogramMetricFamily has no _created
])
def test_invalid_histogram_is_reexposed_untyped(samples: str) -> None:
    body = parse_body("# HELP h Sizes\n# TYPE h histogram\n" + samples)
    assert body.retyped_families == 1
    assert all(f.type == "unknown" and f.help == "Sizes" for f in body.families)
    assert {f.name for f in body.families} <= {"h_bucket", "h_count", "h_sum", "h_created"}
    assert sum(len(f.samples) for f in body.families) == samples.count("\n")


def test_summaries_of_count_and_sum_stay_typed() -> None:
    ok = parse_body('# TYPE s summary\ns_count{x="1"} 3\ns_sum{x="1"} 0.4\ns_count{x="2"} 0\ns_sum{x="2"} 0\n')
    assert [(f.name, f.type, len(f.samples)) for f in ok.families] == [("s", "summary", 4)]
    assert ok.retyped_families == 0
    bad = parse_body('# TYPE s summary\ns{quantile="2"} 0.2\ns_count 3\ns_sum 0.4\n')
    assert bad.retyped_families == 1
    assert sorted(f.name for f in bad.families) == ["s", "s_count", "s_sum"]


@pytest.mark.parametrize("samples", [
    's_count 3\n',  # count without sum
    's_count 3.5\ns_sum 1\n',
    's_count 3\ns_sum -1\n',
    # What SummaryMetricFamily cannot carry: quantiles, _created.
    's{quantile="0.99"} 0.2\ns{quantile="0.5"} 0.1\ns_count 3\ns_sum 0.4\n',
    's_count 3\ns_sum 1\ns_created 1.6e9\n',
])
def test_a_summary_the_family_types_cannot_carry_keeps_its_values_untyped(samples: str) -> None:
    body = parse_body("# TYPE s summary\n" + samples)
    assert body.retyped_families == 1
    assert all(f.type == "unknown" for f in body.families)
    assert sum(len(f.samples) for f in body.families) == samples.count("\n")


def test_clashing_names_in_one_body_first_family_wins() -> None:
    # A histogram occupies h_count; a gauge of that name later in the body would make two families of it.
    text = '# TYPE h histogram\nh_bucket{le="+Inf"} 1\n# TYPE h_count gauge\nh_count 3\n'
    body = parse_body(text)
    assert [(f.name, f.type) for f in body.families] == [("h", "histogram")]
    assert body.conflicting_samples == 1


def test_metadata_without_samples_makes_no_family() -> None:
    raw = read_body("# HELP lonely Nothing follows\n# TYPE lonely gauge\n")
    assert raw.families == [] and raw.unparseable_lines == 0


# -- the families handed over: prometheus_client's public types ------------------------


def _samples(metrics: list[Metric]) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for m in metrics for s in m.samples]


def test_each_type_is_built_with_its_public_family_type() -> None:
    text = ('# TYPE g gauge\ng{a="1"} 1\n# TYPE c counter\nc_total 2\nc_created 1.6e9\nu 3\n'
            '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 1.5\n'
            '# TYPE s summary\ns_count 4\ns_sum 0.5\n')
    built = {f.name: to_metrics(f, {"target": "t"}) for f in parse_body(text).families}
    assert {name: [type(m) for m in ms] for name, ms in built.items()} == {
        "g": [GaugeMetricFamily], "c": [CounterMetricFamily], "u": [UnknownMetricFamily],
        "h": [HistogramMetricFamily], "s": [SummaryMetricFamily]}
    assert _samples(built["c"]) == [("c_total", {"target": "t"}, 2.0), ("c_created", {"target": "t"}, 1.6e9)]
    assert _samples(built["h"]) == [
        ("h_bucket", {"target": "t", "le": "1"}, 1.0), ("h_bucket", {"target": "t", "le": "+Inf"}, 2.0),
        ("h_count", {"target": "t"}, 2.0), ("h_sum", {"target": "t"}, 1.5)]
    assert _samples(built["s"]) == [("s_count", {"target": "t"}, 4.0), ("s_sum", {"target": "t"}, 0.5)]
    assert _samples(built["g"]) == [("g", {"a": "1", "target": "t"}, 1.0)]


def test_a_histogram_sent_without_count_and_sum_is_built_without_them() -> None:
    [family] = parse_body('# TYPE h histogram\nh_bucket{le="+Inf"} 2\n').families
    assert _samples(to_metrics(family, {})) == [("h_bucket", {"le": "+Inf"}, 2.0)]


def test_samples_without_some_labels_are_built_as_they_came() -> None:
    # An empty label value is no label: one object per set of label names, rendered as one family.
    [family] = parse_body('pool{name="a",max="5"} 1\npool{max="5"} 2\npool{name="b",max="5"} 3\n').families
    metrics = to_metrics(family, {"target": "t"})
    assert len(metrics) == 2 and {m.name for m in metrics} == {"pool"}
    assert _samples(metrics) == [("pool", {"max": "5", "name": "a", "target": "t"}, 1.0),
                                 ("pool", {"max": "5", "name": "b", "target": "t"}, 3.0),
                                 ("pool", {"max": "5", "target": "t"}, 2.0)]
    text = _render([metrics]).text.decode()
    assert text.count("# TYPE pool ") == 1
    assert 'pool{max="5",target="t"} 2.0' in text


# -- the collector: labels, names, filters, limits ------------------------------------


@pytest.fixture
def make_collector() -> Iterator[MakeCollector]:
    """Collectors whose names are released at the end, as an engine that is gone releases them."""
    made: list[OpenMetricsCollector] = []

    def make(name: str = "t1", **settings: object) -> OpenMetricsCollector:
        collector = OpenMetricsCollector(make_target("http://127.0.0.1:1", name=name),
                                         OpenMetricsSettings.model_validate(settings))
        made.append(collector)
        return collector

    yield make
    for collector in made:
        for state in collector.services.values():
            CLAIMS.replace(state, {})


def _publish(collector: OpenMetricsCollector, bodies: dict[str, Body | None]) -> list[Metric]:
    """What the collector's parts hand over, one part per service in the collector's order, merged by name."""
    out = Emitter(collector.target.name)
    for service, body in bodies.items():
        collector.publish(service, body, out)
    return merge_families([out.families()])


def _vendor(families: list[Metric]) -> dict[str, Metric]:
    return {f.name: f for f in families if not f.name.startswith("jfrog_")}


def _self(families: list[Metric], name: str, **labels: str) -> float | None:
    for family in families:
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return None


def test_target_and_service_labels_are_added_and_missing_help_filled(make_collector: MakeCollector) -> None:
    collector = make_collector(rtfs=True)
    families = _publish(collector, {
        "artifactory": parse_body('app_disk_free_bytes 5\napp_disk_free_bytes{service="rtfs"} 7\n', ADDED_LABELS),
        "rtfs": parse_body('# HELP app_disk_free_bytes Free\napp_disk_free_bytes{service="x"} 6\n', ADDED_LABELS),
    })
    disk = _vendor(families)["app_disk_free_bytes"]
    assert disk.documentation == NO_HELP
    assert [(s.labels, s.value) for s in disk.samples] == [
        ({"target": "t1"}, 5.0), ({"exported_service": "rtfs", "target": "t1"}, 7.0),
        ({"exported_service": "x", "service": "rtfs", "target": "t1"}, 6.0)]
    assert _self(families, "jfrog_openmetrics_series", service="rtfs") == 1
    assert _self(families, "jfrog_openmetrics_series", service="artifactory") == 2
    assert _self(families, "jfrog_openmetrics_enabled", service="artifactory") == 1


def test_a_service_without_metrics_reports_enabled_0_and_frees_its_names(make_collector: MakeCollector) -> None:
    collector, other = make_collector("t1"), make_collector("t2")
    _publish(collector, {"artifactory": parse_body("# TYPE pool gauge\npool 1\n")})
    families = _publish(collector, {"artifactory": None})
    assert _self(families, "jfrog_openmetrics_enabled", service="artifactory") == 0
    assert _self(families, "jfrog_openmetrics_series", service="artifactory") == 0
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="unparseable") == 0
    assert _vendor(families) == {}
    # The name is free for another JPD to use as another kind of family.
    assert "pool" in _vendor(_publish(other, {"artifactory": parse_body("# TYPE pool counter\npool_total 1\n")}))


def test_vendor_family_named_like_the_exporters_is_dropped(make_collector: MakeCollector) -> None:
    families = _publish(make_collector(), {"artifactory": parse_body("# TYPE jfrog_up gauge\njfrog_up 0\nother 1\n")})
    assert set(_vendor(families)) == {"other"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="reserved_name") == 1


def test_a_name_a_declared_family_exposes_is_reserved(make_collector: MakeCollector,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    Declarations("elsewhere", registry).counter("acme_requests", "Requests.")
    monkeypatch.setattr(openmetrics, "REGISTRY", registry)
    text = "acme_requests_total 3\n# TYPE acme_requests_created gauge\nacme_requests_created 1\nacme 2\n"
    families = _publish(make_collector(), {"artifactory": parse_body(text)})
    assert set(_vendor(families)) == {"acme"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="reserved_name") == 2


def test_include_and_exclude_match_whole_family_or_sample_names(make_collector: MakeCollector) -> None:
    text = ("# TYPE jfrt_downloads counter\njfrt_downloads_total 3\n"
            "jfrt_http_connections_leased_total 1\njfrt_http_connections_pending_total 0\nsys_cpu 5\n")
    collector = make_collector(include=["jfrt_.*"], exclude=[".*_pending_total", "jfrt_downloads_total"])
    families = _publish(collector, {"artifactory": parse_body(text)})
    assert set(_vendor(families)) == {"jfrt_http_connections_leased_total"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="filtered") == 3
    # Patterns match whole names: "jfrt" alone matches nothing.
    assert _vendor(_publish(make_collector(include=["jfrt"]), {"artifactory": parse_body(text)})) == {}


def test_max_series_keeps_whole_families_and_counts_the_rest(make_collector: MakeCollector,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    text = "".join(f'big{{i="{i}"}} {i}\n' for i in range(10)) + "small_a 1\nsmall_b 2\n"
    collector = make_collector(max_series=3)
    with caplog.at_level(logging.WARNING):
        families = _publish(collector, {"artifactory": parse_body(text)})
        _publish(collector, {"artifactory": parse_body(text)})
    assert set(_vendor(families)) == {"small_a", "small_b"}
    assert _self(families, "jfrog_openmetrics_series") == 2
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="series_limit") == 10
    assert caplog.text.count("max_series=3") == 1, "warned once, not every run"


def test_the_federation_service_gets_what_artifactory_leaves_of_max_series(make_collector: MakeCollector) -> None:
    collector = make_collector(rtfs=True, max_series=3)
    families = _publish(collector, {"artifactory": parse_body("a 1\nb 2\n"),
                                    "rtfs": parse_body('c{x="1"} 1\nc{x="2"} 2\nd 3\n')})
    assert set(_vendor(families)) == {"a", "b", "d"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", service="rtfs", reason="series_limit") == 2
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", service="artifactory",
                 reason="series_limit") == 0


def test_dropped_samples_accumulate_across_runs_and_every_reason_is_present(make_collector: MakeCollector) -> None:
    collector = make_collector()
    body = "x 1\nx 2\n"
    _publish(collector, {"artifactory": parse_body(body)})
    families = _publish(collector, {"artifactory": parse_body(body)})
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="duplicate") == 2
    for reason in DROP_REASONS:
        assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason=reason) is not None


def test_one_name_one_type_across_targets(make_collector: MakeCollector) -> None:
    gauge, counter = make_collector("t1"), make_collector("t2")
    as_gauge = "# TYPE pool_total gauge\npool_total 5\n"
    as_counter = "# TYPE pool counter\npool_total 7\n"
    first = _publish(gauge, {"artifactory": parse_body(as_gauge)})
    second = _publish(counter, {"artifactory": parse_body(as_counter)})
    assert "pool_total" in _vendor(first) and _vendor(second) == {}
    assert _self(second, "jfrog_openmetrics_dropped_samples_total", reason="name_conflict") == 1
    # The same type on another target merges, and so does an untyped family (one sample name either way).
    third, fourth = make_collector("t3"), make_collector("t4")
    assert "pool_total" in _vendor(_publish(third, {"artifactory": parse_body(as_gauge)}))
    assert "pool_total" in _vendor(_publish(fourth, {"artifactory": parse_body("pool_total 2\n")}))
    # Once no JPD sends it any more, the name is free.
    _publish(gauge, {"artifactory": parse_body("other 1\n")})
    _publish(third, {"artifactory": None})
    assert _vendor(_publish(counter, {"artifactory": parse_body(as_counter)})) == {}, "the fourth still sends it"
    _publish(fourth, {"artifactory": parse_body("other 1\n")})
    assert "pool" in _vendor(_publish(counter, {"artifactory": parse_body(as_counter)}))


def test_one_name_one_type_across_the_services_of_a_target(make_collector: MakeCollector) -> None:
    collector = make_collector(rtfs=True)
    as_gauge, as_counter = "# TYPE cpu gauge\ncpu 5\n", "# TYPE cpu counter\ncpu_total 7\n"
    # Artifactory's body is read first and keeps the name.
    families = _publish(collector, {"artifactory": parse_body(as_gauge), "rtfs": parse_body(as_counter)})
    assert [s.labels for s in _vendor(families)["cpu"].samples] == [{"target": "t1"}]
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", service="rtfs", reason="name_conflict") == 1
    # Once a service exposes a name, it keeps it, also while its part fails (its families stay): the first
    # to use a name keeps it, whichever service that is.
    families = _publish(collector, {"artifactory": parse_body("other 1\n"), "rtfs": parse_body(as_counter)})
    assert _vendor(families)["cpu"].type == "counter"
    families = _publish(collector, {"artifactory": parse_body(as_gauge)})
    assert "cpu" not in _vendor(families)
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", service="artifactory",
                 reason="name_conflict") == 1


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        OpenMetricsSettings(include=["jfrt_("])
    with pytest.raises(ValueError):
        OpenMetricsSettings(max_series=0)
    assert OpenMetricsCollector.enabled_by_default is False and OpenMetricsCollector.default_interval == 30


def test_config_file_reports_the_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("targets:\n  - url: http://127.0.0.1:1\n    collectors: {openmetrics: {exclude: ['(']}}\n")
    with pytest.raises(ConfigError, match=r"collectors\.openmetrics\.exclude"):
        load_targets_file(path)


def test_merge_keeps_one_family_per_name(make_collector: MakeCollector) -> None:
    a = _publish(make_collector("t1"), {"artifactory": parse_body(ARTIFACTORY_DOCUMENTED)})
    b = _publish(make_collector("t2"), {"artifactory": parse_body(ARTIFACTORY_DOCUMENTED)})
    merged = {f.name: f for f in merge_families([a, b])}
    assert {s.labels["target"] for s in merged["sys_cpu_totaltime_seconds"].samples} == {"t1", "t2"}


# -- whatever the JPD sends, both renderings stay valid -------------------------------

_NAMES = ["a", "a_total", "a_created", "a_bucket", "a_count", "a_sum", "b", "b_total", "b_info", "jfrog_up", "c:x"]
_TYPES = ["counter", "gauge", "histogram", "summary", "untyped", "unknown", "info", "stateset", "gaugehistogram",
          "bogus"]
_LABELS = ["", '{x="1"}', '{x=""}', '{le="0.5"}', '{le="+Inf"}', '{le="Inf"}', '{le="NaN"}', '{le="1",x="1"}',
           '{le="+Inf",x="1"}', '{quantile="0.5"}', '{quantile="2"}', '{target="t"}', '{service="s"}', '{x="a\\"b"}']
_VALUES = ["1", "0", "-1", "NaN", "+Inf", "-Inf", "2.5", "1e3", "4"]


def _random_histogram(rng: random.Random, name: str) -> list[str]:
    """A histogram or summary that is valid, or nearly: a bucket missing, counts off, a part absent."""
    kind = rng.choice(["histogram", "summary"])
    lines = [f"# TYPE {name} {kind}"]
    group = rng.choice(["", 'x="1",'])
    if kind == "histogram":
        counts = sorted(rng.choice([0, 1, 2, 3]) for _ in range(3))
        for bound, count in zip(["0.5", "1", "+Inf"], counts, strict=True):
            if rng.random() < 0.9:
                lines.append(f'{name}_bucket{{{group}le="{bound}"}} {count}')
        total = counts[-1]
    else:
        lines += [f'{name}{{{group}quantile="{q}"}} {rng.choice(_VALUES)}' for q in rng.sample(["0.5", "0.9", "1"], 2)]
        total = rng.randint(0, 3)
    if rng.random() < 0.8:
        lines.append(f"{name}_count{{{group[:-1]}}} {total if rng.random() < 0.8 else total + 1}")
    if rng.random() < 0.8:
        lines.append(f"{name}_sum{{{group[:-1]}}} {rng.choice(['1.5', '1.5', '0', '-1', 'NaN'])}")
    return lines


def _random_body(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(1, 30)):
        roll = rng.random()
        name = rng.choice(_NAMES)
        if roll < 0.12:
            lines += _random_histogram(rng, rng.choice(["h", "hist", "a"]))
        elif roll < 0.2:
            lines.append(f"# TYPE {name} {rng.choice(_TYPES)}")
        elif roll < 0.25:
            lines.append(f"# HELP {name} help \\\\ for {name}\\n")
        elif roll < 0.28:
            lines.append(rng.choice(["# EOF", f"# UPDATED {name} 1602763596303", "garbage line", 'x{y="1" 2']))
        else:
            timestamp = f" {rng.randint(1, 2**41)}" if rng.random() < 0.5 else ""
            lines.append(f"{name}{rng.choice(_LABELS)} {rng.choice(_VALUES)}{timestamp}")
    return "\n".join(lines) + "\n"


def _render(groups: list[list[Metric]]) -> Payload:
    return render_groups(1, [render_families(group) for group in groups])


def _check_payload(payload: Payload) -> None:
    """Parsed by promtool and the strict OpenMetrics parser, no duplicate series, one TYPE per name."""
    text, om = payload.text.decode(), payload.openmetrics.decode()
    problems = exposition_problems(text, om)
    assert problems == [], f"{problems}\n{text}"


def test_random_bodies_from_two_jpds_always_render_validly(make_collector: MakeCollector) -> None:
    rng = random.Random(20240601)
    first, second = make_collector("t1"), make_collector("t2")
    for _ in range(100):
        groups = [_publish(first, {"artifactory": parse_body(_random_body(rng), ADDED_LABELS)}),
                  _publish(second, {"artifactory": parse_body(_random_body(rng), ADDED_LABELS)})]
        _check_payload(_render(groups))


def test_vendor_bodies_pass_promtool_apart_from_vendor_names(make_collector: MakeCollector) -> None:
    scenario = scenarios.build("degraded")
    families = _publish(make_collector(rtfs=True), {
        "artifactory": parse_body(ARTIFACTORY_DOCUMENTED + DISTRIBUTION_DOCUMENTED + artifactory_body(scenario, 1, 0)),
        "rtfs": parse_body(rtfs_body(scenario, 1, 0), ADDED_LABELS),
    })
    errors, findings = promtool_check(_render([families]).text.decode())
    assert errors == []
    # The only findings are about the vendor's own names, never about the exporter's families.
    assert findings, "the vendor's gauges named *_total are expected findings"
    assert all(line.split()[0].startswith(("jfrt_", "jfds_")) for line in findings), findings
    assert all('non-counter metrics should not have "_total" suffix' in line for line in findings), findings
