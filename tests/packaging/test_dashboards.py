"""The Grafana dashboards: generated files up to date, structure, variables, queries against the metric reference.

Whether every panel query returns data from a real Prometheus is checked in test_alerts.py, which
runs one Prometheus for the rules and the dashboards together.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exporter.collectors.registry import COLLECTORS
from exporter.families import REGISTRY
from tests.support import REPO

DASHBOARDS = REPO / "dashboards"
DS = {"type": "prometheus", "uid": "${datasource}"}

#: a metric name with its optional label matchers (quoted values may hold braces)
SELECTOR = re.compile(r'\b(jfrog_[a-z0-9_]+|ALERTS|up)\b(\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_SERIES_SUFFIXES = ("_bucket", "_count", "_sum")


def load_script(path: Path, name: str) -> ModuleType:
    """A generator script (alerts/generate.py, dashboards/generate.py) as a module."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def dashboard_files() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def panel_queries() -> list[tuple[str, str, str, str]]:
    """(file, panel title, refId, expr) of every query of every dashboard."""
    return [(name, p["title"], t["refId"], t["expr"])
            for name, d in dashboard_files().items() for p in panels(d) for t in p.get("targets", [])]


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, [(label, operator, value)]) of every vector selector in ``expr``."""
    return [(m.group(1), MATCHER.findall(m.group(2) or "")) for m in SELECTOR.finditer(expr)]


def base_name(metric: str, known: dict[str, Any]) -> str:
    if metric in known:
        return metric
    for suffix in _SERIES_SUFFIXES:
        if metric.endswith(suffix) and metric.removesuffix(suffix) in known:
            return metric.removesuffix(suffix)
    return metric


def collector_of(metric: str, reference: dict[str, Any]) -> str:
    """The collector that exposes ``metric`` ("exporter" for the self-metrics)."""
    entry = reference.get(base_name(metric, reference))
    if entry is None:
        raise AssertionError(f"{metric}: no collector declares this metric")
    return entry.source


@dataclass(frozen=True)
class Exposed:
    source: str
    labels: frozenset[str]


def metric_reference() -> dict[str, Exposed]:
    """exposed name -> the collector that declares it ("exporter" for the self-metrics) and its labels."""
    return {f.exposed_name: Exposed(f.owner, frozenset(f.labels)) for f in REGISTRY.families()}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return metric_reference()


def check_metrics_against_reference(expr: str, reference: dict[str, Any], where: str) -> None:
    """Every metric exists in the reference (when its collector is registered) with the labels matched on."""
    for metric, matchers in selectors(expr):
        if metric in ("up", "ALERTS"):
            continue
        collector = collector_of(metric, reference)
        if collector not in COLLECTORS and collector != "exporter":
            continue  # its collector has not landed: nothing to compare with yet
        name = base_name(metric, reference)
        assert name in reference, f"{where}: {metric} is not exposed by collector {collector}"
        labels = reference[name].labels
        allowed = set(labels) | {"job", "instance", "le"}
        for label, _, _ in matchers:
            assert label in allowed, f"{where}: {metric} has no label {label!r} (it has {sorted(allowed)})"


# -- generation ------------------------------------------------------------------------------------------------

def test_dashboards_are_generated_from_the_sources() -> None:
    generator = load_script(DASHBOARDS / "generate.py", "jfrog_dashboards_generate")
    rendered = generator.render()
    on_disk = {p.name for p in DASHBOARDS.glob("*.json")}
    assert on_disk == set(rendered), "dashboards/*.json and the generator disagree on the files"
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, f"dashboards/{name} is stale: run python dashboards/generate.py"


def test_panel_thresholds_follow_the_thresholds_file(tmp_path: Path) -> None:
    source = (REPO / "alerts" / "src" / "thresholds.yaml").read_text()
    changes = {
        "filestore_used_warning: 0.85": "filestore_used_warning: 0.7",
        "max_age: 36h": "max_age: 6h",
        "certificate_expiry_warning: 30d": "certificate_expiry_warning: 60d",
        "certificate_expiry_critical: 7d": "certificate_expiry_critical: 14d",
        "access_token_expiry_warning: 7d": "access_token_expiry_warning: 3d",
        "token_expiry_warning: 14d": "token_expiry_warning: 21d",
        "ignored_drop_reasons: [filtered, duplicate]": "ignored_drop_reasons: [filtered]",
    }
    changed = source
    for old, new in changes.items():
        assert changed.count(old) == 1, old
        changed = changed.replace(old, new)
    path = tmp_path / "thresholds.yaml"
    path.write_text(changed)
    generator = load_script(DASHBOARDS / "generate.py", "jfrog_dashboards_generate")
    rendered = {name: json.loads(text) for name, text in generator.render(path).items()}

    overview = {p["title"]: p for p in panels(rendered["overview.json"])}
    steps = overview["Filestore used"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.7, 0.95]
    replication = {p["title"]: p for p in panels(rendered["replication-federation.json"])}
    assert "Not completed for more than 6h" in replication
    assert "> 21600" in replication["Not completed for more than 6h"]["targets"][0]["expr"]

    security = {p["title"]: p for p in panels(rendered["security-activity.json"])}

    def step_values(thresholds: dict[str, Any]) -> list[float | None]:
        return [s["value"] for s in thresholds["steps"]]

    soonest = security["Soonest certificate expiry (days)"]["fieldConfig"]["defaults"]["thresholds"]
    assert step_values(soonest) == [None, 14, 60]
    certificates = security["Installed certificates"]["fieldConfig"]["overrides"]
    days_left = next(o for o in certificates if o["matcher"]["options"] == "Days left")
    assert step_values(next(p["value"] for p in days_left["properties"] if p["id"] == "thresholds")) == [None, 14, 60]
    subjects = security["Soonest expiring subjects"]["fieldConfig"]["overrides"]
    days_left = next(o for o in subjects if o["matcher"]["options"] == "Days left")
    assert step_values(next(p["value"] for p in days_left["properties"] if p["id"] == "thresholds")) == [None, 3]
    exporter_token = security["Exporter token days left"]["fieldConfig"]["defaults"]["thresholds"]
    assert step_values(exporter_token) == [None, 3, 21]
    assert 'reason!~"filtered"' in security["Samples dropped unexpectedly"]["targets"][0]["expr"]


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_dashboards_follow_the_sdk_schema(name: str) -> None:
    """Decoded into the Foundation SDK's models and encoded back, a dashboard is unchanged: it holds no field
    (panel options included) that Grafana's schema does not know."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models.dashboard import Dashboard

    register_default_plugins()  # panel options and queries decode into their plugin's types
    data = dashboard_files()[name]
    assert json.loads(json.dumps(Dashboard.from_json(data), cls=JSONEncoder)) == data


