"""Declared families: one claim per name, label sets as declared, public prometheus_client types."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from exporter.families import REGISTRY, DeclarationError, Declarations, Emitter, LabelMismatch, Registry


def test_a_name_is_claimed_once_with_its_suffixes() -> None:
    registry = Registry()
    a = Declarations("a", registry)
    b = Declarations("b", registry)
    a.counter("jfrog_thing", "Things.")
    with pytest.raises(DeclarationError, match="already declared by a"):
        b.gauge("jfrog_thing", "Again.")
    # A gauge named like the counter's sample collides with it, as in prometheus_client's registry.
    with pytest.raises(DeclarationError, match="jfrog_thing_total, already exposed by jfrog_thing"):
        b.gauge("jfrog_thing_total", "Clash.")
    a.histogram("jfrog_latency_seconds", "Latency.")
    with pytest.raises(DeclarationError, match="jfrog_latency_seconds_count"):
        b.gauge("jfrog_latency_seconds_count", "Clash.")
    assert registry.claimed("jfrog_latency_seconds_bucket") == "jfrog_latency_seconds"
    assert registry.claimed("jfrog_other") is None


def test_the_same_declaration_twice_is_one_family() -> None:
    registry = Registry()
    first = Declarations("a", registry).gauge("jfrog_x", "X.", "repo")
    assert Declarations("a", registry).gauge("jfrog_x", "X.", "repo") is first


@pytest.mark.parametrize("declare", [
    lambda f: f.gauge("jfrog_x", "X.", "target"),
    lambda f: f.counter("jfrog_x_total", "X."),
    lambda f: f.info("jfrog_x", "X."),
    lambda f: f.state_set("jfrog_x", "X.", []),
])
def test_malformed_declarations_are_refused(declare) -> None:
    with pytest.raises(DeclarationError):
        declare(Declarations("a", Registry()))


def test_samples_must_carry_the_declared_labels() -> None:
    fam = Declarations("a", Registry()).gauge("jfrog_repo_size_bytes", "Size.", "repo", "package_type")
    out = Emitter("prod")
    out.gauge(fam, 1.0, repo="libs", package_type="maven")
    with pytest.raises(LabelMismatch, match=r"missing \['package_type'\], undeclared \['kind'\]"):
        out.gauge(fam, 2.0, repo="libs", kind="maven")
    with pytest.raises(TypeError):
        out.counter(fam, 1.0, repo="libs", package_type="maven")


def test_families_read_as_prometheus_client_families() -> None:
    f = Declarations("a", Registry())
    gauge, counter, hist = f.gauge("jfrog_g", "G.", "repo"), f.counter("jfrog_c", "C."), f.histogram("jfrog_h", "H.")
    out = Emitter("t")
    out.gauge(gauge, 1, repo="r1")
    out.gauge(gauge, 2.5, repo="r2")
    out.counter(counter, 2)
    out.histogram(hist, (1.0,), (1, 3), 4.5)
    built = {m.name: m for m in out.families()}
    # Gauges and counters keep their series as rows; read, they are the Samples prometheus-client's types hold.
    expected_gauge = GaugeMetricFamily("jfrog_g", "G.", labels=["target", "repo"])
    expected_gauge.add_metric(["t", "r1"], 1)
    expected_gauge.add_metric(["t", "r2"], 2.5)
    expected_counter = CounterMetricFamily("jfrog_c", "C.", labels=["target"])
    expected_counter.add_metric(["t"], 2)
    assert built["jfrog_g"] == expected_gauge and expected_gauge == built["jfrog_g"]
    assert built["jfrog_c"] == expected_counter
    assert len(built["jfrog_g"].samples) == 2
    assert built["jfrog_g"].samples[1] == expected_gauge.samples[1]
    assert built["jfrog_g"].samples[:5] == expected_gauge.samples
    assert built["jfrog_g"] != expected_counter
    assert isinstance(built["jfrog_h"], HistogramMetricFamily)
    assert [(s.name, s.labels, s.value) for s in built["jfrog_c"].samples] == [
        ("jfrog_c_total", {"target": "t"}, 2.0)]
    assert [(s.name, s.labels.get("le"), s.value) for s in built["jfrog_h"].samples] == [
        ("jfrog_h_bucket", "1.0", 1.0), ("jfrog_h_bucket", "+Inf", 3.0), ("jfrog_h_count", None, 3.0),
        ("jfrog_h_sum", None, 4.5)]


def test_none_is_no_series_and_touch_keeps_help() -> None:
    fam = Declarations("a", Registry()).gauge("jfrog_free_bytes", "Free.")
    out = Emitter("t")
    out.gauge(fam, None)
    [built] = out.families()
    assert built.samples == []


def test_state_set_reports_an_unknown_state_once(caplog: pytest.LogCaptureFixture) -> None:
    fam = Declarations("a", Registry()).state_set("jfrog_job_status", "Job.", ["ok", "error"], "job")
    out = Emitter("t")
    with caplog.at_level(logging.WARNING):
        out.state(fam, "exploded", job="a")
        out.state(fam, "exploded", job="b")
        out.state(fam, "ok", job="c")
    values = {(s.labels["job"], s.labels["status"]): s.value for s in out.families()[0].samples}
    assert values == {("a", "ok"): 0, ("a", "error"): 0, ("a", "unknown"): 1, ("b", "ok"): 0, ("b", "error"): 0,
                      ("b", "unknown"): 1, ("c", "ok"): 1, ("c", "error"): 0}
    assert sum("undocumented state 'exploded'" in r.message for r in caplog.records) == 1


def test_every_collector_and_the_exporter_declare_in_the_one_registry() -> None:
    from exporter import selfmetrics  # noqa: F401  (registers the self-metrics)
    from exporter.collectors.registry import COLLECTORS

    owners = {f.owner for f in REGISTRY.families()}
    assert owners == {"exporter", *COLLECTORS}
    assert all(f.name.startswith("jfrog_") and f.help for f in REGISTRY.families())
    # about no JPD in particular
    process_wide = {"jfrog_exporter_build_info", "jfrog_exporter_scrapes_aborted",
                    "jfrog_exporter_serving_process_resident_memory_bytes"}
    assert all(f.labels[:1] == ("target",) for f in REGISTRY.families() if f.name not in process_wide)


def test_a_family_is_keyed_by_its_first_label_unless_it_says_otherwise() -> None:
    f = Declarations("a", Registry())
    assert f.gauge("jfrog_plain", "Plain.").key == ()
    assert f.gauge("jfrog_repo_bytes", "Bytes.", "repo", "package_type").key == ("repo",)
    assert f.info("jfrog_license_x_info", "License.", "license_type", "node_id", key=("license_type",)).key == (
        "license_type",)
    assert f.gauge("jfrog_node_x", "Any node.", "node_id", key=()).key == ()
    assert f.state_set("jfrog_job_x_status", "Job.", ["ok"], "job").key == ("job",)
    with pytest.raises(DeclarationError, match=r"key \['repo'\] names labels it does not declare"):
        f.gauge("jfrog_y", "Y.", "worker", key=("repo",))
    with pytest.raises(DeclarationError, match="names labels it does not declare"):
        f.state_set("jfrog_z_status", "Z.", ["ok"], "job", key=("status",))  # the state never identifies


def test_a_sample_without_its_identifying_label_is_left_out_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    f = Declarations("a", Registry())
    gauge = f.gauge("jfrog_repo_files", "Files.", "repo", "package_type")
    counter = f.counter("jfrog_repo_downloads", "Downloads.", "repo")
    hist = f.histogram("jfrog_worker_seconds", "Runs.", "worker")
    states = f.state_set("jfrog_member_status", "Member.", ["ok", "error"], "repo", "remote_repo")
    users = f.gauge("jfrog_users_x", "Users.", "realm", "status", key=("realm", "status"))
    out = Emitter("t")
    with caplog.at_level(logging.WARNING):
        for repo in ("", "  ", None):
            out.gauge(gauge, 1, repo=repo, package_type="maven")
            out.counter(counter, 1, repo=repo)
            out.state(states, "ok", repo=repo, remote_repo="libs")
        out.histogram(hist, (1.0,), (1, 1), 0.5, worker="")
        out.gauge(users, 3, realm="internal", status="")
        # Only the identifying labels must be there: an empty package type or remote repository is a value.
        out.gauge(gauge, 2, repo="libs", package_type="")
        out.state(states, "error", repo="libs", remote_repo="")
    built = {m.name: m for m in out.families()}
    assert set(built) == {"jfrog_repo_files", "jfrog_repo_downloads", "jfrog_worker_seconds", "jfrog_member_status",
                          "jfrog_users_x"}  # HELP stays
    assert [s.labels for s in built["jfrog_repo_files"].samples] == [
        {"target": "t", "repo": "libs", "package_type": ""}]
    assert [(s.labels["status"], s.value) for s in built["jfrog_member_status"].samples] == [("ok", 0), ("error", 1)]
    assert built["jfrog_repo_downloads"].samples == built["jfrog_worker_seconds"].samples == []
    assert built["jfrog_users_x"].samples == []
    warnings = [r.message for r in caplog.records if "left out" in r.message]
    assert sorted(warnings) == [
        "jfrog_member_status: series left out: the JPD sent an entry without repo",
        "jfrog_repo_downloads: series left out: the JPD sent an entry without repo",
        "jfrog_repo_files: series left out: the JPD sent an entry without repo",
        "jfrog_users_x: series left out: the JPD sent an entry without status",
        "jfrog_worker_seconds: series left out: the JPD sent an entry without worker",
    ]


def test_every_declared_key_names_labels_of_its_family() -> None:
    from exporter import selfmetrics  # noqa: F401  (registers the self-metrics)
    from exporter.collectors import registry  # noqa: F401  (registers every collector's families)

    for family in REGISTRY.families():
        assert set(family.key) <= set(family.labels) - {"target"}, family.name
