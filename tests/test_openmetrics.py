"""Collector `openmetrics`: the lenient parser on documented bodies and every quirk, then over HTTP,
then a real Prometheus scraping the exporter with passthrough on."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.core import Metric

from exporter.client import Outcome
from exporter.collectors.openmetrics import (
    ADDED_LABELS,
    CLAIMS,
    DROP_REASONS,
    NO_HELP,
    OpenMetricsCollector,
    OpenMetricsSettings,
)
from exporter.config import ConfigError, load_targets_file
from exporter.exposition import render_families
from exporter.metrics import merge_families
from exporter.openmetrics_parser import Body, Family, parse_body, parse_sample_line, read_body
from exporter.scheduler import Engine
from exporter.server import landing_page
from exporter.simulator import scenarios
from exporter.simulator.core import DEFAULT_READER_TOKEN
from exporter.simulator.routes.openmetrics import OpenMetricsBodies, artifactory_body, rtfs_body
from exporter.simulator.scenarios import GB
from exporter.snapshot import Payload, render_groups
from tests.conftest import InProcessSimulator, make_target
from tests.prometheus import exposition_problems, prometheus_server, promtool_check, text_format_proxy
from tests.support import REPO, exporter, parse_exposition, run_cli, scrape, series, simulator, value

CollectOnce = Callable[..., Any]

PAYLOADS = REPO / "tests" / "payloads" / "openmetrics"
# 2.3.34 Get the Open Metrics for Artifactory (jfrog-rest-apis.txt lines 4666-4704), copied verbatim: the
# documents' trailing spaces and the GC sample wrapped over two lines included.
ARTIFACTORY_DOCUMENTED = (PAYLOADS / "artifactory-documented.txt").read_text()
# 5.6.8 Get the Open Metrics for Distribution (jfrog-rest-apis.txt lines 31519-31559), the lines the page
# layout wrapped joined again: OpenMetrics-style counters, TYPE before HELP, an empty HELP, a histogram
# with one bucket sent twice and no +Inf bucket.
DISTRIBUTION_DOCUMENTED = (PAYLOADS / "distribution-documented.txt").read_text()


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
])
def test_invalid_histogram_is_reexposed_untyped(samples: str) -> None:
    body = parse_body("# HELP h Sizes\n# TYPE h histogram\n" + samples)
    assert body.retyped_families == 1
    assert all(f.type == "unknown" and f.help == "Sizes" for f in body.families)
    assert {f.name for f in body.families} <= {"h_bucket", "h_count", "h_sum"}
    assert sum(len(f.samples) for f in body.families) == samples.count("\n")


def test_summary_valid_and_invalid() -> None:
    ok = parse_body('# TYPE s summary\ns{quantile="0.99"} 0.2\ns{quantile="0.5"} 0.1\ns_count 3\ns_sum 0.4\n')
    assert [(f.name, f.type) for f in ok.families] == [("s", "summary")]
    assert [dict(s.labels).get("quantile") for s in ok.families[0].samples] == ["0.5", "0.99", None, None]
    bad = parse_body('# TYPE s summary\ns{quantile="2"} 0.2\ns_count 3\ns_sum 0.4\n')
    assert bad.retyped_families == 1
    assert sorted(f.name for f in bad.families) == ["s", "s_count", "s_sum"]


def test_clashing_names_in_one_body_first_family_wins() -> None:
    # A histogram occupies h_count; a gauge of that name later in the body would make two families of it.
    text = '# TYPE h histogram\nh_bucket{le="+Inf"} 1\n# TYPE h_count gauge\nh_count 3\n'
    body = parse_body(text)
    assert [(f.name, f.type) for f in body.families] == [("h", "histogram")]
    assert body.conflicting_samples == 1


def test_metadata_without_samples_makes_no_family() -> None:
    raw = read_body("# HELP lonely Nothing follows\n# TYPE lonely gauge\n")
    assert raw.families == [] and raw.unparseable_lines == 0


# -- the collector's assembly: labels, names, filters, limits ------------------------


def _collector(name: str = "t1", **settings: object) -> OpenMetricsCollector:
    target = make_target("http://127.0.0.1:1", name=name)
    return OpenMetricsCollector(target, OpenMetricsSettings(**settings))


def _vendor(families: list[Metric]) -> dict[str, Metric]:
    return {f.name: f for f in families if not f.name.startswith("jfrog_")}


def _self(families: list[Metric], name: str, **labels: str) -> float | None:
    for family in families:
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return None


def test_assembly_adds_target_and_service_labels_and_fills_missing_help() -> None:
    collector = _collector(rtfs=True)
    families = collector.assemble({
        "artifactory": parse_body('app_disk_free_bytes 5\napp_disk_free_bytes{service="rtfs"} 7\n', ADDED_LABELS),
        "rtfs": parse_body('# HELP app_disk_free_bytes Free\napp_disk_free_bytes{service="x"} 6\n', ADDED_LABELS),
    })
    disk = _vendor(families)["app_disk_free_bytes"]
    assert disk.documentation == NO_HELP
    assert [(s.labels, s.value) for s in disk.samples] == [
        ({"target": "t1"}, 5.0), ({"exported_service": "rtfs", "target": "t1"}, 7.0),
        ({"exported_service": "x", "service": "rtfs", "target": "t1"}, 6.0)]
    assert _self(families, "jfrog_openmetrics_series", service="rtfs") == 1
    assert _self(families, "jfrog_openmetrics_enabled", service="artifactory") == 1


def test_vendor_family_named_like_the_exporters_is_dropped() -> None:
    collector = _collector()
    families = collector.assemble({"artifactory": parse_body("# TYPE jfrog_up gauge\njfrog_up 0\nother 1\n")})
    assert set(_vendor(families)) == {"other"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="reserved_name") == 1


def test_include_and_exclude_match_whole_family_or_sample_names() -> None:
    text = ("# TYPE jfrt_downloads counter\njfrt_downloads_total 3\n"
            "jfrt_http_connections_leased_total 1\njfrt_http_connections_pending_total 0\nsys_cpu 5\n")
    collector = _collector(include=["jfrt_.*"], exclude=[".*_pending_total", "jfrt_downloads_total"])
    families = collector.assemble({"artifactory": parse_body(text)})
    assert set(_vendor(families)) == {"jfrt_http_connections_leased_total"}
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="filtered") == 3
    # Patterns match whole names: "jfrt" alone matches nothing.
    assert _vendor(_collector(include=["jfrt"]).assemble({"artifactory": parse_body(text)})) == {}


def test_max_series_keeps_whole_families_and_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    text = "".join(f'big{{i="{i}"}} {i}\n' for i in range(10)) + "small_a 1\nsmall_b 2\n"
    collector = _collector(max_series=3)
    with caplog.at_level(logging.WARNING):
        families = collector.assemble({"artifactory": parse_body(text)})
        collector.assemble({"artifactory": parse_body(text)})
    assert set(_vendor(families)) == {"small_a", "small_b"}
    assert _self(families, "jfrog_openmetrics_series") == 2
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="series_limit") == 10
    assert caplog.text.count("max_series=3") == 1, "warned once, not every run"


def test_dropped_samples_accumulate_across_runs_and_every_reason_is_present() -> None:
    collector = _collector()
    body = "x 1\nx 2\n"
    collector.assemble({"artifactory": parse_body(body)})
    families = collector.assemble({"artifactory": parse_body(body)})
    assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason="duplicate") == 2
    for reason in DROP_REASONS:
        assert _self(families, "jfrog_openmetrics_dropped_samples_total", reason=reason) is not None


def test_one_name_one_type_across_targets() -> None:
    gauge, counter = _collector("t1"), _collector("t2")
    as_gauge = "# TYPE pool_total gauge\npool_total 5\n"
    as_counter = "# TYPE pool counter\npool_total 7\n"
    first = gauge.assemble({"artifactory": parse_body(as_gauge)})
    second = counter.assemble({"artifactory": parse_body(as_counter)})
    assert "pool_total" in _vendor(first) and _vendor(second) == {}
    assert _self(second, "jfrog_openmetrics_dropped_samples_total", reason="name_conflict") == 1
    # The same type on another target merges, and so does an untyped family (one sample name either way).
    assert "pool_total" in _vendor(_collector("t3").assemble({"artifactory": parse_body(as_gauge)}))
    assert "pool_total" in _vendor(_collector("t4").assemble({"artifactory": parse_body("pool_total 2\n")}))
    # Once the first JPD stops sending it, the name is free.
    gauge.assemble({"artifactory": parse_body("other 1\n")})
    assert "pool" in _vendor(counter.assemble({"artifactory": parse_body(as_counter)}))
    CLAIMS.replace(counter, {})


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


def test_random_bodies_from_two_jpds_always_render_validly() -> None:
    rng = random.Random(20240601)
    first, second = _collector("t1"), _collector("t2")
    try:
        for _ in range(100):
            groups = [first.assemble({"artifactory": parse_body(_random_body(rng), ADDED_LABELS)}),
                      second.assemble({"artifactory": parse_body(_random_body(rng), ADDED_LABELS)})]
            _check_payload(_render(groups))
    finally:
        CLAIMS.replace(first, {})
        CLAIMS.replace(second, {})


def test_vendor_bodies_pass_promtool_apart_from_vendor_names() -> None:
    collector = _collector(rtfs=True)
    scenario = scenarios.build("degraded")
    families = collector.assemble({
        "artifactory": parse_body(ARTIFACTORY_DOCUMENTED + DISTRIBUTION_DOCUMENTED + artifactory_body(scenario, 1, 0)),
        "rtfs": parse_body(rtfs_body(scenario, 1, 0), ADDED_LABELS),
    })
    CLAIMS.replace(collector, {})
    errors, findings = promtool_check(_render([families]).text.decode())
    assert errors == []
    # The only findings are about the vendor's own names, never about the exporter's families.
    assert findings, "the vendor's gauges named *_total are expected findings"
    assert all(line.split()[0].startswith(("jfrt_", "jfds_")) for line in findings), findings
    assert all('non-counter metrics should not have "_total" suffix' in line for line in findings), findings


# -- over HTTP against the simulator ---------------------------------------------------


async def test_healthy_jpd_with_federation_service(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("healthy")
    target = make_target(url, collectors={"openmetrics": {"rtfs": True}})
    samples, engine = await collect_once([target], only=["openmetrics"])
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrt_runtime_heap_maxmemory_bytes", target="sim") == 2 * GB
    # The later of the two sys_cpu_totaltime_seconds lines of the body (the simulator's first poll).
    assert value(samples, "sys_cpu_totaltime_seconds", target="sim") == pytest.approx(1576.388 + 2.5)
    assert value(samples, "jfrt_db_connections_active_total", target="sim", pool="default") == 7
    pools = series(samples, "jfrt_http_connections_max_total", target="sim")
    assert sorted(p["pool"] for p in pools) == ["docker-remote", "maven-remote", "npm-remote"]
    assert value(samples, "jfrt_artifacts_downloads_total", repo="docker-local") is not None
    # RTFS series carry service="rtfs"; a name both services publish stays two series.
    assert value(samples, "jfrtfs_worker_lag_seconds", target="sim", service="rtfs", tenant="default") == 0.4
    assert len(series(samples, "app_disk_free_bytes", target="sim")) == 2
    assert value(samples, "jfrtfs_event_processing_seconds_bucket", le="+Inf", service="rtfs") is not None
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="rtfs") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", service="artifactory", reason="duplicate") == 1
    # pq_queue_events_left is typed counter without _total: re-exposed untyped, counted.
    assert value(samples, "jfrog_openmetrics_retyped_families", service="rtfs") == 1
    exposed = [k for k in samples if not k[0].startswith("jfrog_")]
    counted = sum(v for (n, _), v in samples.items() if n == "jfrog_openmetrics_series")
    assert counted == len(exposed)
    text = engine.store.payload.text.decode()
    help_line = next(line for line in text.splitlines() if line.startswith("# HELP app_disk_used_bytes"))
    assert help_line == '# HELP app_disk_used_bytes Used bytes of the disk holding "$JFROG_HOME" (C:\\\\ on Windows)'
    om = engine.store.payload.openmetrics.decode()
    assert '# HELP app_disk_used_bytes Used bytes of the disk holding \\"$JFROG_HOME\\" (C:\\\\ on Windows)' in om
    assert all(len(line.split("} ")[-1].split()) == 1 for line in text.splitlines()
               if line.startswith("jfrt_") and "}" in line), "no sample timestamp may be re-exposed"


async def test_metrics_disabled_on_the_jpd_is_reported(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("oss")
    samples, engine = await collect_once([make_target(url)], only=["openmetrics"])
    run = engine.store.run("sim", "openmetrics")
    assert run.outcome is Outcome.UNSUPPORTED
    assert "empty body: metrics are disabled on the JPD" in run.reason
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrog_exporter_collector_runs_total", collector="openmetrics", outcome="unsupported") == 1
    assert "metrics are disabled on the JPD" in landing_page(engine.store)
    assert not [n for n, _ in samples if n.startswith(("jfrt_", "sys_", "app_"))]


async def test_rtfs_missing_while_artifactory_publishes(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, state = await sim.start("healthy")
    state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory=ARTIFACTORY_DOCUMENTED, rtfs=None)
    samples, engine = await collect_once([make_target(url, collectors={"openmetrics": {"rtfs": True}})],
                                         only=["openmetrics"])
    assert engine.store.run("sim", "openmetrics").outcome is Outcome.SUCCESS
    assert value(samples, "jfrog_openmetrics_enabled", service="rtfs") == 0
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", service="artifactory",
                 reason="unparseable") == 2
    assert value(samples, "sys_cpu_totaltime_seconds", target="sim") == 1576.388


async def test_a_page_that_is_not_metrics_fails_the_run(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, state = await sim.start("healthy")
    state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="<html>\n<body>Login</body>\n</html>\n")
    _, engine = await collect_once([make_target(url)], only=["openmetrics"])
    run = engine.store.run("sim", "openmetrics")
    assert run.outcome is Outcome.BAD_RESPONSE and "no line of the body is a metric sample" in run.reason


async def test_a_body_cut_mid_line_keeps_the_last_good_data(sim: InProcessSimulator) -> None:
    url, state = await sim.start("healthy")
    engine = Engine([make_target(url)], only=["openmetrics"])
    try:
        state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="app_disk_free_bytes 9.599553e+10\n")
        assert await engine.run_collector("sim", "openmetrics") is Outcome.SUCCESS
        # Cut in the middle of the value: "9.59" would parse, so the missing line feed is what tells.
        state.scenario.areas["openmetrics"] = OpenMetricsBodies(artifactory="app_disk_free_bytes 9.59")
        assert await engine.run_collector("sim", "openmetrics") is Outcome.BAD_RESPONSE
        assert "cut off" in engine.store.run("sim", "openmetrics").reason
        kept = {f.name: f for f in engine.store.families("sim", "openmetrics")}
        assert kept["app_disk_free_bytes"].samples[0].value == 9.599553e10
    finally:
        await engine.shutdown()


async def test_non_admin_token_is_forbidden(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    url, _ = await sim.start("healthy")
    _, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["openmetrics"])
    assert engine.store.run("sim", "openmetrics").outcome is Outcome.FORBIDDEN


async def test_hostile_jpd_next_to_a_healthy_one(sim: InProcessSimulator, collect_once: CollectOnce) -> None:
    healthy_url, _ = await sim.start("healthy")
    degraded_url, _ = await sim.start("degraded")
    settings = {"openmetrics": {"rtfs": True}}
    targets = [make_target(healthy_url, name="a", collectors=settings),
               make_target(degraded_url, name="b", collectors=settings)]
    samples, engine = await collect_once(targets, only=["health", "openmetrics"])
    # The exporter's own jfrog_up wins over the vendor's.
    assert value(samples, "jfrog_up", target="b") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="artifactory",
                 reason="reserved_name") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="artifactory",
                 reason="unparseable") == 3
    assert value(samples, "jfrt_replication_queue_size", target="b", exported_target="dr-site") == 12
    # The NaN counter and the histogram without +Inf are re-exposed untyped.
    assert value(samples, "jfrog_openmetrics_retyped_families", target="b", service="artifactory") == 2
    # b's Federation service makes sys_cpu_totaltime_seconds a counter, its Artifactory a gauge: one name,
    # one kind of family (Artifactory's is read first).
    assert series(samples, "sys_cpu_totaltime_seconds", target="b") == [{"target": "b"}]
    assert series(samples, "sys_cpu_totaltime_seconds_total") == []
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="b", service="rtfs",
                 reason="name_conflict") == 1
    assert value(samples, "jfrog_openmetrics_dropped_samples_total", target="a", service="rtfs",
                 reason="name_conflict") == 0
    _check_payload(engine.store.payload)


# -- command line and a real Prometheus ----------------------------------------------


def test_once_with_collector_runs_exactly_that_collector(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        result = run_cli("once", "--url", sim.url, "--collector", "openmetrics",
                         env={"JFROG_ACCESS_TOKEN": "simulator-token"})
    assert result.returncode == 0, result.stderr
    samples = parse_exposition(result.stdout)
    assert [s["collector"] for s in series(samples, "jfrog_exporter_collector_success")] == ["openmetrics"]
    assert value(samples, "jfrt_runtime_heap_maxmemory_bytes") == 2 * GB
    assert series(samples, "jfrog_storage_binaries") == []


def test_serve_with_collector_runs_only_that_optional_collector(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, \
            exporter(tmp_path, "--url", sim.url, "--collector", "openmetrics") as exp:
        samples = scrape(exp.url)
    assert [s["collector"] for s in series(samples, "jfrog_exporter_collector_success")] == ["openmetrics"]
    assert value(samples, "jfrog_exporter_collector_success", collector="openmetrics") == 1
    assert value(samples, "jfrog_openmetrics_enabled", service="artifactory") == 1
    assert series(samples, "jfrog_up") == []


def _config(tmp: Path, targets: dict[str, str]) -> Path:
    lines = ["targets:"]
    for name, url in targets.items():
        lines += [
            f"  - name: {name}",
            f"    url: {url}",
            "    auth: {token_env: SIM_TOKEN}",
            "    collectors: {health: {interval: 1s}, openmetrics: {enabled: true, rtfs: true, interval: 1s}}",
        ]
    path = tmp / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_real_prometheus_ingests_passthrough_in_both_formats(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as a, simulator(tmp_path, "degraded") as b:
        config = _config(tmp_path, {"a": a.url, "b": b.url})
        with exporter(tmp_path, "--config", str(config), env={"SIM_TOKEN": "simulator-token"}) as exp, \
                text_format_proxy(exp.url + "/metrics") as text_url, \
                prometheus_server(tmp_path, scrape_urls=[exp.url + "/metrics", text_url]) as prom:
            targets = prom.wait_for_scrapes(3)
            assert len(targets) == 2 and all(t["health"] == "up" for t in targets), targets
            assert prom.scrape_problems() == {}, prom.output()
            direct, via_text = urlsplit(exp.url).netloc, urlsplit(text_url).netloc
            heap = prom.query("jfrt_runtime_heap_maxmemory_bytes")
            # Two targets, each ingested once as OpenMetrics (direct) and once as text (through the proxy).
            assert sorted((r["metric"]["target"], r["metric"]["instance"]) for r in heap) == sorted(
                [("a", direct), ("a", via_text), ("b", direct), ("b", via_text)])
            assert all(r["value"] == 2 * GB for r in heap)
            for instance in (direct, via_text):
                lag = prom.query(f'jfrtfs_worker_lag_seconds{{service="rtfs",instance="{instance}"}}')
                assert sorted(r["metric"]["target"] for r in lag) == ["a", "b"]
                assert prom.value(f'jfrt_replication_queue_size{{exported_target="dr-site",instance="{instance}"}}') \
                    == 12
                assert prom.value(f'jfrog_up{{target="b",instance="{instance}"}}') == 1
            # Vendor types survive both formats (OpenMetrics names a counter family without _total).
            assert [m["type"] for m in prom.metadata("jfrt_db_connections_active_total")] == ["gauge"]
            assert [m["type"] for m in prom.metadata("jfrt_artifacts_downloads")] == ["counter"]
            assert [m["type"] for m in prom.metadata("jfrt_artifacts_downloads_total")] == ["counter"]
            # This Prometheus silently keeps the last of repeated series: check the exposition itself too.
            text = httpx.get(exp.url + "/metrics").text
            om = httpx.get(exp.url + "/metrics", headers={"Accept": "application/openmetrics-text"}).text
    assert exposition_problems(text, om) == []
    assert "jfrt_db_connections_active_total{" in text and "jfrt_db_connections_active_total{" in om


def test_prometheus_helper_reports_a_failing_scrape(tmp_path: Path) -> None:
    with prometheus_server(tmp_path, scrape_urls=["http://127.0.0.1:9/metrics"]) as prom:
        prom.wait_for_scrapes(1)
        errors = prom.scrape_errors()
        assert list(errors) == ["http://127.0.0.1:9/metrics"] and errors["http://127.0.0.1:9/metrics"]
        assert prom.value("up") == 0


def test_merge_keeps_one_family_per_name() -> None:
    collector_a, collector_b = _collector("t1"), _collector("t2")
    try:
        a = collector_a.assemble({"artifactory": parse_body(ARTIFACTORY_DOCUMENTED)})
        b = collector_b.assemble({"artifactory": parse_body(ARTIFACTORY_DOCUMENTED)})
        merged = {f.name: f for f in merge_families([a, b])}
        assert {s.labels["target"] for s in merged["sys_cpu_totaltime_seconds"].samples} == {"t1", "t2"}
    finally:
        CLAIMS.replace(collector_a, {})
        CLAIMS.replace(collector_b, {})
