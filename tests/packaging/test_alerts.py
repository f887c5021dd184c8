"""The alerting rules: generated files, promtool, conventions, and a real Prometheus.

The end-to-end part runs one Prometheus (the Debian package) on loopback. It scrapes the exporter,
which watches one simulated JPD per situation (healthy, degraded, replication, federation, ...);
Prometheus evaluates alerts/*.yaml. Then, through its HTTP API, every dashboard query and every
rule must parse and return data for the situation it is meant for, the alerts meant for a
degraded situation must be pending or firing there with rendered annotations, and the healthy JPD
must raise none. The dashboards' queries are checked here so that one Prometheus serves both.

A query whose metrics come from a collector that is not registered yet is skipped, naming it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.collectors.registry import COLLECTORS
from exporter.simulator.scenarios import SCENARIOS
from exporter.simulator.security_data import SERVICE_ID as SECURITY_SERVICE_ID
from tests.packaging.test_dashboards import (
    check_metrics_against_reference,
    collector_of,
    load_script,
    metric_reference,
    panel_queries,
    selectors,
)
from tests.prometheus import PrometheusServer, prometheus_server
from tests.support import REPO, Process, closed_port, ensure_prometheus, exporter, simulator

ALERTS = REPO / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.yaml"))
UNIT_TESTS = sorted((ALERTS / "tests").glob("*.yaml"))
RUNBOOK = ALERTS / "runbook.md"
JOB = "jfrog-exporter"


def generator() -> Any:
    return load_script(ALERTS / "generate.py", "jfrog_alerts_generate")


def rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def alert_keys() -> list[tuple[str, str]]:
    """(alert name, severity) of every alerting rule."""
    return [(r["alert"], r["labels"]["severity"]) for r in rules() if "alert" in r]


# -- generation and the thresholds file ---------------------------------------------------------------------------

def test_rule_files_are_generated_from_the_thresholds() -> None:
    rendered = generator().render(generator().load_thresholds())
    assert {p.name for p in RULE_FILES} == set(rendered), "alerts/*.yaml and the generator disagree on the files"
    for name, text in rendered.items():
        assert (ALERTS / name).read_text() == text, f"alerts/{name} is stale: run python alerts/generate.py"


def test_thresholds_drive_the_rules(tmp_path: Path) -> None:
    source = (ALERTS / "src" / "thresholds.yaml").read_text()
    changes = {
        "max_age: 36h": "max_age: 6h",
        "license_expiry_warning: 30d": "license_expiry_warning: 60d",
        "exporter_selector: 'job=\"jfrog-exporter\"'": "exporter_selector: 'job=\"jfrog\", env=\"prod\"'",
        "member_alert_states: [error, disabled, pending_full_sync, out_of_sync]": "member_alert_states: [error]",
        "certificate_expiry_warning: 30d": "certificate_expiry_warning: 45d",
        "access_token_expiry_warning: 7d": "access_token_expiry_warning: 14d",
        "ignored_drop_reasons: [filtered, duplicate]": "ignored_drop_reasons: [filtered, duplicate, series_limit]",
        "truncated_window: 1h": "truncated_window: 6h",
    }
    for old, new in changes.items():
        assert old in source, old
        source = source.replace(old, new)
    path = tmp_path / "thresholds.yaml"
    path.write_text(source)
    out = tmp_path / "rules"
    assert generator().main(["--thresholds", str(path), "--out", str(out),
                             "--runbook-base-url", "https://git.example.net/ops/jfrog/runbook.md"]) == 0
    generated = {r["alert"] + "/" + r["labels"]["severity"]: r for f in sorted(out.glob("*.yaml"))
                 for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]}
    assert "> 6 * 3600" in generated["JfrogReplicationNotCompleted/warning"]["expr"]
    assert "< 60 * 86400" in generated["JfrogLicenseExpiring/warning"]["expr"]
    assert generated["JfrogExporterDown/critical"]["expr"] == 'up{job="jfrog", env="prod"} == 0'
    assert 'status=~"error"' in generated["JfrogFederationMemberUnhealthy/warning"]["expr"]
    assert "< 45 * 86400" in generated["JfrogCertificateExpiring/warning"]["expr"]
    assert "< 45 * 86400" not in generated["JfrogCertificateExpiring/critical"]["expr"]
    assert "< 14 * 86400" in generated["JfrogAccessTokenExpiring/warning"]["expr"]
    assert 'reason!~"filtered|duplicate|series_limit"' in generated["JfrogOpenMetricsSamplesDropped/warning"]["expr"]
    assert "[6h]" in generated["JfrogActivityWindowsTruncated/warning"]["expr"]
    assert "In the last 6h," in generated["JfrogActivityWindowsTruncated/warning"]["annotations"]["description"]
    assert generated["JfrogDown/critical"]["annotations"]["runbook_url"] == \
        "https://git.example.net/ops/jfrog/runbook.md#jfrogdown"
    # The shipped files are untouched, and --check tells them apart from the changed thresholds.
    assert generator().main(["--thresholds", str(path), "--check"]) == 1
    assert generator().main(["--check"]) == 0
    check = subprocess.run([str(ensure_prometheus()), "check", "rules", *map(str, sorted(out.glob("*.yaml")))],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_runbook_links_default_to_the_shipped_runbook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # No invented host: without --runbook-base-url the link names the file shipped beside the rules.
    assert generator().RUNBOOK_BASE_URL == "alerts/runbook.md"
    assert all("example-org" not in p.read_text() for p in (*RULE_FILES, *UNIT_TESTS))
    assert generator().main(["--out", str(tmp_path / "out"), "--runbook-base-url", "https://x.example/a b"]) == 2
    assert "--runbook-base-url" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (("max_age: 36h", "max_age: 36 hours"), "replication.max_age: '36 hours' is not a duration"),
    (("failure_ratio: 0.1", "failure_ratio: 10"), "workers.failure_ratio: 10 is not a ratio"),
    (("  blocked_for: 30m\n", "  blocked_for: 30m\n  blokced_for: 1h\n"), "replication.blokced_for: unknown key"),
    (("  probe_for: 5m\n", ""), "workers.probe_for: missing"),
    (("certificate_expired_for: 10m", "certificate_expired_for: ten minutes"),
     "security.certificate_expired_for: 'ten minutes' is not a duration"),
    (("ignored_drop_reasons: [filtered, duplicate]", "ignored_drop_reasons: filtered"),
     "openmetrics.ignored_drop_reasons: expected a non-empty list of lower-case state names"),
    (("member_alert_states: [error, disabled, pending_full_sync, out_of_sync]", "member_alert_states: [ERROR]"),
     "federation.member_alert_states: expected a non-empty list of lower-case state names"),
])
def test_bad_thresholds_are_refused_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   edit: tuple[str, str], message: str) -> None:
    source = (ALERTS / "src" / "thresholds.yaml").read_text()
    assert edit[0] in source
    path = tmp_path / "thresholds.yaml"
    path.write_text(source.replace(edit[0], edit[1]))
    assert generator().main(["--thresholds", str(path), "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# -- promtool ---------------------------------------------------------------------------------------------------

def test_promtool_check_rules() -> None:
    result = subprocess.run([str(ensure_prometheus()), "check", "rules", *map(str, RULE_FILES)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_FILES)


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run([str(ensure_prometheus()), "test", "rules", *map(str, UNIT_TESTS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"], path
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                if not check["exp_alerts"]:
                    quiet.add(check["alertname"])
                for expected in check["exp_alerts"]:
                    annotations = expected.get("exp_annotations", {})
                    assert {"summary", "description", "runbook_url"} <= set(annotations), (path, check["alertname"])
                    fires.add((check["alertname"], expected["exp_labels"]["severity"]))
    for name, severity in alert_keys():
        assert (name, severity) in fires, f"no unit test where {name} fires with severity {severity}"
        assert name in quiet, f"no unit test where {name} stays quiet"


# -- conventions ------------------------------------------------------------------------------------------------

def test_rule_groups_are_unique_and_alerts_follow_the_conventions() -> None:
    groups = [g["name"] for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]]
    assert len(groups) == len(set(groups)), "the Helm chart merges all files: group names must be unique"
    base = generator().RUNBOOK_BASE_URL
    headings = set(re.findall(r"^### (\w+)$", RUNBOOK.read_text(), re.MULTILINE))
    for rule in rules():
        name = rule["alert"]
        assert re.fullmatch(r"Jfrog[A-Z][A-Za-z]+", name)
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        assert re.fullmatch(r"\d+[smhd]", rule["for"]), f"{name}: every alert waits a while before it fires"
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"{base}#{name.lower()}", name
        assert name in headings, f"{name}: no section '### {name}' in alerts/runbook.md"
        subject = "$labels.instance" if name == "JfrogExporterDown" else "$labels.target"
        for key in ("summary", "description"):
            assert subject in annotations[key], f"{name}: the {key} must name {subject}"
    assert headings == {n for n, _ in alert_keys()}, "runbook sections without an alert"


def test_rules_use_exposed_metrics_and_labels(reference: dict[str, Any]) -> None:
    for rule in rules():
        check_metrics_against_reference(rule["expr"], reference, rule["alert"])


# -- a real Prometheus ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Situation:
    """A JPD as the exporter sees it: a simulator scenario, the collectors to run, their settings."""

    scenario: str | None  # None: nothing listens at the URL
    collectors: tuple[str, ...]
    settings: tuple[tuple[str, str, Any], ...] = ()  # (collector, key, value)
    share: str | None = None  # use the simulator of another situation
    optional: tuple[str, ...] = ()  # also run where registered
    simulator_args: tuple[str, ...] = ()  # more arguments of `jfrog-exporter simulate`
    path: str = ""  # appended to the simulator's URL in the exporter's configuration
    token_env: str = "SIM_TOKEN"  # the variable the exporter reads its token from


#: target name -> what it is; the target is named after its situation
SITUATIONS: dict[str, Situation] = {
    # The activity counters count from the first run on, without waiting for late rows.
    "healthy": Situation("healthy", ("health", "storage", "security"), (("activity", "settle", 0),),
                         optional=("replication", "federation", "maintenance", "workers", "activity", "openmetrics",
                                   "distribution", "webhooks")),
    # Its JPD also sends broken lines and a family named jfrog_up in its Open Metrics.
    "degraded": Situation("degraded", ("health", "storage"), optional=("openmetrics",)),
    "down": Situation(None, ("health", "storage")),
    # Its simulator is stopped once the exporter has collected from it.
    "stale": Situation("healthy", ("health", "storage")),
    # A URL under a path where no JFrog Platform answers.
    "misconfigured": Situation("healthy", ("health", "storage"), share="healthy", path="/jfrog"),
    # The JPD is fine; the exporter's token is not.
    "rejected": Situation("healthy", ("health", "storage"), share="healthy", token_env="REVOKED_TOKEN"),
    # Starts healthy and becomes degraded (96 % full) once Prometheus has scraped it: the filestore fills up.
    "filling": Situation("healthy", ("health", "storage")),
    # The exporter reads this JPD with a JWT that expires in two days. The degraded scenario's security data has
    # an expired certificate and tokens in every expiry bucket.
    "token": Situation("degraded", ("health", "security")),
    # 50 users, 30 tokens, 20 certificates: expired ones, and one expiring in 13 to 14 days.
    "certificates": Situation("large", ("health", "security"), simulator_args=("--scale", "100")),
    "replication": Situation("replication", ("health", "replication")),
    "federation-rtfs": Situation("federation-rtfs", ("health", "federation")),
    # The per-repository status (queued events) is optional on the legacy service.
    "federation-legacy": Situation("federation-legacy", ("health", "federation"),
                                   (("federation", "legacy_repo_status", True),)),
    "maintenance": Situation("maintenance", ("health", "maintenance")),
    "maintenance-pud-error": Situation("maintenance-pud-error", ("health", "maintenance")),
    "workers": Situation("workers", ("health", "workers"), (("workers", "probe_worker", "exporter-probe"),)),
    "workers-probe-failing": Situation("workers", ("health", "workers"),
                                       (("workers", "probe_worker", "cleanup-trigger"),), share="workers"),
    # Failed distributions and one stuck in progress for 3 hours; Distribution's own metrics passed through.
    "distribution": Situation("distribution", ("health", "distribution", "openmetrics"),
                              (("openmetrics", "distribution", True),)),
    # The degraded scenario's webhook receivers fail part of the deliveries; counted from the first run on.
    "webhooks": Situation("degraded", ("health", "webhooks"), (("webhooks", "settle", 0),), share="degraded"),
}
#: where the data of each collector's metrics is meant to be
COLLECTOR_SITUATION = {"exporter": "healthy", "health": "healthy", "storage": "healthy", "replication": "replication",
                       "federation": "federation-rtfs", "maintenance": "maintenance", "workers": "workers",
                       "security": "token", "activity": "healthy", "openmetrics": "healthy",
                       "distribution": "distribution", "webhooks": "webhooks"}
#: queries meant for other situations than their collector's: (pattern in the query, situations)
QUERY_SITUATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ALERTS{", ("degraded",)),
    ("deriv(jfrog_storage_filestore_free_bytes", ("filling",)),
    ("jfrog_federation_federations", ("federation-rtfs",)),  # the legacy service has no state summary
    ("jfrog_federation_", ("federation-rtfs", "federation-legacy")),
    # The exporter's own token is a JWT only where the exporter reads a JPD with one.
    ("jfrog_exporter_token_expiry", ("token",)),
)
#: rules whose metrics are meant for another situation than their collector's
RULE_SITUATIONS = {"JfrogPudError": "maintenance-pud-error", "JfrogWorkerProbeFailing": "workers-probe-failing",
                   "JfrogFilestoreFillingUp": "filling", "JfrogNotReady": "degraded", "JfrogDown": "down",
                   "JfrogJFConnectNotReady": "degraded",
                   "JfrogOpenMetricsSamplesDropped": "degraded"}
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__range": "1h"}
TOKEN_LIFETIME = 2 * 86400
INTERVAL = "2s"

#: (alert, severity) -> (situation, labels the alert must carry); None: the exporter itself
FIRES: dict[tuple[str, str], tuple[str | None, dict[str, str]]] = {
    ("JfrogExporterDown", "critical"): (None, {"job": JOB}),
    ("JfrogExporterCollectorFailing", "warning"): ("down", {"collector": "health"}),
    ("JfrogExporterCollectorDataStale", "warning"): ("stale", {"collector": "health"}),
    ("JfrogExporterTokenExpiring", "critical"): ("token", {}),
    ("JfrogExporterMisconfigured", "critical"): ("misconfigured", {}),
    ("JfrogExporterCredentialsRejected", "critical"): ("rejected", {}),
    ("JfrogDown", "critical"): ("down", {}),
    ("JfrogNotReady", "critical"): ("degraded", {}),
    ("JfrogJFConnectNotReady", "warning"): ("degraded", {}),
    ("JfrogRouterServiceUnhealthy", "warning"): ("degraded", {"node_id": "art1", "service_id": "jffe@01h00nodeart1"}),
    ("JfrogLicenseExpiring", "critical"): ("degraded", {"node_id": "art1"}),
    ("JfrogFilestoreAlmostFull", "critical"): ("degraded", {}),
    ("JfrogFilestoreFillingUp", "warning"): ("filling", {}),
    ("JfrogReplicationError", "warning"): ("replication", {"repo": "libs-release-local"}),
    ("JfrogReplicationInconsistent", "warning"): ("replication", {"repo": "generic-local"}),
    ("JfrogReplicationNotCompleted", "warning"): ("replication", {"repo": "npm-local"}),
    ("JfrogReplicationBlocked", "warning"): ("replication", {"direction": "push"}),
    ("JfrogFederationLagHigh", "warning"): ("federation-rtfs", {"repo": "fed-generic"}),
    ("JfrogFederationMemberUnhealthy", "warning"): ("federation-rtfs", {"repo": "fed-generic", "status": "error"}),
    ("JfrogFederationInconsistentRepos", "warning"): ("federation-rtfs", {}),
    ("JfrogFederationFailedBinaryTasks", "warning"): ("federation-rtfs", {"repo": "fed-generic"}),
    ("JfrogPudError", "warning"): ("maintenance-pud-error", {}),
    ("JfrogWorkerFailureRatioHigh", "warning"): ("workers", {"worker": "notify-on-create"}),
    ("JfrogWorkerProbeFailing", "warning"): ("workers-probe-failing", {"worker": "cleanup-trigger"}),
    ("JfrogCertificateExpired", "critical"): ("token", {"alias": "expired-client", "issued_to": "JFrog",
                                                        "issued_by": "Some_CA"}),
    ("JfrogCertificateExpiring", "warning"): ("certificates", {"alias": "cert-02"}),
    ("JfrogAccessTokenExpiring", "warning"): ("token", {"subject": f"{SECURITY_SERVICE_ID}/users/ci-bot",
                                                        "subject_kind": "user"}),
    ("JfrogAccessTokensExpiringSoon", "warning"): ("token", {"subject_kind": "user", "expiry": "lt_7d"}),
    ("JfrogOpenMetricsSamplesDropped", "warning"): ("degraded", {"service": "artifactory", "reason": "unparseable"}),
    ("JfrogDistributionFailed", "warning"): ("distribution", {"release_bundle": "payments", "site": "edge-us"}),
    ("JfrogDistributionStuck", "warning"): ("distribution", {}),
    ("JfrogWebhookDeliveriesFailing", "warning"): ("webhooks", {"subscription": "ci-trigger"}),
}
#: alerts no simulated situation holds: the promtool unit tests cover them
NOT_SIMULATED = {
    ("JfrogExporterTokenExpiring", "warning"): "one JWT per simulator; the critical level is simulated",
    ("JfrogFilestoreAlmostFull", "warning"): "no scenario has a filestore between 85 % and 95 % full",
    ("JfrogGarbageCollectionRunningLong", "warning"): "the maintenance scenario's garbage collection runs for "
                                                      "25 minutes, under the threshold",
    ("JfrogWorkerNearLimit", "warning"): "no scenario keeps a worker's last execution above 90 % of a limit",
    ("JfrogAccessDown", "critical"): "no scenario stops Access while Artifactory answers",
    ("JfrogCertificateExpiring", "critical"): "no scenario has a certificate expiring within 7 days",
    ("JfrogLicenseExpiring", "warning"): "the degraded scenario's license of node art2 (20 days) is in the warning "
                                         "range, but that of art1 (5 days) is critical, which keeps it quiet (QUIET)",
    ("JfrogActivityWindowsTruncated", "warning"): "needs max_results items created or downloaded within one "
                                                  "millisecond; the simulated activity is steady",
}
#: (alert, severity, situation): quiet there although the situation has the alert's data; the healthy JPD
#: raises no alert at all (test_healthy_jpd_raises_no_alert)
QUIET: tuple[tuple[str, str, str], ...] = (
    # A rejected token is the exporter's fault: the JPD answers its probes and is not reported down.
    ("JfrogDown", "critical", "rejected"),
    ("JfrogNotReady", "critical", "rejected"),
    ("JfrogAccessDown", "critical", "rejected"),
    # Certificates valid for 90 and 200 days and one expired 30 days ago: an expired one is not "expiring".
    ("JfrogCertificateExpiring", "warning", "token"),
    ("JfrogCertificateExpiring", "critical", "token"),
    # Expired 3 and 20 days ago, the next one expires in 13 to 14 days.
    ("JfrogCertificateExpiring", "critical", "certificates"),
    # A JPD raises one level of an alert: art2's license, in the warning range, waits while art1's is critical.
    ("JfrogLicenseExpiring", "warning", "degraded"),
)


def _jwt(expires: float) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return ".".join([part({"alg": "RS256", "typ": "JWT"}),
                     part({"sub": "jfac@01h/users/monitoring", "exp": int(expires)}), "c2lnbmF0dXJl"])


def _missing(situation: str) -> str | None:
    """Why a situation cannot be simulated here, or None."""
    spec = SITUATIONS[situation]
    if spec.scenario is not None and spec.scenario not in SCENARIOS:
        return f"simulator scenario {spec.scenario!r} does not exist"
    absent = [c for c in spec.collectors if c not in COLLECTORS]
    if absent:
        return f"collector {absent[0]!r} is not registered in exporter.collectors.registry"
    return None


def _config(urls: dict[str, str]) -> str:
    lines = ["targets:"]
    for name, url in urls.items():
        spec = SITUATIONS[name]
        interval = "1s" if name == "stale" else INTERVAL
        lines += [f"  - name: {name}", f"    url: {url}",
                  f"    auth: {{token_env: {'JWT_TOKEN' if name == 'token' else spec.token_env}}}",
                  "    timeout: 2s", "    retries: 0", "    collectors:"]
        for collector in COLLECTORS:
            enabled = collector in spec.collectors or collector in spec.optional
            settings: dict[str, Any] = {"enabled": enabled}
            if enabled:
                settings["interval"] = interval
                settings.update({k: v for c, k, v in spec.settings if c == collector})
            lines.append(f"      {collector}: {json.dumps(settings)}")
    return "\n".join(lines) + "\n"


@dataclass
class Live:
    prom: PrometheusServer
    targets: set[str]

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
        return self.prom.wait_until(check, timeout, what)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    jwt = _jwt(time.time() + TOKEN_LIFETIME)
    with contextlib.ExitStack() as stack:
        sims: dict[str, Process] = {}
        urls: dict[str, str] = {}
        for name, spec in SITUATIONS.items():
            if _missing(name):
                continue
            if spec.scenario is None:
                urls[name] = f"http://127.0.0.1:{stack.enter_context(closed_port())}"
                continue
            if spec.share:
                urls[name] = sims[spec.share].url + spec.path
                continue
            extra = ("--token", jwt) if name == "token" else ()
            sims[name] = stack.enter_context(simulator(tmp, spec.scenario, *spec.simulator_args, *extra))
            urls[name] = sims[name].url
        config = tmp / "exporter.yaml"
        config.write_text(_config(urls))
        exp = stack.enter_context(exporter(tmp, "--config", str(config),
                                           env={"SIM_TOKEN": "simulator-token", "JWT_TOKEN": jwt,
                                                "REVOKED_TOKEN": "revoked"}))
        if "stale" in sims:
            sims["stale"].stop()
        # A second scrape URL of the same job where nothing listens: an exporter that is down.
        scrape = [exp.url + "/metrics", f"http://127.0.0.1:{stack.enter_context(closed_port())}/metrics"]
        prom = stack.enter_context(prometheus_server(tmp, scrape_urls=scrape, rule_files=RULE_FILES,
                                                     interval="1s", job=JOB))
        prom.wait_for_scrapes(2)
        if "filling" in sims:
            prom.wait_until(lambda: prom.query('jfrog_storage_filestore_free_bytes{target="filling"}'), 30,
                            "the filling JPD's first filestore sample")
            switch = httpx.post(sims["filling"].url + "/-/simulator", json={"scenario": "degraded"}, timeout=5)
            switch.raise_for_status()
        yield Live(prom, set(urls))


def _situation_of_metrics(expr: str, reference: dict[str, Any]) -> tuple[str, ...]:
    for pattern, situations in QUERY_SITUATIONS:
        if pattern in expr:
            return situations
    collectors = {collector_of(m, reference) for m, _ in selectors(expr) if m not in ("up", "ALERTS")}
    specific = collectors - {"exporter", "health"}
    assert len(specific) <= 1, f"a query mixing collectors {specific} needs a QUERY_SITUATIONS entry"
    return (COLLECTOR_SITUATION[specific.pop() if specific else ("health" if collectors else "exporter")],)


def _skip_unless_simulated(live: Live, situation: str, expr: str, reference: dict[str, Any]) -> None:
    for metric, _ in selectors(expr):
        if metric in ("up", "ALERTS"):
            continue
        collector = collector_of(metric, reference)
        if collector != "exporter" and collector not in COLLECTORS:
            pytest.skip(f"{metric}: collector {collector!r} is not registered in exporter.collectors.registry")
    reason = _missing(situation)
    if reason:
        pytest.skip(f"situation {situation!r}: {reason}")
    assert situation in live.targets


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return metric_reference()


QUERIES = panel_queries()


@pytest.mark.parametrize(("name", "title", "ref", "expr"), QUERIES, ids=[f"{n}:{t}:{r}" for n, t, r, _ in QUERIES])
def test_dashboard_query_returns_data(live: Live, reference: dict[str, Any], name: str, title: str, ref: str,
                                      expr: str) -> None:
    situations = _situation_of_metrics(expr, reference)
    for situation in situations:
        _skip_unless_simulated(live, situation, expr, reference)
    # Every target selected, as the dashboard opens: the query must parse and run.
    everything = expr.replace("$target", "|".join(sorted(live.targets)))
    for variable, value in GRAFANA_VARIABLES.items():
        everything = everything.replace(variable, value)
    live.prom.query(everything)
    for situation in situations:
        query = expr.replace("$target", f"({situation})")  # target names need no regex escaping
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"a Grafana variable is left in {query}"
        result = live.wait(lambda q=query: live.prom.query(q), f"data for {query} ({situation})")
        if "ALERTS" not in expr:
            assert {r["metric"].get("target", situation) for r in result} == {situation}, result


@pytest.mark.parametrize(("alert", "severity"), alert_keys(), ids=[f"{a}/{s}" for a, s in alert_keys()])
def test_rule_expression_has_data(live: Live, reference: dict[str, Any], alert: str, severity: str) -> None:
    rule = next(r for r in rules() if r.get("alert") == alert and r["labels"]["severity"] == severity)
    live.prom.query(rule["expr"])  # parses and runs on the real data
    if alert == "JfrogExporterDown":
        assert live.wait(lambda: live.prom.query(f'up{{job="{JOB}"}}'), "up of the exporter's job")
        return
    situation = RULE_SITUATIONS.get(alert) or _situation_of_metrics(rule["expr"], reference)[0]
    _skip_unless_simulated(live, situation, rule["expr"], reference)
    # Each series the rule reads exists for the JPD it is meant for (the condition itself may be false there).
    for metric, matchers in selectors(rule["expr"]):
        inner = ", ".join([*(f'{label}{op}"{value}"' for label, op, value in matchers), f'target="{situation}"'])
        query = f"{metric}{{{inner}}}"
        live.wait(lambda q=query: live.prom.query(q), f"data for {query}")


def test_every_alert_is_simulated_or_explained() -> None:
    keys = set(alert_keys())
    assert set(FIRES) | set(NOT_SIMULATED) == keys
    assert not set(FIRES) & set(NOT_SIMULATED)


@pytest.mark.parametrize(("alert", "severity"), sorted(FIRES), ids=[f"{a}/{s}" for a, s in sorted(FIRES)])
def test_alert_is_pending_or_firing_where_meant(live: Live, alert: str, severity: str) -> None:
    situation, labels = FIRES[(alert, severity)]
    if situation is not None:
        reason = _missing(situation)
        if reason:
            pytest.skip(f"situation {situation!r}: {reason}")
    wanted = {"alertname": alert, "severity": severity, **labels}
    if situation is not None:
        wanted["target"] = situation

    def found() -> dict[str, Any] | None:
        return next((a for a in live.prom.alerts()
                     if a["state"] in ("pending", "firing") and wanted.items() <= a["labels"].items()), None)

    active = live.wait(found, f"{alert} ({severity}) for {situation}", timeout=120)
    annotations = active["annotations"]
    assert annotations["runbook_url"].endswith(f"alerts/runbook.md#{alert.lower()}")
    for key in ("summary", "description"):
        text = annotations[key]
        assert "{{" not in text and "<no value>" not in text, text
        if situation is not None:
            assert situation in text, f"{key} does not name the JPD: {text}"
        for label in ("repo", "worker", "service_id", "direction", "collector", "alias", "issued_to", "issued_by",
                      "subject", "subject_kind", "service", "reason", "subscription"):
            if label in labels:
                assert labels[label] in annotations["description"], f"the description does not name {label}: {text}"


@pytest.mark.parametrize(("alert", "severity", "situation"), QUIET, ids=[f"{a}/{s}:{t}" for a, s, t in QUIET])
def test_alert_stays_quiet_where_meant(live: Live, alert: str, severity: str, situation: str) -> None:
    reason = _missing(situation)
    if reason:
        pytest.skip(f"situation {situation!r}: {reason}")
    rule = next(r for r in rules() if r.get("alert") == alert and r["labels"]["severity"] == severity)
    for metric, matchers in selectors(rule["expr"]):
        inner = ", ".join([*(f'{label}{op}"{value}"' for label, op, value in matchers), f'target="{situation}"'])
        live.wait(lambda q=f"{metric}{{{inner}}}": live.prom.query(q), f"data for {metric} ({situation})")

    def last_evaluation() -> str:
        return str(next(r for r in live.prom.rules()
                        if r["name"] == alert and r["labels"]["severity"] == severity)["lastEvaluation"])

    # Evaluated again now that the data is there.
    before = last_evaluation()
    live.wait(lambda: last_evaluation() != before, f"an evaluation of {alert} ({severity})")
    active = [a["labels"] for a in live.prom.alerts() if a["labels"]["alertname"] == alert
              and a["labels"]["severity"] == severity and a["labels"].get("target") == situation]
    assert active == []


def test_healthy_jpd_raises_no_alert(live: Live) -> None:
    if _missing("healthy"):
        pytest.skip(_missing("healthy") or "")
    # Every rule has been evaluated on data of every collector of the healthy JPD.
    live.wait(lambda: all(r.get("lastEvaluation", "").startswith("2") for r in live.prom.rules())
              and live.prom.query('jfrog_exporter_collector_success{target="healthy"}'), "rule evaluations")
    time.sleep(3)
    runs = live.prom.query('jfrog_exporter_collector_success{target="healthy"}')
    collectors = {r["metric"]["collector"] for r in runs}
    spec = SITUATIONS["healthy"]
    assert collectors == {c for c in (*spec.collectors, *spec.optional) if c in COLLECTORS}
    active = [(a["labels"]["alertname"], a["labels"]) for a in live.prom.alerts()
              if a["labels"].get("target") == "healthy"]
    assert active == []
