"""Generate the Grafana dashboards dashboards/*.json with Grafana's Foundation SDK.

    python dashboards/generate.py            # rewrite dashboards/*.json
    python dashboards/generate.py --check    # exit 1 when they are out of date

Panels are written here once, with their units, descriptions and thresholds; the thresholds that
alerts also use come from alerts/src/thresholds.yaml, so a panel turns red where the alert fires.
Every panel and query uses the `datasource` variable and filters on the `target` variable.
The JSON comes from the SDK's typed builders (grafana-foundation-sdk, a development dependency),
so it follows Grafana's dashboard schema by construction.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple, TypeVar

from grafana_foundation_sdk.builders import bargauge as bargauge_panel
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import gauge as gauge_panel
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.builders import statetimeline as state_timeline_panel
from grafana_foundation_sdk.builders import table as table_panel
from grafana_foundation_sdk.builders import timeseries as timeseries_panel
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prom_model

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "alerts"

DS = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
#: the target filter of every query; Grafana turns a multi-value selection into a regex
T = 'target=~"$target"'
TARGETS_QUERY = "label_values(jfrog_up, target)"
TAGS = ["jfrog", "jfrog-exporter"]
GRID_WIDTH = 24

GREEN, ORANGE, RED, BLUE, GREY = "green", "orange", "red", "blue", "text"

AnyPanel = (stat_panel.Panel | gauge_panel.Panel | bargauge_panel.Panel | timeseries_panel.Panel
            | state_timeline_panel.Panel | table_panel.Panel)
P = TypeVar("P", stat_panel.Panel, gauge_panel.Panel, bargauge_panel.Panel, timeseries_panel.Panel,
            state_timeline_panel.Panel, table_panel.Panel)
Override = dash.DashboardFieldConfigSourceOverrides


def _alerts_module() -> ModuleType:
    """alerts/generate.py, which owns the thresholds file and its validation."""
    name = "jfrog_alerts_generate"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ALERTS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


# -- building blocks ---------------------------------------------------------------------------------------------

def q(expr: str, legend: str = "__auto", instant: bool = False, table: bool = False) -> prometheus.Dataquery:
    """A query; refIds are assigned in order by the panel."""
    query = (prometheus.Dataquery().expr(expr).legend_format(legend).editor_mode(prom_model.QueryEditorMode.CODE)
             .datasource(DS))
    query = query.instant() if instant else query.range()
    if table:
        query = query.format(prom_model.PromQueryFormat.TABLE)
    return query


def steps(*pairs: tuple[str, float | None]) -> dash.ThresholdsConfig:
    return (dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
            .steps([model.Threshold(color=color, value=value) for color, value in pairs]))


def value_map(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Exact values (numbers or label values) to a text and a colour."""
    options = {key: model.ValueMappingResult(text=text, color=color, index=i)
               for i, (key, (text, color)) in enumerate(mapping.items())}
    return [model.ValueMap(options=options)]


UP_DOWN = value_map({"0": ("DOWN", RED), "1": ("UP", GREEN)})


def _reduce_last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _panel(panel: P, title: str, description: str, targets: Iterable[prometheus.Dataquery], *, unit: str = "none",
           w: int = 6, h: int = 6, thresholds: dash.ThresholdsConfig | None = None,
           mappings: list[model.ValueMapping] | None = None, decimals: float | None = None,
           no_value: str | None = None, bounds: tuple[float, float] | None = None,
           overrides: Iterable[Override] = ()) -> P:
    """What every panel has: texts, queries on the datasource variable, size, unit, colours and overrides."""
    panel = (panel.title(title).description(description).datasource(DS).span(w).height(h).unit(unit)
             .thresholds(thresholds or steps((GREEN, None))).mappings(mappings or [])
             .color_scheme(dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS)))
    for i, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + i)))
    if decimals is not None:
        panel = panel.decimals(decimals)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if bounds is not None:
        panel = panel.min(bounds[0]).max(bounds[1])
    return panel.overrides(list(overrides))


def stat(title: str, description: str, *targets: prometheus.Dataquery, colour_mode: str = "background",
         text_mode: str = "value_and_name", **kw: Any) -> stat_panel.Panel:
    panel = (stat_panel.Panel().reduce_options(_reduce_last()).color_mode(common.BigValueColorMode(colour_mode))
             .graph_mode(common.BigValueGraphMode.NONE).text_mode(common.BigValueTextMode(text_mode))
             .justify_mode(common.BigValueJustifyMode.AUTO).orientation(common.VizOrientation.AUTO))
    return _panel(panel, title, description, targets, **kw)


def gauge(title: str, description: str, *targets: prometheus.Dataquery, **kw: Any) -> gauge_panel.Panel:
    panel = gauge_panel.Panel().reduce_options(_reduce_last()).show_threshold_markers(True).show_threshold_labels(False)
    return _panel(panel, title, description, targets, **kw)


def bargauge(title: str, description: str, *targets: prometheus.Dataquery, display_mode: str = "gradient",
             **kw: Any) -> bargauge_panel.Panel:
    panel = (bargauge_panel.Panel().reduce_options(_reduce_last()).orientation(common.VizOrientation.HORIZONTAL)
             .display_mode(common.BarGaugeDisplayMode(display_mode)).show_unfilled(True).min_viz_height(16)
             .min_viz_width(0).value_mode(common.BarGaugeValueMode.COLOR))
    return _panel(panel, title, description, targets, **kw)


def timeseries(title: str, description: str, *targets: prometheus.Dataquery, stack: bool = False,
               threshold_line: bool = False, **kw: Any) -> timeseries_panel.Panel:
    stacking = common_builders.StackingConfig().mode(common.StackingMode.NORMAL if stack else common.StackingMode.NONE)
    threshold_style = common_builders.GraphThresholdsStyleConfig().mode(
        common.GraphTresholdsStyleMode.LINE_AND_AREA if threshold_line else common.GraphTresholdsStyleMode.OFF)
    panel = (timeseries_panel.Panel().draw_style(common.GraphDrawStyle.LINE).line_width(1).fill_opacity(10)
             .show_points(common.VisibilityMode.NEVER).span_nulls(False).axis_soft_min(0)
             .stacking(stacking.group("A")).thresholds_style(threshold_style)
             .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["lastNotNull"]))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    return _panel(panel, title, description, targets, **kw)


def state_timeline(title: str, description: str, *targets: prometheus.Dataquery,
                   **kw: Any) -> state_timeline_panel.Panel:
    panel = (state_timeline_panel.Panel().show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.8)
             .align_value(common.TimelineValueAlignment.LEFT).fill_opacity(80).line_width(0)
             .legend(common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE)
                      .sort(common.SortOrder.NONE)))
    return _panel(panel, title, description, targets, **kw)


def _transformation(kind: str, options: dict[str, Any]) -> model.DataTransformerConfig:
    return model.DataTransformerConfig(id_val=kind, options=options)


def table(title: str, description: str, *targets: prometheus.Dataquery, hide: tuple[str, ...] = (),
          rename: dict[str, str] | None = None, sort: tuple[str, bool] | None = None,
          **kw: Any) -> table_panel.Panel:
    """Instant queries merged into one row per label set; ``hide`` and ``rename`` name result columns."""
    panel = (table_panel.Panel().show_header(True).cell_height(common.TableCellHeight.SM)
             .footer(common_builders.TableFooterOptions().show(False).reducer(["sum"])))
    if len(targets) > 1:
        panel = panel.with_transformation(_transformation("merge", {}))
    hidden = {"Time": True, "__name__": True, "job": True, "instance": True, **dict.fromkeys(hide, True)}
    panel = panel.with_transformation(_transformation(
        "organize", {"excludeByName": hidden, "renameByName": rename or {}, "indexByName": {}}))
    if sort:
        panel = panel.with_transformation(_transformation(
            "sortBy", {"sort": [{"field": sort[0], "desc": sort[1]}]}))
    panel = _panel(panel, title, description, targets, **kw)
    # The SDK's table builder has no field options: set the typed model on the field defaults.
    defaults = panel.build().field_config.defaults
    defaults.custom = common.TableFieldOptions(align=common.FieldTextAlignment.AUTO,
                                               cell_options=common.TableAutoCellOptions(), inspect=False,
                                               filterable=True)
    return panel


def _property(key: str, value: Any) -> model.DynamicConfigValue:
    if key == "colour_cells":
        return model.DynamicConfigValue(id_val="custom.cellOptions", value=common.TableColoredBackgroundCellOptions(
            mode=common.TableCellBackgroundDisplayMode.BASIC))
    if key == "fixed_colour":
        return model.DynamicConfigValue(id_val="color", value=model.FieldColor(mode=model.FieldColorModeId.FIXED,
                                                                               fixed_color=value))
    if isinstance(value, dash.ThresholdsConfig):
        value = value.build()
    return model.DynamicConfigValue(id_val=key, value=value)