# -- structure -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_dashboard_metadata_and_variables(name: str) -> None:
    dashboard = dashboard_files()[name]
    assert "__inputs" not in dashboard and "__requires" not in dashboard, "provisioned dashboards take no inputs"
    assert dashboard["schemaVersion"] >= 36
    assert re.fullmatch(r"jfrog-[a-z-]+", dashboard["uid"]) and len(dashboard["uid"]) <= 40
    assert dashboard["title"] and dashboard["description"]
    assert dashboard["refresh"] and dashboard["time"]["from"].startswith("now-")
    assert "jfrog" in dashboard["tags"]

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    target = variables["target"]
    assert target["type"] == "query" and target["datasource"] == DS
    assert target["query"] == {"query": "label_values(jfrog_up, target)", "refId": "PrometheusVariableQueryEditor"}
    assert target["multi"] is True and target["includeAll"] is True
    assert not target.get("current"), "no target name may be saved in the dashboard"


def test_dashboard_uids_and_titles_are_unique() -> None:
    files = dashboard_files().values()
    assert len({d["uid"] for d in files}) == len(files)
    assert len({d["title"] for d in files}) == len(files)


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_panels(name: str) -> None:
    dashboard = dashboard_files()[name]
    all_panels = panels(dashboard)
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    assert all(isinstance(i, int) and i > 0 for i in ids)
    for panel in all_panels:
        where = f"{name}: {panel['title']!r}"
        assert panel["datasource"] == DS, f"{where}: the datasource must be the variable"
        if panel["type"] == "row":
            continue
        assert panel["description"].strip(), f"{where}: no description"
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{where}: no unit"
        assert defaults["thresholds"]["steps"][0]["value"] is None, f"{where}: thresholds need a base step"
        assert panel["targets"], f"{where}: no query"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"{where}: duplicate refIds"
        for query in panel["targets"]:
            assert query["datasource"] == DS, f"{where} {query['refId']}: the datasource must be the variable"
            assert query["expr"].strip()


