"""The demo as a user runs it, watched by a real Prometheus with the shipped rules and dashboards.

`jfrog-exporter demo` runs in a subprocess; one Prometheus scrapes its exporter and evaluates alerts/*.yaml
every second. Within a bounded time each demo JPD raises exactly the alerts listed here (pending or firing),
the healthy one none, and every query of every dashboard panel returns data, apart from the listed panels
that cannot have any by nature.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from exporter.cli import DEMO_COLLECTORS, DEMO_JPDS
from exporter.collectors.registry import COLLECTORS
from tests.packaging.test_alerts import GRAFANA_VARIABLES, RULE_FILES
from tests.packaging.test_dashboards import panel_queries
from tests.prometheus import PrometheusServer, prometheus_server
from tests.support import demo

#: the demo's JPDs (the `target` label)
JPDS = tuple(name for name, _ in DEMO_JPDS)
#: (alert, severity) each demo JPD raises
ALERTS: dict[str, set[tuple[str, str]]] = {
    "healthy": set(),
    "degraded": {
        ("JfrogNotReady", "critical"),
        ("JfrogJFConnectNotReady", "warning"),
        ("JfrogRouterServiceUnhealthy", "warning"),
        # Node art1's license expires in 5 days; art2's, in 20, is in the warning range and waits.
        ("JfrogLicenseExpiring", "critical"),
        ("JfrogFilestoreAlmostFull", "critical"),
        ("JfrogCertificateExpired", "critical"),
        ("JfrogAccessTokenExpiring", "warning"),
        ("JfrogAccessTokensExpiringSoon", "warning"),
        # The exporter's own token for it expires in 10 days.
        ("JfrogExporterTokenExpiring", "warning"),
        # Its Open Metrics hold lines no parser should trust.
        ("JfrogOpenMetricsSamplesDropped", "warning"),
        # Its Distribution failed to two sites 30 minutes ago; a distribution has been in progress for 3 hours.
        ("JfrogDistributionFailed", "warning"),
        ("JfrogDistributionStuck", "warning"),
        # Its webhook receivers answer 503, 401 or nothing to part of the deliveries.
        ("JfrogWebhookDeliveriesFailing", "warning"),
    },
}
#: panel queries without data over the demo by nature: (dashboard, panel title, refId) -> why
NO_DATA: dict[tuple[str, str, str], str] = {
    ("storage.json", "Predicted full", "A"): "shows only a filestore whose free space shrinks; neither demo JPD's "
                                             "does (the filling-up case is test_alerts.py's `filling` situation)",
}
#: how long after the start every alert and panel must be there
WITHIN = 60.0


@dataclass
class Demo:
    prom: PrometheusServer
    started: float

    def deadline(self) -> float:
        return self.started + WITHIN


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("demo")
    with demo(tmp) as process, \
            prometheus_server(tmp, scrape_urls=[process.url + "/metrics"], rule_files=RULE_FILES, interval="1s",
                              job="jfrog-exporter") as prom:
        yield Demo(prom, time.monotonic())


def _active(prom: PrometheusServer) -> dict[str, set[tuple[str, str]]]:
    """(alert, severity) pending or firing per demo JPD."""
    out: dict[str, set[tuple[str, str]]] = {name: set() for name in JPDS}
    for alert in prom.alerts():
        labels = alert["labels"]
        if alert["state"] in ("pending", "firing"):
            out.setdefault(labels.get("target", ""), set()).add((labels["alertname"], labels["severity"]))
    return out


def _evaluations(prom: PrometheusServer) -> dict[tuple[str, str], str]:
    return {(rule["name"], rule["labels"].get("severity", "")): rule.get("lastEvaluation", "")
            for rule in prom.rules()}


def test_the_demo_runs_every_collector() -> None:
    assert set(DEMO_COLLECTORS) == set(COLLECTORS)
    assert all(settings.get("enabled", True) for settings in DEMO_COLLECTORS.values())


def test_each_jpd_raises_exactly_its_alerts(running: Demo) -> None:
    prom = running.prom
    while _active(prom) != ALERTS and time.monotonic() < running.deadline():
        time.sleep(0.5)
    # Every collector of every JPD has reached Prometheus, and every rule was evaluated since: nothing is late.
    expected_runs = len(JPDS) * len(COLLECTORS)
    prom.wait_until(lambda: len(prom.query("jfrog_exporter_collector_success")) == expected_runs, 10,
                    "a run of every collector")
    before = _evaluations(prom)
    prom.wait_until(lambda: all(when != before[key] for key, when in _evaluations(prom).items()), 10,
                    "an evaluation of every rule")
    assert _active(prom) == ALERTS


@pytest.mark.parametrize(("name", "title", "ref", "expr"), panel_queries(),
                         ids=[f"{n}:{t}:{r}" for n, t, r, _ in panel_queries()])
def test_every_panel_has_data(running: Demo, name: str, title: str, ref: str, expr: str) -> None:
    query = expr.replace("$target", "|".join(JPDS))
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    result = running.prom.query(query)
    while not result and (name, title, ref) not in NO_DATA and time.monotonic() < running.deadline():
        time.sleep(0.5)
        result = running.prom.query(query)
    if (name, title, ref) in NO_DATA:
        assert result == [], f"{title} has data now: drop it from NO_DATA ({NO_DATA[name, title, ref]})"
    else:
        assert result, f"no data within {WITHIN:.0f}s for {query}"


def test_exceptions_name_real_panels() -> None:
    assert set(NO_DATA) <= {(n, t, r) for n, t, r, _ in panel_queries()}


def test_prometheus_scrapes_the_exporters_own_process_metrics(running: Demo) -> None:
    # What an operator watches against the pod's memory limit.
    prom = running.prom
    prom.wait_until(lambda: prom.query("process_resident_memory_bytes > 0"), 10, "the exporter's resident size")
    assert prom.query("python_info"), "the runtime's info"