def column(name: str, **props: Any) -> Override:
    """A field override for one column of a table (or one series)."""
    return (Override().matcher(model.MatcherConfig(id_val="byName", options=name))
            .properties([_property(key, value) for key, value in props.items()]))


def dashed(regexp: str) -> Override:
    """Series whose names match ``regexp`` drawn dashed (predictions, not measurements)."""
    line = common.LineStyle(fill="dash", dash=[10, 10])
    return (Override().matcher(model.MatcherConfig(id_val="byRegexp", options=regexp))
            .properties([model.DynamicConfigValue(id_val="custom.lineStyle", value=line)]))


class Row(NamedTuple):
    title: str
    panels: list[AnyPanel]


def _variables() -> list[cogbuilder.Builder[model.VariableModel]]:
    datasource = dash.DatasourceVariable("datasource").label("Data source").type("prometheus").hide(
        model.VariableHide.DONT_HIDE).regex("")
    # No current value: a saved target name would follow the dashboard to every Grafana.
    target = (dash.QueryVariable("target").label("JPD").datasource(DS).hide(model.VariableHide.DONT_HIDE)
              .description("The JFrog Platform Deployments the exporter watches (label target)")
              .query({"query": TARGETS_QUERY, "refId": "PrometheusVariableQueryEditor"})
              .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
              .multi(True).include_all(True).regex(""))
    return [datasource, target]


def _links() -> dash.DashboardLink:
    return (dash.DashboardLink("JFrog dashboards").type(model.DashboardLinkType.DASHBOARDS).tags(["jfrog-exporter"])
            .as_dropdown(True).include_vars(True).keep_time(True).icon("external link").target_blank(False)
            .tooltip("").url(""))


def board(uid: str, title: str, description: str, rows: list[Row], time_from: str = "now-6h",
          refresh: str = "1m") -> dash.Dashboard:
    """A dashboard of expanded rows; the SDK lays the panels out left to right, a line at a time."""
    built = (dash.Dashboard(title).uid(uid).description(description).tags(TAGS).editable()
             .tooltip(model.DashboardCursorSync.CROSSHAIR).time(time_from, "now").timezone("browser")
             .refresh(refresh).version(1).fiscal_year_start_month(0).live_now(False).week_start("")
             .link(_links()).variables(_variables()))
    next_id = 1
    for row in rows:
        _check_lines(row)
        built = built.with_row(dash.Row(row.title).id(next_id).datasource(DS))
        next_id += 1
        for panel in row.panels:
            built = built.with_panel(panel.id(next_id))
            next_id += 1
    return built


def _check_lines(row: Row) -> None:
    """No panel crosses the grid's edge: the SDK starts a new line only once one is full."""
    x = 0
    for panel in row.panels:
        x += panel.build().grid_pos.w  # type: ignore[union-attr]
        if x > GRID_WIDTH:
            raise ValueError(f"row {row.title!r}: panel {panel.build().title!r} does not fit on its line")
        x %= GRID_WIDTH


# -- the dashboards ----------------------------------------------------------------------------------------------

def _days(duration: str, seconds_of: Any) -> float:
    return float(seconds_of(duration)) / 86400