@pytest.mark.parametrize("name", sorted(dashboard_files()))
def test_panels_do_not_overlap(name: str) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard_files()[name]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"{panel['title']!r} is wider than the grid"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize(("name", "title", "ref", "expr"), panel_queries(),
                         ids=[f"{n}:{t}:{r}" for n, t, r, _ in panel_queries()])
def test_every_selector_filters_on_the_target_variable(name: str, title: str, ref: str, expr: str) -> None:
    found = selectors(expr)
    assert found, "a query without a metric"
    for metric, matchers in found:
        targets = [(op, value) for label, op, value in matchers if label == "target"]
        wanted = ("=~", "$target|") if metric == "ALERTS" else ("=~", "$target")
        assert targets == [wanted], f"{metric}: the target matcher must be target=~\"{wanted[1]}\", got {targets}"
    assert "$__interval" not in expr, "use $__rate_interval or $__range"


def test_queries_use_exposed_metrics_and_labels(reference: dict[str, Any]) -> None:
    used: set[str] = set()
    for name, title, ref, expr in panel_queries():
        check_metrics_against_reference(expr, reference, f"{name}: {title!r} {ref}")
        used.update(m for m, _ in selectors(expr))
    # Every family of the metric contract has a place on a dashboard.
    for metric in ("jfrog_up", "jfrog_ready", "jfrog_router_service_healthy", "jfrog_license_expiry_timestamp_seconds",
                   "jfrog_storage_filestore_used_bytes", "jfrog_storage_optimization_ratio",
                   "jfrog_storage_repo_used_bytes", "jfrog_replication_status", "jfrog_replication_target_status",
                   "jfrog_replication_last_completed_timestamp_seconds", "jfrog_replication_blocked",
                   "jfrog_federation_member_status", "jfrog_federation_lag_seconds",
                   "jfrog_federation_queued_events", "jfrog_federation_inconsistent_repos",
                   "jfrog_federation_failed_binary_tasks", "jfrog_federation_federations", "jfrog_pud_status",
                   "jfrog_pud_cleaned_bytes", "jfrog_cleanup_policy_enabled", "jfrog_gc_running",
                   "jfrog_background_tasks", "jfrog_worker_executions_total",
                   "jfrog_worker_execution_duration_seconds_bucket", "jfrog_worker_limit_usage_ratio",
                   "jfrog_worker_probe_success", "jfrog_worker_probe_duration_seconds",
                   "jfrog_exporter_collector_success", "jfrog_exporter_collector_last_success_timestamp_seconds",
                   "jfrog_users", "jfrog_groups", "jfrog_users_truncated", "jfrog_certificate_info",
                   "jfrog_certificate_expiry_timestamp_seconds", "jfrog_access_tokens",
                   "jfrog_access_token_soonest_expiry_timestamp_seconds",
                   "jfrog_exporter_token_expiry_timestamp_seconds", "jfrog_artifacts_created_total",
                   "jfrog_artifacts_downloaded_total", "jfrog_activity_watermark_timestamp_seconds",
                   "jfrog_activity_truncated_windows_total", "jfrog_openmetrics_enabled", "jfrog_openmetrics_series",
                   "jfrog_openmetrics_retyped_families", "jfrog_openmetrics_dropped_samples_total"):
        assert metric in used, f"no panel shows {metric}"