def overview(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    p, s, e = t["platform"], t["storage"], t["exporter"]
    used_ratio = f"jfrog_storage_filestore_used_bytes{{{T}}} / (jfrog_storage_filestore_size_bytes{{{T}}} > 0)"
    alerts = 'ALERTS{alertname=~"Jfrog.*", target=~"$target|"}'
    return board("jfrog-overview", "JFrog Platform Overview",
                     "Health, license, storage and the exporter's own collection for every JPD the exporter watches.",
                     [
        Row("Platform", [
            stat("JPD up", "1 when Artifactory answers its ping (/artifactory/api/system/ping).",
                 q(f"max by (target) (jfrog_up{{{T}}})", "{{target}}"), mappings=UP_DOWN,
                 thresholds=steps((RED, None), (GREEN, 1)), w=4, h=5),
            stat("Ready", "1 when Artifactory's readiness probe (/artifactory/api/v1/system/readiness) answers OK.",
                 q(f"max by (target) (jfrog_ready{{{T}}})", "{{target}}"),
                 mappings=value_map({"0": ("NOT READY", RED), "1": ("READY", GREEN)}),
                 thresholds=steps((RED, None), (GREEN, 1)), w=4, h=5),
            stat("Unhealthy router services",
                 "Services (on any node) that the router (/router/api/v1/system/health) does not report HEALTHY.",
                 q(f"count by (target) (jfrog_router_service_healthy{{{T}}} == 0)"
                   f" or count by (target) (jfrog_router_service_healthy{{{T}}}) * 0", "{{target}}"),
                 thresholds=steps((GREEN, None), (RED, 1)), w=4, h=5),
            stat("License days left",
                 "Days until the first license of the JPD expires (the earliest node in HA). No value: the JPD "
                 "reports no expiry date (Cloud, OSS).",
                 q(f"min by (target) (jfrog_license_expiry_timestamp_seconds{{{T}}} - time()) / 86400",
                   "{{target}}"),
                 thresholds=steps((RED, None), (ORANGE, _days(p["license_expiry_critical"], seconds_of)),
                                  (GREEN, _days(p["license_expiry_warning"], seconds_of))),
                 decimals=0, no_value="no expiry", w=4, h=5),
            table("JPDs", "Artifactory version and revision of every JPD.",
                  q(f"max by (target, version, revision) (jfrog_artifactory_info{{{T}}})", instant=True, table=True),
                  hide=("Value",), w=8, h=5),
        ]),
        _services_row(),
        Row("Router services", [
            table("Router services", "Every service of every node as the router reports it; unhealthy ones first.",
                  q(f"max by (target, node_id, service_id) (jfrog_router_service_healthy{{{T}}})", instant=True,
                    table=True),
                  rename={"Value": "Healthy"}, sort=("Healthy", False),
                  overrides=[column("Healthy", mappings=value_map({"0": ("UNHEALTHY", RED), "1": ("HEALTHY", GREEN)}),
                                    colour_cells=True)],
                  thresholds=steps((RED, None), (GREEN, 1)), w=24, h=8),
        ]),
        Row("Storage", [
            bargauge("Filestore used", "Used over total space of each filestore (/artifactory/api/storageinfo).",
                     q(f"max by (target, storage_dir) ({used_ratio})", "{{target}} {{storage_dir}}"),
                     unit="percentunit", bounds=(0, 1),
                     thresholds=steps((GREEN, None), (ORANGE, s["filestore_used_warning"]),
                                      (RED, s["filestore_used_critical"])), w=8, h=7),
            timeseries("Storage used vs total", "Used and total space of the filestores of each JPD.",
                       q(f"sum by (target) (jfrog_storage_filestore_used_bytes{{{T}}})", "{{target}} used"),
                       q(f"sum by (target) (jfrog_storage_filestore_size_bytes{{{T}}})", "{{target}} total"),
                       unit="bytes", w=16, h=7),
        ]),
        Row("Alerts", [
            stat("Critical alerts firing", "JFrog alerts of severity critical that fire now.",
                 q('count(ALERTS{alertname=~"Jfrog.*", alertstate="firing", severity="critical", '
                   'target=~"$target|"}) or vector(0)', "critical"),
                 thresholds=steps((GREEN, None), (RED, 1)), w=4, h=7),
            stat("Warning alerts firing", "JFrog alerts of severity warning that fire now.",
                 q('count(ALERTS{alertname=~"Jfrog.*", alertstate="firing", severity="warning", '
                   'target=~"$target|"}) or vector(0)', "warning"),
                 thresholds=steps((GREEN, None), (ORANGE, 1)), w=4, h=7),
            table("Alerts", "JFrog alerts pending or firing now (alerts of the exporter itself have no JPD).",
                  q(f"max by (alertname, severity, alertstate, target) ({alerts})", instant=True, table=True),
                  hide=("Value",), sort=("severity", False),
                  overrides=[column("severity", mappings=value_map({"critical": ("critical", RED),
                                                                    "warning": ("warning", ORANGE)}),
                                    colour_cells=True)], w=16, h=7),
        ]),
        Row("Exporter", [
            table("Collectors",
                  "Per JPD and collector: last run succeeded, age of the data and that age in collection intervals "
                  f"(the stale alert fires above {e['collector_stale_factor']}).",
                  q(f"max by (target, collector) (jfrog_exporter_collector_success{{{T}}})", instant=True,
                    table=True),
                  q(f"max by (target, collector) (time() - jfrog_exporter_collector_last_success_timestamp_seconds"
                    f"{{{T}}})", instant=True, table=True),
                  q(f"max by (target, collector) ((time() - jfrog_exporter_collector_last_success_timestamp_seconds"
                    f"{{{T}}}) / jfrog_exporter_collector_interval_seconds{{{T}}})", instant=True, table=True),
                  rename={"Value #A": "Success", "Value #B": "Data age", "Value #C": "Age / interval"},
                  sort=("Success", False),
                  overrides=[
                      column("Success", mappings=value_map({"0": ("FAILING", RED), "1": ("OK", GREEN)}),
                             colour_cells=True, thresholds=steps((RED, None), (GREEN, 1))),
                      column("Data age", unit="s"),
                      column("Age / interval", decimals=1, colour_cells=True,
                             thresholds=steps((GREEN, None), (ORANGE, 1.5), (RED, e["collector_stale_factor"]))),
                  ], w=12, h=9),
            state_timeline("Collector success", "Whether the last run of each collector succeeded, over time.",
                           q(f"min by (target, collector) (jfrog_exporter_collector_success{{{T}}})",
                             "{{target}} {{collector}}"),
                           mappings=value_map({"0": ("failing", RED), "1": ("ok", GREEN)}),
                           thresholds=steps((RED, None), (GREEN, 1)), w=12, h=9),
            timeseries("JFrog API requests by status code", "HTTP calls the exporter makes to each JPD.",
                       q(f"sum by (target, code) (rate(jfrog_exporter_api_requests_total{{{T}}}[$__rate_interval]))",
                         "{{target}} {{code}}"), unit="reqps", w=12, h=7),
            timeseries("JFrog API latency (95th percentile)", "Latency of the exporter's calls, by route.",
                       q("histogram_quantile(0.95, sum by (target, endpoint, le) "
                         f"(rate(jfrog_exporter_api_request_duration_seconds_bucket{{{T}}}[$__rate_interval])))",
                         "{{target}} {{endpoint}}"), unit="s", w=12, h=7),
        ]),
    ])


def _services_row() -> Row:
    """The platform's services besides Artifactory: JFConnect, Access and Access Federation's targets."""
    def service(metric: str, name: str) -> prometheus.Dataquery:
        return q(f'max by (target) ({metric}{{service="{name}", {T}}})', "{{target}}")

    not_installed = "not installed"
    return Row("Platform services", [
        stat("Access up", "1 when Access answers its ping (/access/api/v1/system/ping): logins, tokens and "
             "permissions depend on it.", service("jfrog_service_up", "access"), mappings=UP_DOWN,
             thresholds=steps((RED, None), (GREEN, 1)), w=4, h=5),
        stat("JFConnect up", "1 when JFConnect answers its ping (/jfconnect/api/v1/system/ping). No value: the JPD "
             "runs no JFConnect (disabled, OSS).", service("jfrog_service_up", "jfconnect"), mappings=UP_DOWN,
             thresholds=steps((RED, None), (GREEN, 1)), no_value=not_installed, w=4, h=5),
        stat("JFConnect ready", "1 when JFConnect's readiness probe (/jfconnect/api/v1/system/readiness) answers "
             "OK; entitlements and license updates from JFrog wait while it is not.",
             service("jfrog_service_ready", "jfconnect"),
             mappings=value_map({"0": ("NOT READY", RED), "1": ("READY", GREEN)}),
             thresholds=steps((RED, None), (GREEN, 1)), no_value=not_installed, w=4, h=5),
        table("Access Federation targets",
              "Targets Access federates users, groups and permissions with (/access/api/v1/system/federation, "
              "admin only); URLs without user-info. No data: no target, or an edition without Access Federation.",
              q(f"max by (target, server_name, url, entities) (jfrog_access_federation_target_info{{{T}}})",
                instant=True, table=True),
              q(f"max by (target, server_name) (jfrog_access_federation_target_active{{{T}}})", instant=True,
                table=True),
              hide=("Value #A",), rename={"Value #B": "Active", "server_name": "Name"}, sort=("Active", False),
              overrides=[column("Active", mappings=value_map({"0": ("INACTIVE", ORANGE), "1": ("ACTIVE", GREEN)}),
                                colour_cells=True)],
              thresholds=steps((ORANGE, None), (GREEN, 1)), w=12, h=5),
    ])


def storage(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    s = t["storage"]
    window = s["filestore_trend_window"]
    within = int(seconds_of(s["filestore_full_within"]))
    used_ratio = f"jfrog_storage_filestore_used_bytes{{{T}}} / (jfrog_storage_filestore_size_bytes{{{T}}} > 0)"
    by_repo = "target, repo, repo_type, package_type"
    top_size = f"topk(20, max by ({by_repo}) (jfrog_storage_repo_used_bytes{{{T}}}))"
    return board("jfrog-storage", "JFrog Storage",
                     "Filestore usage and its trend, deduplication of binaries, and the largest and fastest-growing "
                     "repositories (/artifactory/api/storageinfo).",
                     [
        Row("Filestore", [
            gauge("Filestore used", "Used over total space of each filestore.",
                  q(f"max by (target, storage_dir) ({used_ratio})", "{{target}} {{storage_dir}}"),
                  unit="percentunit", bounds=(0, 1),
                  thresholds=steps((GREEN, None), (ORANGE, s["filestore_used_warning"]),
                                   (RED, s["filestore_used_critical"]))),
            stat("Free space", "Free space of the filestores.",
                 q(f"sum by (target) (jfrog_storage_filestore_free_bytes{{{T}}})", "{{target}}"), unit="bytes",
                 colour_mode="none"),
            stat("Filestore size", "Total space of the filestores.",
                 q(f"sum by (target) (jfrog_storage_filestore_size_bytes{{{T}}})", "{{target}}"), unit="bytes",
                 colour_mode="none"),
            stat("Predicted full", f"When the filestore runs out of space if it keeps shrinking as in the last "
                 f"{window} (a linear fit of the free space). No value: it is not filling up.",
                 q(f"max by (target, storage_dir) (1000 * (time() + jfrog_storage_filestore_free_bytes{{{T}}}"
                   f" / (-deriv(jfrog_storage_filestore_free_bytes{{{T}}}[{window}]) > 0)))",
                   "{{target}} {{storage_dir}}"),
                 unit="dateTimeAsIso", no_value="not filling up", colour_mode="none"),
            timeseries("Filestore usage and trend",
                       f"Used and total space, and the use predicted {s['filestore_full_within']} ahead from the "
                       f"trend of the last {window}: the filling-up alert fires when the prediction passes the total.",
                       q(f"sum by (target) (jfrog_storage_filestore_used_bytes{{{T}}})", "{{target}} used"),
                       q(f"sum by (target) (jfrog_storage_filestore_size_bytes{{{T}}})", "{{target}} total"),
                       q(f"sum by (target) (predict_linear(jfrog_storage_filestore_used_bytes{{{T}}}[{window}], "
                         f"{within}))", f"{{{{target}}}} predicted in {s['filestore_full_within']}"),
                       unit="bytes", w=24, h=8,
                       overrides=[dashed(".* predicted in .*")]),
        ]),
        Row("Binaries and artifacts (deduplication)", [
            stat("Binaries", "Binaries in the filestore (each stored once, however many artifacts use it).",
                 q(f"max by (target) (jfrog_storage_binaries{{{T}}})", "{{target}}"), unit="short",
                 colour_mode="none", w=4, h=5),
            stat("Artifacts", "Files in repositories.", q(f"max by (target) (jfrog_storage_artifacts{{{T}}})",
                                                           "{{target}}"),
                 unit="short", colour_mode="none", w=4, h=5),
            stat("Items", "Files and folders in repositories.",
                 q(f"max by (target) (jfrog_storage_items{{{T}}})", "{{target}}"), unit="short",
                 colour_mode="none", w=4, h=5),
            stat("Binaries size / artifacts size",
                 "Size of the deduplicated binaries over the size of all artifacts, as the JPD reports it: the "
                 "lower, the more deduplication saves.",
                 q(f"max by (target) (jfrog_storage_optimization_ratio{{{T}}})", "{{target}}"),
                 unit="percentunit", colour_mode="none", w=6, h=5),
            stat("Saved by deduplication", "Artifacts size minus binaries size.",
                 q(f"max by (target) (jfrog_storage_artifacts_size_bytes{{{T}}}"
                   f" - jfrog_storage_binaries_size_bytes{{{T}}})", "{{target}}"),
                 unit="bytes", colour_mode="none", w=6, h=5),
            timeseries("Binaries vs artifacts size", "Deduplicated size in the filestore against the artifacts' size.",
                       q(f"max by (target) (jfrog_storage_binaries_size_bytes{{{T}}})", "{{target}} binaries"),
                       q(f"max by (target) (jfrog_storage_artifacts_size_bytes{{{T}}})", "{{target}} artifacts"),
                       unit="bytes", w=12, h=8),
            timeseries("Binaries, artifacts and items", "Counts over time.",
                       q(f"max by (target) (jfrog_storage_binaries{{{T}}})", "{{target}} binaries"),
                       q(f"max by (target) (jfrog_storage_artifacts{{{T}}})", "{{target}} artifacts"),
                       q(f"max by (target) (jfrog_storage_items{{{T}}})", "{{target}} items"),
                       unit="short", w=12, h=8),
        ]),
        Row("Repositories", [
            table("Top repositories by size", "The 20 largest repositories, with their file counts.",
                  q(top_size, instant=True, table=True),
                  q(f"max by ({by_repo}) (jfrog_storage_repo_files{{{T}}}) and on (target, repo) {top_size}",
                    instant=True, table=True),
                  rename={"Value #A": "Used", "Value #B": "Files"}, sort=("Used", True),
                  overrides=[column("Used", unit="bytes"), column("Files", unit="short")], w=12, h=10),
            table("Top repositories by growth", "The 20 repositories that grew most over the dashboard's time range.",
                  q(f"topk(20, max by ({by_repo}) (delta(jfrog_storage_repo_used_bytes{{{T}}}[$__range])))",
                    instant=True, table=True),
                  rename={"Value": "Growth"}, sort=("Growth", True), overrides=[column("Growth", unit="bytes")],
                  w=12, h=10),
            timeseries("Largest repositories over time", "Used space of the 10 largest repositories.",
                       q(f"topk(10, max by (target, repo) (jfrog_storage_repo_used_bytes{{{T}}}))",
                         "{{target}} {{repo}}"), unit="bytes", w=12, h=8),
            bargauge("Used space by package type", "Space used by the repositories of each package type.",
                     q(f"sum by (package_type) (jfrog_storage_repo_used_bytes{{{T}}})", "{{package_type}}"),
                     unit="bytes", thresholds=steps((BLUE, None)), w=6, h=8),
            bargauge("Used space by repository type", "Space used by local, remote (caches), federated, ... "
                     "repositories.",
                     q(f"sum by (repo_type) (jfrog_storage_repo_used_bytes{{{T}}})", "{{repo_type}}"),
                     unit="bytes", thresholds=steps((BLUE, None)), w=6, h=8),
        ]),
    ])


REPLICATION_COLOURS = {"ok": GREEN, "warn": ORANGE, "incomplete": ORANGE, "never_run": BLUE, "error": RED,
                       "inconsistent": RED, "unknown": GREY}
MEMBER_COLOURS = {"healthy": GREEN, "delayed": ORANGE, "full_sync_running": BLUE, "pending_full_sync": ORANGE,
                  "out_of_sync": RED, "error": RED, "disabled": GREY, "not_available": GREY, "unknown": GREY}


def _by_name_colours(colours: dict[str, str]) -> list[Override]:
    return [column(name, fixed_colour=colour) for name, colour in colours.items()]


def _status_column(name: str, colours: dict[str, str]) -> Override:
    return column(name, mappings=value_map({k: (k, c) for k, c in colours.items()}), colour_cells=True)


def replication_federation(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    r, f = t["replication"], t["federation"]
    max_age = seconds_of(r["max_age"])
    rep_key = "target, repo, remote_url, remote_repo"
    member = "target, repo, remote_repo, remote_url"
    return board("jfrog-replication-federation", "JFrog Replication & Federation",
                     "Replication status per repository and target, and the state, lag and backlog of federated "
                     "repositories (Federation service or legacy federation).",
                     [
        Row("Replication", [
            stat("Replication blocked", "Whether push or pull replication is blocked for the whole JPD "
                 "(/artifactory/api/system/replications).",
                 q(f"max by (target, direction) (jfrog_replication_blocked{{{T}}})", "{{target}} {{direction}}"),
                 mappings=value_map({"0": ("allowed", GREEN), "1": ("BLOCKED", RED)}),
                 thresholds=steps((GREEN, None), (RED, 1)), w=6, h=6),
            bargauge("Replications by status", "Replicated repositories per status.",
                     q(f"sum by (status) (jfrog_replication_status{{{T}}})", "{{status}}"),
                     overrides=_by_name_colours(REPLICATION_COLOURS), w=9, h=6,
                     display_mode="basic"),
            stat(f"Not completed for more than {r['max_age']}",
                 f"Enabled replications whose last completion is older than {r['max_age']} (the alert's age).",
                 q(f"count by (target) ((time() - jfrog_replication_last_completed_timestamp_seconds{{{T}}})"
                   f" > {max_age:g} and on (target, repo) jfrog_replication_enabled{{{T}}} == 1)"
                   f" or count by (target) (jfrog_replication_last_completed_timestamp_seconds{{{T}}}) * 0",
                   "{{target}}"),
                 thresholds=steps((GREEN, None), (ORANGE, 1)), w=9, h=6),
            table("Replication status per repository",
                  "Status of each replicated repository (/artifactory/api/replication/{repo}), how long ago it last "
                  "completed, and whether its replication is enabled.",
                  q(f"max by (target, repo, status) (jfrog_replication_status{{{T}}} == 1)", instant=True,
                    table=True),
                  q(f"max by (target, repo) (time() - jfrog_replication_last_completed_timestamp_seconds{{{T}}})",
                    instant=True, table=True),
                  q(f"max by (target, repo) (jfrog_replication_enabled{{{T}}})", instant=True, table=True),
                  hide=("Value #A",), rename={"Value #B": "Last completed", "Value #C": "Enabled"},
                  sort=("Last completed", True),
                  overrides=[_status_column("status", REPLICATION_COLOURS),
                             column("Last completed", unit="s", colour_cells=True,
                                    thresholds=steps((GREEN, None), (ORANGE, max_age))),
                             column("Enabled", mappings=value_map({"0": ("no", GREY), "1": ("yes", GREEN)}))],
                  w=12, h=10),
            table("Replication status per target",
                  "Status of every replication target (multi-push: one row per target) and how long ago it last "
                  "completed.",
                  q(f"max by ({rep_key}, status) (jfrog_replication_target_status{{{T}}} == 1)", instant=True,
                    table=True),
                  q(f"max by ({rep_key}) (time() - jfrog_replication_target_last_completed_timestamp_seconds"
                    f"{{{T}}})", instant=True, table=True),
                  hide=("Value #A",), rename={"Value #B": "Last completed"}, sort=("Last completed", True),
                  overrides=[_status_column("status", REPLICATION_COLOURS),
                             column("Last completed", unit="s", colour_cells=True,
                                    thresholds=steps((GREEN, None), (ORANGE, max_age)))],
                  w=12, h=10),
            timeseries("Replications not ok", "Replicated repositories in each status other than ok, over time.",
                       q(f'sum by (target, status) (jfrog_replication_status{{{T}, status!="ok"}})',
                         "{{target}} {{status}}"), unit="short", stack=True, w=24, h=7),
        ]),
        Row("Federation", [
            stat("Federation service", "Which federation service the JPD runs: the Federation service (rtfs) or "
                 "the legacy one.",
                 q(f"max by (target, mode) (jfrog_federation_service_info{{{T}}})", "{{target}}: {{mode}}"),
                 text_mode="name", colour_mode="none", w=6, h=6),
            stat("Inconsistent federated repositories", "Count from /artifactory/api/federation/inconsistentRepos.",
                 q(f"max by (target) (jfrog_federation_inconsistent_repos{{{T}}})", "{{target}}"),
                 thresholds=steps((GREEN, None), (RED, 1)), w=6, h=6),
            stat("Failed binary tasks", "Binary transfers to members that failed, over all federated repositories.",
                 q(f"sum by (target) (jfrog_federation_failed_binary_tasks{{{T}}})", "{{target}}"),
                 thresholds=steps((GREEN, None), (RED, 1)), w=6, h=6),
            bargauge("Federations by state", "Federations per state (Federation service state summary only).",
                     q(f"sum by (state) (jfrog_federation_federations{{{T}}})", "{{state}}"),
                     overrides=_by_name_colours({"HEALTHY": GREEN, "DELAYED": ORANGE, "PENDING_FS": ORANGE,
                                                 "FULL_SYNC_RUNNING": BLUE, "ERROR": RED, "DISABLED": GREY,
                                                 "NOT_AVAILABLE": GREY}),
                     display_mode="basic", w=6, h=6),
            bargauge("Members by state", "Federation members per state, both services mapped onto one set.",
                     q(f"sum by (status) (jfrog_federation_member_status{{{T}}})", "{{status}}"),
                     overrides=_by_name_colours(MEMBER_COLOURS), display_mode="basic", w=8, h=10),
            table("Federation members", "Every member of every federated repository: state, lag and queued events.",
                  q(f"max by ({member}, status) (jfrog_federation_member_status{{{T}}} == 1)", instant=True,
                    table=True),
                  q(f"max by ({member}) (jfrog_federation_lag_seconds{{{T}}})", instant=True, table=True),
                  q(f"max by ({member}) (jfrog_federation_queued_events{{{T}}})", instant=True, table=True),
                  hide=("Value #A",), rename={"Value #B": "Lag", "Value #C": "Queued events"}, sort=("Lag", True),
                  overrides=[_status_column("status", MEMBER_COLOURS),
                             column("Lag", unit="s", colour_cells=True,
                                    thresholds=steps((GREEN, None), (RED, seconds_of(f["max_lag"])))),
                             column("Queued events", unit="short")],
                  w=16, h=10),
            timeseries("Federation lag (top 20)", f"How far members lag behind; the alert fires above {f['max_lag']}.",
                       q(f"topk(20, max by ({member}) (jfrog_federation_lag_seconds{{{T}}}))",
                         "{{target}} {{repo}} → {{remote_repo}} at {{remote_url}}"),
                       unit="s", threshold_line=True,
                       thresholds=steps((GREEN, None), (RED, seconds_of(f["max_lag"]))), w=12, h=8),
            timeseries("Queued events (top 20)", "Events waiting to be sent to each member.",
                       q(f"topk(20, max by ({member}) (jfrog_federation_queued_events{{{T}}}))",
                         "{{target}} {{repo}} → {{remote_repo}} at {{remote_url}}"), unit="short", w=12, h=8),
            table("Failed binary tasks per repository",
                  "From /artifactory/api/federation/binaries/failures/list, largest first.",
                  q(f"max by (target, repo) (jfrog_federation_failed_binary_tasks{{{T}}})", instant=True, table=True),
                  rename={"Value": "Failed tasks"}, sort=("Failed tasks", True),
                  overrides=[column("Failed tasks", colour_cells=True, thresholds=steps((GREEN, None), (RED, 1)))],
                  w=12, h=8),
            timeseries("Inconsistent repositories and failed binary tasks",
                       "Both counts over time: they should stay at zero.",
                       q(f"max by (target) (jfrog_federation_inconsistent_repos{{{T}}})",
                         "{{target}} inconsistent repositories"),
                       q(f"sum by (target) (jfrog_federation_failed_binary_tasks{{{T}}})",
                         "{{target}} failed binary tasks"), unit="short", w=12, h=8),
        ]),
    ])


PUD_COLOURS = {"running": BLUE, "finished": GREEN, "stopped": ORANGE, "error": RED, "never_run": GREY, "unknown": GREY}


def maintenance(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    m = t["maintenance"]
    gc_types = _alerts_module().GC_TASK_TYPES
    progress = (f"max by (target) (jfrog_pud_directories_processed{{{T}}})"
                f" / max by (target) (jfrog_pud_directories{{{T}}} > 0)")
    return board("jfrog-maintenance", "JFrog Maintenance",
                     "Prune Unreferenced Data, cleanup policies, garbage collection and background tasks.",
                     [
        Row("Prune Unreferenced Data", [
            table("PUD", "State of the PUD process (/artifactory/api/system/storage/prune/status), dry run or not, "
                  "when it started and last reported, and its progress.",
                  q(f"max by (target, status) (jfrog_pud_status{{{T}}} == 1)", instant=True, table=True),
                  q(f"max by (target) (jfrog_pud_dry_run{{{T}}})", instant=True, table=True),
                  q(f"max by (target) (jfrog_pud_started_timestamp_seconds{{{T}}}) * 1000", instant=True, table=True),
                  q(f"max by (target) (jfrog_pud_last_updated_timestamp_seconds{{{T}}}) * 1000", instant=True,
                    table=True),
                  q(progress, instant=True, table=True),
                  hide=("Value #A",),
                  rename={"Value #B": "Dry run", "Value #C": "Started", "Value #D": "Last update",
                          "Value #E": "Directories processed"},
                  overrides=[_status_column("status", PUD_COLOURS),
                             column("Dry run", mappings=value_map({"0": ("no", GREY), "1": ("dry run", BLUE)})),
                             column("Started", unit="dateTimeAsIso"), column("Last update", unit="dateTimeAsIso"),
                             column("Directories processed", unit="percentunit")],
                  w=24, h=6),
            bargauge("PUD progress", "Filestore directories processed of all to process (\"87 of 256\").",
                     q(progress, "{{target}}"), unit="percentunit", bounds=(0, 1),
                     thresholds=steps((BLUE, None)), w=8, h=6),
            stat("Reclaimed by PUD", "Bytes the current or last PUD run has freed.",
                 q(f"max by (target) (jfrog_pud_cleaned_bytes{{{T}}})", "{{target}}"), unit="bytes",
                 colour_mode="none", w=8, h=6),
            stat("Binaries cleaned and processed", "Unreferenced binaries removed, and binaries examined.",
                 q(f"max by (target) (jfrog_pud_binaries_cleaned{{{T}}})", "{{target}} cleaned"),
                 q(f"max by (target) (jfrog_pud_binaries_processed{{{T}}})", "{{target}} processed"),
                 unit="short", colour_mode="none", w=8, h=6),
            timeseries("Reclaimed bytes over time", "Bytes freed by the PUD run as it progresses.",
                       q(f"max by (target) (jfrog_pud_cleaned_bytes{{{T}}})", "{{target}}"), unit="bytes", w=12, h=7),
            timeseries("PUD progress over time", "Share of the filestore directories processed.",
                       q(progress, "{{target}}"), unit="percentunit", bounds=(0, 1), w=12, h=7),
        ]),
        Row("Cleanup policies", [
            table("Cleanup policies", "Package and release bundle cleanup policies: enabled, and their maximum run "
                  "time (empty: unlimited).",
                  q(f"max by (target, kind, policy) (jfrog_cleanup_policy_enabled{{{T}}})", instant=True, table=True),
                  q(f"max by (target, kind, policy) (jfrog_cleanup_policy_max_duration_seconds{{{T}}})", instant=True,
                    table=True),
                  rename={"Value #A": "Enabled", "Value #B": "Max duration"},
                  overrides=[column("Enabled", mappings=value_map({"0": ("disabled", GREY), "1": ("enabled", GREEN)}),
                                    colour_cells=True),
                             column("Max duration", unit="s")],
                  w=24, h=8),
        ]),
        Row("Garbage collection and background tasks", [
            stat("Garbage collection", "Whether a garbage-collection task runs now.",
                 q(f"max by (target) (jfrog_gc_running{{{T}}})", "{{target}}"),
                 mappings=value_map({"0": ("idle", GREEN), "1": ("RUNNING", BLUE)}), w=6, h=6),
            stat("Garbage collection running for", f"Since the running garbage collection started; the alert fires "
                 f"above {m['gc_max_duration']}.",
                 q(f"max by (target) (time() - jfrog_background_task_oldest_running_started_timestamp_seconds"
                   f'{{{T}, task_type=~"{gc_types}"}})', "{{target}}"),
                 unit="s", no_value="not running",
                 thresholds=steps((GREEN, None), (ORANGE, seconds_of(m["gc_max_duration"]))), w=6, h=6),
            state_timeline("Garbage collection over time", "When garbage collection ran.",
                           q(f"max by (target) (jfrog_gc_running{{{T}}})", "{{target}}"),
                           mappings=value_map({"0": ("idle", GREY), "1": ("running", BLUE)}), w=12, h=6),
            timeseries("Background tasks by state", "Background tasks (/artifactory/api/tasks) in each state.",
                       q(f"sum by (target, state) (jfrog_background_tasks{{{T}}})", "{{target}} {{state}}"),
                       unit="short", stack=True, w=12, h=8),
            table("Background tasks", "Tasks by type and state (zero counts hidden).",
                  q(f"sum by (target, task_type, state) (jfrog_background_tasks{{{T}}}) > 0", instant=True,
                    table=True),
                  rename={"Value": "Tasks"}, sort=("Tasks", True), w=12, h=8),
        ]),
    ])


def workers(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    w = t["workers"]
    failed = f'jfrog_worker_executions_total{{{T}, status=~"{w["failed_status_regex"]}"}}'
    runs = f"jfrog_worker_executions_total{{{T}}}"
    window = w["failure_window"]

    def ratio(by: str, rng: str, func: str) -> str:
        # Workers without any failed execution get 0, not an empty result.
        total = f"sum by ({by}) ({func}({runs}[{rng}]))"
        return f"(sum by ({by}) ({func}({failed}[{rng}])) or {total} * 0) / {total}"

    def quantile(level: float) -> prometheus.Dataquery:
        return q(f"histogram_quantile({level}, sum by (target, worker, le) "
                 f"(rate(jfrog_worker_execution_duration_seconds_bucket{{{T}}}[$__rate_interval])))",
                 f"{{{{target}}}} {{{{worker}}}} p{round(level * 100)}")

    return board("jfrog-workers", "JFrog Workers",
                     "Executions of JFrog Workers from their history, failures, durations, resource limits and the "
                     "synthetic probe; webhook subscriptions and their deliveries.",
                     [
        Row("Executions", [
            stat("Enabled workers", "Workers that are enabled.",
                 q(f"sum by (target) (jfrog_worker_enabled{{{T}}})", "{{target}}"), colour_mode="none",
                 w=6, h=5),
            stat("Executions", "Executions in the dashboard's time range.",
                 q(f"sum by (target) (increase({runs}[$__range]))", "{{target}}"), unit="short",
                 decimals=0, colour_mode="none", w=6, h=5),
            stat("Failure ratio", "Failed executions over all executions in the dashboard's time range.",
                 q(ratio("target", "$__range", "increase"), "{{target}}"), unit="percentunit",
                 thresholds=steps((GREEN, None), (RED, w["failure_ratio"])), w=6, h=5),
            stat("Probe", "Whether the exporter's synthetic execution of the probe worker (GENERIC_EVENT) succeeds.",
                 q(f"max by (target, worker) (jfrog_worker_probe_success{{{T}}})", "{{target}} {{worker}}"),
                 mappings=value_map({"0": ("FAILING", RED), "1": ("OK", GREEN)}),
                 thresholds=steps((RED, None), (GREEN, 1)), w=6, h=5),
            timeseries("Executions by status", "Executions per minute, by status.",
                       q(f"sum by (target, status) (rate({runs}[$__rate_interval])) * 60", "{{target}} {{status}}"),
                       unit="opm", stack=True, w=12, h=8),
            timeseries("Failure ratio by worker",
                       f"Failed over all executions in the last {window}; the alert fires above "
                       f"{round(w['failure_ratio'] * 100, 2):g}%.",
                       q(ratio("target, worker", window, "rate"), "{{target}} {{worker}}"),
                       unit="percentunit", threshold_line=True, bounds=(0, 1),
                       thresholds=steps((GREEN, None), (RED, w["failure_ratio"])), w=12, h=8),
            timeseries("Execution duration percentiles", "50th, 90th and 99th percentile of the execution time, "
                       "from the histogram of the history entries.",
                       quantile(0.5), quantile(0.9), quantile(0.99), unit="s", w=12, h=8),
            bargauge("Limit usage of the last execution",
                     "CPU time, memory and duration of each worker's last execution over its limits; the platform "
                     "stops an execution at its limit.",
                     q(f"max by (target, worker, resource) (jfrog_worker_limit_usage_ratio{{{T}}})",
                       "{{target}} {{worker}} {{resource}}"),
                     unit="percentunit", bounds=(0, 1),
                     thresholds=steps((GREEN, None), (ORANGE, 0.75), (RED, w["limit_usage"])), w=12, h=8),
        ]),
        Row("Workers and probe", [
            table("Workers", "Every worker, its action, whether it is enabled and when it last executed.",
                  q(f"max by (target, worker, action) (jfrog_worker_enabled{{{T}}})", instant=True, table=True),
                  q(f"max by (target, worker) (jfrog_worker_last_execution_timestamp_seconds{{{T}}}) * 1000",
                    instant=True, table=True),
                  rename={"Value #A": "Enabled", "Value #B": "Last execution"}, sort=("Last execution", True),
                  overrides=[column("Enabled", mappings=value_map({"0": ("disabled", GREY), "1": ("enabled", GREEN)}),
                                    colour_cells=True),
                             column("Last execution", unit="dateTimeAsIso")],
                  w=12, h=9),
            timeseries("Probe latency", "How long the synthetic execution took, as the exporter saw it.",
                       q(f"max by (target, worker) (jfrog_worker_probe_duration_seconds{{{T}}})",
                         "{{target}} {{worker}}"), unit="s", w=12, h=9),
            state_timeline("Probe success", "The synthetic execution's result over time.",
                           q(f"max by (target, worker) (jfrog_worker_probe_success{{{T}}})", "{{target}} {{worker}}"),
                           mappings=value_map({"0": ("failing", RED), "1": ("ok", GREEN)}),
                           thresholds=steps((RED, None), (GREEN, 1)), w=24, h=5),
        ]),
        webhooks_row(t),
    ])


def webhooks_row(t: dict[str, Any]) -> Row:
    """Webhook subscriptions and deliveries (collector `webhooks`)."""
    h = t["webhooks"]
    window = h["failure_window"]
    deliveries = f"jfrog_webhook_deliveries_total{{{T}}}"
    failed = f'jfrog_webhook_deliveries_total{{{T}, result!="success"}}'

    def ratio(by: str, rng: str, func: str) -> str:
        # Subscriptions without a failed delivery get 0, not an empty result.
        total = f"sum by ({by}) ({func}({deliveries}[{rng}]))"
        return f"(sum by ({by}) ({func}({failed}[{rng}])) or {total} * 0) / {total}"

    def quantile(level: float) -> prometheus.Dataquery:
        return q(f"histogram_quantile({level}, sum by (target, le) "
                 f"(rate(jfrog_webhook_delivery_duration_seconds_bucket{{{T}}}[$__rate_interval])))",
                 f"{{{{target}}}} p{round(level * 100)}")

    return Row("Webhooks", [
        stat("Enabled subscriptions", "Webhook subscriptions that are enabled.",
             q(f'sum by (target) (jfrog_webhook_subscriptions{{{T}, state="enabled"}})', "{{target}}"),
             colour_mode="none", w=6, h=5),
        stat("Deliveries", "Webhook deliveries in the dashboard's time range.",
             q(f"sum by (target) (increase({deliveries}[$__range]))", "{{target}}"), unit="short", decimals=0,
             colour_mode="none", w=6, h=5),
        stat("Delivery failure ratio", "Deliveries without a 2xx answer over all, in the dashboard's time range.",
             q(ratio("target", "$__range", "increase"), "{{target}}"), unit="percentunit",
             thresholds=steps((GREEN, None), (RED, h["failure_ratio"])), w=6, h=5),
        stat("Last failed delivery", "When the newest failed delivery counted since the exporter started happened.",
             q(f"max by (target) (jfrog_webhook_last_failure_timestamp_seconds{{{T}}}) * 1000", "{{target}}"),
             unit="dateTimeFromNow", colour_mode="none", w=6, h=5),
        timeseries("Deliveries by result", "Deliveries per minute: success (2xx), failed_4xx, failed_5xx, "
                   "failed_other (the receiver's answer), error (no HTTP answer).",
                   q(f"sum by (target, result) (rate({deliveries}[$__rate_interval])) * 60", "{{target}} {{result}}"),
                   unit="opm", stack=True, w=12, h=8),
        timeseries("Failure ratio by subscription (top 10)",
                   f"Failed over all deliveries in the last {window}, for the ten subscriptions that fail most; the "
                   f"alert fires above {round(h['failure_ratio'] * 100, 2):g}%.",
                   q(f"topk(10, {ratio('target, subscription', window, 'rate')})", "{{target}} {{subscription}}"),
                   unit="percentunit", threshold_line=True, bounds=(0, 1),
                   thresholds=steps((GREEN, None), (RED, h["failure_ratio"])), w=12, h=8),
        timeseries("Delivery latency percentiles", "50th and 95th percentile of the time a delivery took "
                   "(elapsed_millis of the troubleshooting records).",
                   quantile(0.5), quantile(0.95), unit="s", w=12, h=8),
        table("Subscriptions", "Every subscription, what it fires on, whether it is enabled and its last failed "
              "delivery (since the exporter started).",
              q(f"max by (target, subscription, domain, event_types) (jfrog_webhook_subscription_enabled{{{T}}})",
                instant=True, table=True),
              q(f"max by (target, subscription) (jfrog_webhook_last_failure_timestamp_seconds{{{T}}}) * 1000",
                instant=True, table=True),
              rename={"Value #A": "Enabled", "Value #B": "Last failure"}, sort=("Last failure", True),
              overrides=[column("Enabled", mappings=value_map({"0": ("disabled", GREY), "1": ("enabled", GREEN)}),
                                colour_cells=True),
                         column("Last failure", unit="dateTimeAsIso")],
              w=12, h=8),
    ])


TOKEN_BUCKET_COLOURS = {"expired": GREY, "lt_7d": RED, "7d_to_30d": ORANGE, "gt_30d": GREEN, "never": BLUE}
USER_STATUS_COLOURS = {"enabled": GREEN, "disabled": GREY, "locked": RED, "invited": BLUE, "unknown": GREY}


def security_activity(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    s, e, o = t["security"], t["exporter"], t["openmetrics"]
    cert_left = f"(jfrog_certificate_expiry_timestamp_seconds{{{T}}} - time()) / 86400"
    cert_days = steps((RED, None), (ORANGE, _days(s["certificate_expiry_critical"], seconds_of)),
                      (GREEN, _days(s["certificate_expiry_warning"], seconds_of)))
    token_days = steps((ORANGE, None), (GREEN, _days(s["access_token_expiry_warning"], seconds_of)))
    ignored = "|".join(o["ignored_drop_reasons"])
    top_downloaded = (f"topk(20, sum by (target, repo) (increase(jfrog_artifacts_downloaded_total{{{T}}}"
                      "[$__range])))")

    def per_repo(metric: str, what: str) -> timeseries_panel.Panel:
        return timeseries(f"Artifacts {what} per minute (top 10 repositories)",
                          f"Files {what} per minute in the 10 busiest repositories, from AQL (collector activity: "
                          "counting starts when the exporter starts).",
                          q(f"topk(10, sum by (target, repo) (rate({metric}{{{T}}}[$__rate_interval]))) * 60",
                            "{{target}} {{repo}}"), unit="short", w=12, h=8)

    return board("jfrog-security-activity", "JFrog Security & Activity",
                     "TLS certificates, access tokens, users and groups, artifacts created and downloaded per "
                     "repository, and the passthrough of the JPD's own Open Metrics.",
                     [
        Row("TLS certificates", [
            stat("Certificates", "TLS certificates installed on the JPD (/artifactory/api/system/security/"
                 "certificates).",
                 q(f"count by (target) (jfrog_certificate_info{{{T}}})", "{{target}}"),
                 colour_mode="none", w=4, h=6),
            stat("Expired certificates", "Installed certificates whose validUntil has passed; the expired-certificate "
                 "alert fires for each.",
                 q(f"count by (target) (jfrog_certificate_expiry_timestamp_seconds{{{T}}} - time() <= 0)"
                   f" or count by (target) (jfrog_certificate_expiry_timestamp_seconds{{{T}}}) * 0", "{{target}}"),
                 thresholds=steps((GREEN, None), (RED, 1)), w=4, h=6),
            stat("Soonest certificate expiry (days)",
                 "Days until the first certificate that has not expired yet expires; "
                 f"the alert fires below {s['certificate_expiry_warning']} (critical below "
                 f"{s['certificate_expiry_critical']}).",
                 q(f"min by (target) ({cert_left} > 0)", "{{target}}"),
                 decimals=1, no_value="none valid", thresholds=cert_days, w=4, h=6),
            table("Installed certificates", "Every installed certificate: alias, who it was issued to and by, its "
                  "expiry and the days left (negative: expired). Soonest first.",
                  q(f"max by (target, alias, issued_to, issued_by) (jfrog_certificate_info{{{T}}})", instant=True,
                    table=True),
                  q(f"min by (target, alias) ({cert_left})", instant=True, table=True),
                  q(f"max by (target, alias) (jfrog_certificate_expiry_timestamp_seconds{{{T}}}) * 1000",
                    instant=True, table=True),
                  hide=("Value #A",), rename={"Value #B": "Days left", "Value #C": "Expires"},
                  sort=("Days left", False),
                  overrides=[column("Days left", decimals=1, colour_cells=True, thresholds=cert_days),
                             column("Expires", unit="dateTimeAsIso")],
                  w=12, h=6),
        ]),
        Row("Access tokens", [
            stat("Tokens expiring within 7 days", "Access tokens whose expiry is less than 7 days away (bucket "
                 "lt_7d), all subjects.",
                 q(f'sum by (target) (jfrog_access_tokens{{{T}, expiry="lt_7d"}})', "{{target}}"),
                 thresholds=steps((GREEN, None), (ORANGE, 1)), w=4, h=7),
            stat("Exporter token days left",
                 "Days until the token the exporter uses for the JPD expires (from its JWT); the "
                 f"alert fires below {e['token_expiry_warning']} (critical below {e['token_expiry_critical']}). No "
                 "value: a reference token or basic authentication, whose expiry the exporter cannot read.",
                 q(f"min by (target) (jfrog_exporter_token_expiry_timestamp_seconds{{{T}}} - time()) / 86400",
                   "{{target}}"),
                 decimals=1, no_value="unknown expiry",
                 thresholds=steps((RED, None), (ORANGE, _days(e["token_expiry_critical"], seconds_of)),
                                  (GREEN, _days(e["token_expiry_warning"], seconds_of))), w=4, h=7),
            bargauge("Tokens by expiry", "Access tokens (/access/api/v1/tokens) by time left until they expire.",
                     q(f"sum by (expiry) (jfrog_access_tokens{{{T}}})", "{{expiry}}"),
                     overrides=_by_name_colours(TOKEN_BUCKET_COLOURS), display_mode="basic", w=6, h=7),
            bargauge("Tokens by subject kind", "Access tokens of users, groups, services and nodes.",
                     q(f"sum by (subject_kind) (jfrog_access_tokens{{{T}}})", "{{subject_kind}}"),
                     thresholds=steps((BLUE, None)), display_mode="basic", w=5, h=7),
            table("Tokens by subject kind and expiry", "Counts per subject kind and expiry bucket.",
                  q(f"sum by (target, subject_kind, expiry) (jfrog_access_tokens{{{T}}})", instant=True, table=True),
                  rename={"Value": "Tokens"},
                  overrides=[_status_column("expiry", TOKEN_BUCKET_COLOURS)], w=5, h=7),
            timeseries("Tokens by expiry over time", "Access tokens in each expiry bucket, by subject kind.",
                       q(f"sum by (target, subject_kind, expiry) (jfrog_access_tokens{{{T}}})",
                         "{{target}} {{subject_kind}} {{expiry}}"), unit="short", w=12, h=8),
            table("Soonest expiring subjects",
                  "The subjects whose next token expires first (at most collectors.security.token_subjects, expired "
                  f"tokens left out); the alert fires below {s['access_token_expiry_warning']}.",
                  q(f"min by (target, subject, subject_kind) ((jfrog_access_token_soonest_expiry_timestamp_seconds"
                    f"{{{T}}} - time()) / 86400)", instant=True, table=True),
                  q(f"min by (target, subject, subject_kind) (jfrog_access_token_soonest_expiry_timestamp_seconds"
                    f"{{{T}}}) * 1000", instant=True, table=True),
                  rename={"Value #A": "Days left", "Value #B": "Next expiry"}, sort=("Days left", False),
                  overrides=[column("Days left", decimals=1, colour_cells=True, thresholds=token_days),
                             column("Next expiry", unit="dateTimeAsIso")],
                  w=12, h=8),
        ]),
        Row("Users and groups", [
            stat("Users", "Users of the JPD (/access/api/v2/users).",
                 q(f"sum by (target) (jfrog_users{{{T}}})", "{{target}}"), colour_mode="none", w=4, h=6),
            stat("Groups", "Groups of the JPD (/access/api/v2/groups).",
                 q(f"max by (target) (jfrog_groups{{{T}}})", "{{target}}"), colour_mode="none", w=4, h=6),
            stat("User list complete", "Whether the user and group lists were read to the end; truncated: they have "
                 "more pages than collectors.security.max_pages and the counts are lower bounds.",
                 q(f"max by (target) (jfrog_users_truncated{{{T}}})", "{{target}}"),
                 mappings=value_map({"0": ("complete", GREEN), "1": ("TRUNCATED", ORANGE)}),
                 thresholds=steps((GREEN, None), (ORANGE, 1)), w=4, h=6),
            bargauge("Users by status", "Enabled, disabled, locked and invited users.",
                     q(f"sum by (status) (jfrog_users{{{T}}})", "{{status}}"),
                     overrides=_by_name_colours(USER_STATUS_COLOURS), display_mode="basic", w=6, h=6),
            bargauge("Users by realm", "Where users come from: internal, LDAP, SAML, ...",
                     q(f"sum by (realm) (jfrog_users{{{T}}})", "{{realm}}"),
                     thresholds=steps((BLUE, None)), display_mode="basic", w=6, h=6),
            table("Users by realm and status", "User counts per realm and status.",
                  q(f"sum by (target, realm, status) (jfrog_users{{{T}}}) > 0", instant=True, table=True),
                  rename={"Value": "Users"}, sort=("Users", True),
                  overrides=[_status_column("status", USER_STATUS_COLOURS)], w=12, h=8),
            timeseries("Users by status over time", "Users in each status.",
                       q(f"sum by (target, status) (jfrog_users{{{T}}})", "{{target}} {{status}}"),
                       unit="short", w=12, h=8),
        ]),
        Row("Activity", [
            stat("Artifacts created", "Files created in the dashboard's time range (collector activity, optional).",
                 q(f"sum by (target) (increase(jfrog_artifacts_created_total{{{T}}}[$__range]))", "{{target}}"),
                 unit="short", decimals=0, colour_mode="none", w=6, h=5),
            stat("Artifacts downloaded", "Files downloaded in the dashboard's time range; a file downloaded several "
                 "times between two runs of the collector counts once.",
                 q(f"sum by (target) (increase(jfrog_artifacts_downloaded_total{{{T}}}[$__range]))", "{{target}}"),
                 unit="short", decimals=0, colour_mode="none", w=6, h=5),
            stat("Counted up to", "How far behind now the activity counters are (the collector's settle time plus "
                 "its interval when all is well).",
                 q(f"max by (target, kind) (time() - jfrog_activity_watermark_timestamp_seconds{{{T}}})",
                   "{{target}} {{kind}}"),
                 unit="s", colour_mode="none", w=6, h=5),
            stat("Truncated windows", "AQL windows that were full even at one millisecond in the dashboard's time "
                 "range: activity in them is missing from the counters.",
                 q(f"sum by (target, kind) (increase(jfrog_activity_truncated_windows_total{{{T}}}[$__range]))",
                   "{{target}} {{kind}}"),
                 unit="short", decimals=0, thresholds=steps((GREEN, None), (ORANGE, 1)), w=6, h=5),
            per_repo("jfrog_artifacts_created_total", "created"),
            per_repo("jfrog_artifacts_downloaded_total", "downloaded"),
            table("Most downloaded repositories", "The 20 repositories with the most downloaded files in the "
                  "dashboard's time range, and the files created in them.",
                  q(top_downloaded, instant=True, table=True),
                  q(f"sum by (target, repo) (increase(jfrog_artifacts_created_total{{{T}}}[$__range]))"
                    f" and on (target, repo) {top_downloaded}", instant=True, table=True),
                  rename={"Value #A": "Downloaded", "Value #B": "Created"}, sort=("Downloaded", True),
                  overrides=[column("Downloaded", unit="short", decimals=0),
                             column("Created", unit="short", decimals=0)],
                  w=12, h=9),
            table("Repositories with the most uploads", "The 20 repositories with the most files created in the "
                  "dashboard's time range.",
                  q(f"topk(20, sum by (target, repo) (increase(jfrog_artifacts_created_total{{{T}}}[$__range])))",
                    instant=True, table=True),
                  rename={"Value": "Created"}, sort=("Created", True),
                  overrides=[column("Created", unit="short", decimals=0)], w=12, h=9),
        ]),
        Row("Open Metrics passthrough", [
            stat("Open Metrics", "Whether each service publishes its own metrics for the exporter to re-expose "
                 "(collector openmetrics, optional). Disabled: the JPD answers an empty body or has no endpoint.",
                 q(f"max by (target, service) (jfrog_openmetrics_enabled{{{T}}})", "{{target}} {{service}}"),
                 mappings=value_map({"0": ("disabled", GREY), "1": ("enabled", GREEN)}),
                 thresholds=steps((GREY, None), (GREEN, 1)), w=6, h=6),
            stat("Series re-exposed", "Vendor series from the last metrics body of each service.",
                 q(f"max by (target, service) (jfrog_openmetrics_series{{{T}}})", "{{target}} {{service}}"),
                 unit="short", colour_mode="none", w=6, h=6),
            stat("Retyped families", "Vendor families re-exposed untyped because their samples cannot be valid under "
                 "the declared type.",
                 q(f"max by (target, service) (jfrog_openmetrics_retyped_families{{{T}}})", "{{target}} {{service}}"),
                 unit="short", thresholds=steps((GREEN, None), (ORANGE, 1)), w=6, h=6),
            stat("Samples dropped unexpectedly", f"Samples dropped in the last {o['dropped_window']} for another "
                 f"reason than {' or '.join(o['ignored_drop_reasons'])}; the alert fires above 0.",
                 q(f"sum by (target, service) (increase(jfrog_openmetrics_dropped_samples_total{{{T}, "
                   f'reason!~"{ignored}"}}[{o["dropped_window"]}]))', "{{target}} {{service}}"),
                 unit="short", decimals=0, thresholds=steps((GREEN, None), (ORANGE, 1)), w=6, h=6),
            timeseries("Dropped samples by reason", "Vendor samples not re-exposed per second, by reason: "
                       "unparseable, duplicate, filtered (include/exclude), series_limit (max_series), reserved_name "
                       "(jfrog_ prefix), name_conflict.",
                       q(f"sum by (target, service, reason) (rate(jfrog_openmetrics_dropped_samples_total{{{T}}}"
                         "[$__rate_interval]))", "{{target}} {{service}} {{reason}}"),
                       unit="cps", w=12, h=8),
            timeseries("Series re-exposed over time", "Vendor series per service; a drop to 0 means the service "
                       "stopped publishing.",
                       q(f"max by (target, service) (jfrog_openmetrics_series{{{T}}})", "{{target}} {{service}}"),
                       unit="short", w=12, h=8),
        ]),
    ])


def distribution(t: dict[str, Any], seconds_of: Any) -> dash.Dashboard:
    d = t["distribution"]
    stuck = seconds_of(d["stuck_after"])
    oldest = f"max by (target) (time() - jfrog_distribution_oldest_in_progress_start_timestamp_seconds{{{T}}})"
    return board("jfrog-distribution", "JFrog Distribution",
                 "JFrog Distribution: the service, Release Bundle v1 distributions by status, the sites where the "
                 "latest distribution failed, distributions in progress, received Release Bundles v2.",
                 [
        Row("Service", [
            stat("Distribution", "Whether Distribution's ping answers OK.",
                 q(f"max by (target) (jfrog_distribution_up{{{T}}})", "{{target}}"), mappings=UP_DOWN,
                 thresholds=steps((RED, None), (GREEN, 1)), w=6, h=5),
            stat("System status", "STABLE when Distribution's system info reports no trouble.",
                 q(f"max by (target) (jfrog_distribution_stable{{{T}}})", "{{target}}"),
                 mappings=value_map({"0": ("UNSTABLE", RED), "1": ("STABLE", GREEN)}),
                 thresholds=steps((RED, None), (GREEN, 1)), w=6, h=5),
            table("Version", "Distribution's version, from its system info.",
                  q(f"max by (target, version) (jfrog_distribution_info{{{T}}})", instant=True, table=True),
                  hide=("Value",), w=6, h=5),
            stat("Received Release Bundles v2", "Release Bundles v2 this Distribution target has received.",
                 q(f"max by (target) (jfrog_distribution_received_release_bundles{{{T}}})", "{{target}}"),
                 unit="short", colour_mode="none", w=6, h=5),
        ]),
        Row("Release Bundle v1 distributions", [
            timeseries("Distributions by status", "Distributions Distribution lists, by status.",
                       q(f"sum by (target, status) (jfrog_distribution_distributions{{{T}}})",
                         "{{target}} {{status}}"), unit="short", stack=True, w=12, h=7),
            stat("Current failures", "Release Bundle versions and sites whose latest distribution failed.",
                 q(f"max by (target) (jfrog_distribution_failed_sites{{{T}}})", "{{target}}"), unit="short",
                 thresholds=steps((GREEN, None), (RED, 1)), w=6, h=7),
            stat("Oldest in progress for", f"Since the oldest distribution still in progress started; the alert "
                 f"fires above {d['stuck_after']}.",
                 q(oldest, "{{target}}"), unit="s", no_value="none in progress",
                 thresholds=steps((GREEN, None), (ORANGE, stuck)), w=6, h=7),
            table("Failed distributions", "Release Bundle versions whose latest distribution to a site failed, the "
                  "most recent first (at most collectors.distribution.max_failures per JPD); a later distribution "
                  "to the site that completes clears the row.",
                  q(f"max by (target, release_bundle, version, site) "
                    f"(jfrog_distribution_site_failed_timestamp_seconds{{{T}}}) * 1000", instant=True, table=True),
                  rename={"Value": "Failed at", "release_bundle": "Release Bundle"}, sort=("Failed at", True),
                  overrides=[column("Failed at", unit="dateTimeAsIso")], w=24, h=8),
            timeseries("Age of the oldest distribution in progress", f"The alert fires above {d['stuck_after']}.",
                       q(oldest, "{{target}}"), unit="s", threshold_line=True,
                       thresholds=steps((GREEN, None), (ORANGE, stuck)), w=24, h=7),
        ]),
    ])


#: file name -> dashboard builder
DASHBOARDS: dict[str, Callable[[dict[str, Any], Any], dash.Dashboard]] = {
    "overview.json": overview,
    "storage.json": storage,
    "replication-federation.json": replication_federation,
    "maintenance.json": maintenance,
    "workers.json": workers,
    "security-activity.json": security_activity,
    "distribution.json": distribution,
}


def to_json(dashboard: dash.Dashboard) -> str:
    """The dashboard as the SDK encodes its model."""
    return json.dumps(dashboard.build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


def render(thresholds_path: Path | None = None) -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    alerts = _alerts_module()
    thresholds = alerts.load_thresholds(thresholds_path or alerts.THRESHOLDS)
    return {name: to_json(build(thresholds, alerts.duration_seconds))
            for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=Path, help="thresholds file (default: alerts/src/thresholds.yaml)")
    parser.add_argument("--out", type=Path, default=HERE, help="directory of the dashboards (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="only report whether the dashboards are up to date")
    args = parser.parse_args(argv)
    try:
        files = render(args.thresholds)
    except (ValueError, OSError) as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    return int(_alerts_module().write_or_check(files, args.out, args.check, "python dashboards/generate.py"))


if __name__ == "__main__":
    sys.exit(main())
