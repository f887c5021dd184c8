"""The Helm chart (helm/jfrog-exporter), checked with a real helm v3.

Every rendered manifest is validated offline against the Kubernetes JSON schemas
shipped by kubernetes-validate; the prometheus-operator resources, which those
schemas do not cover, are checked structurally here.

The chart carries copies of the repository's alerts/ and dashboards/ in
files/ (helm/sync_files.py writes them; a test fails while they differ from
their sources). The tests render the real chart, and a copy of it whose files/
hold sample alerts and dashboards, so that the content path is exercised
whatever the repository holds.

The chart refuses to render without targets and image.repository; REQUIRED
gives both, and the values of a case are laid over it.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions, latest_version

from tests.packaging.helm_tool import HelmUnavailable, helm_binary

REPO = Path(__file__).resolve().parents[2]
CHART_SRC = REPO / "helm" / "jfrog-exporter"
CI_DIR = CHART_SRC / "ci"
RELEASE = "jfe"
NAMESPACE = "monitoring"
FULLNAME = f"{RELEASE}-jfrog-exporter"
SECRETS_DIR = "/etc/jfrog-exporter/secrets"
UID = 10001

# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest schemas shipped.
K8S_VERSIONS = sorted({"1.25.0", latest_version()})

CI_FILES = sorted(CI_DIR.glob("*-values.yaml"))
VALUES_CASES = [pytest.param(p, id=p.stem) for p in CI_FILES]
#: the values without which the chart refuses to render, under every case's own values
REQUIRED = Path(__file__).with_name("helm-required-values.yaml")

NATIVE_AUTH_KEYS = {"token_file", "token_env", "username", "password_file", "password_env"}
CHART_ONLY_AUTH_KEYS = {"token", "token_secret_key", "password", "password_secret_key"}
COLLECTORS = {"health", "storage", "replication", "federation", "maintenance", "workers", "security",
              "activity", "openmetrics", "distribution", "webhooks"}


# --------------------------------------------------------------------------- helpers


@functools.cache
def _helm() -> Path | str:
    """The helm binary, or why there is none (one line)."""
    try:
        return helm_binary()
    except HelmUnavailable as exc:
        return str(exc)


def helm_or_skip() -> Path:
    helm = _helm()
    if isinstance(helm, str):
        pytest.skip(f"no helm: {helm}")
    return helm


def run_helm(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(helm_or_skip()), *map(str, args)], capture_output=True, text=True,
                            check=False, timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def template_args(chart: Path, values: Path | None = None, extra: list[str] | None = None,
                  required: bool = True) -> list[str | Path]:
    args: list[str | Path] = ["template", RELEASE, chart, "--namespace", NAMESPACE]
    if required:
        args += ["--values", REQUIRED]
    if values is not None:
        args += ["--values", values]
    return args + (extra or [])


def render(chart: Path, values: Path | None = None, extra: list[str] | None = None) -> list[dict[str, Any]]:
    out = run_helm(*template_args(chart, values, extra)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str = FULLNAME) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {[d['metadata']['name'] for d in by_kind(docs, kind)]}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def rendered_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(docs, "ConfigMap")["data"]["config.yaml"])


def make_layout(root: Path, dashboards: dict[str, str], alerts: dict[str, str]) -> Path:
    """A copy of the chart whose files/dashboards and files/alerts hold the given files only."""
    chart = root / "jfrog-exporter"
    shutil.copytree(CHART_SRC, chart)
    for name, content in (("dashboards", dashboards), ("alerts", alerts)):
        folder = chart / "files" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for file_name, text in content.items():
            (folder / file_name).write_text(text, encoding="utf-8")
    return chart


def write_values(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# Sample content for the copy that always carries dashboards and alerts.
SAMPLE_DASHBOARDS = {
    "jfrog-overview.json": json.dumps(
        {"title": "JFrog – overview ✓", "uid": "jfrog-overview", "panels": [
            {"type": "stat", "title": "Up \"now\"", "targets": [{"expr": "jfrog_exporter_collector_success"}]}
        ]},
        indent=2, ensure_ascii=False) + "\n",
    "jfrog_storage.v2.json": '{"title": "Storage", "uid": "jfrog-storage", "panels": [],\n\t"tags": ["<jfrog>&"]}',
}
SAMPLE_ALERTS = {
    "exporter.yaml": """\
# Rules about the exporter itself.
groups:
  - name: jfrog-exporter
    rules:
      - alert: JFrogExporterCollectorFailing
        expr: |
          jfrog_exporter_collector_success == 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: 'Collector {{ $labels.collector }} fails for {{ $labels.target }}'
  - name: jfrog-exporter-records
    interval: 1m
    rules:
      - record: jfrog:collector_success:ratio
        expr: avg by (target) (jfrog_exporter_collector_success)
""",
    "storage.yaml": """\
groups:
  - name: jfrog-storage
    rules:
      - alert: JFrogStorageAlmostFull
        expr: jfrog_storage_used_ratio > 0.9
        for: 30m
        labels:
          severity: critical
        annotations:
          description: "{{ $value | humanizePercentage }} used on {{ $labels.target }}"
""",
    "runbook.md": "Not a rule file: shipped with the chart, never rendered.\n",
}


# --------------------------------------------------------------------------- structural checks of the CRDs

PROM_DURATION = re.compile(r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$")
RELABEL_ACTIONS = {"replace", "keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap", "labeldrop",
                   "labelkeep", "lowercase", "uppercase", "Replace", "Keep", "Drop", "HashMod", "LabelMap",
                   "LabelDrop", "LabelKeep"}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9]+)(ms|[smhdwy])", duration))


def _check_metadata(doc: dict[str, Any]) -> None:
    meta = doc["metadata"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", meta["name"]), meta["name"]
    assert isinstance(meta.get("namespace"), str)
    for field in ("labels", "annotations"):
        assert all(isinstance(v, str) for v in (meta.get(field) or {}).values()), f"{field} must be strings"


def _check_relabelings(items: list[Any]) -> None:
    allowed = {"sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action"}
    for item in items:
        assert set(item) <= allowed, set(item) - allowed
        assert item.get("action", "replace") in RELABEL_ACTIONS


def check_service_monitor(doc: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    _check_metadata(doc)
    spec = doc["spec"]
    assert set(spec) <= {"jobLabel", "targetLabels", "podTargetLabels", "selector", "namespaceSelector",
                         "endpoints", "sampleLimit", "attachMetadata"}, set(spec)
    service = one(docs, "Service")
    labels = service["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items(), "the selector must match the Service"
    assert service["metadata"]["namespace"] in spec["namespaceSelector"]["matchNames"]
    assert spec["jobLabel"] in labels
    port_names = {p["name"] for p in service["spec"]["ports"]}
    endpoint_keys = {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "tlsConfig",
                     "bearerTokenSecret", "authorization", "basicAuth", "oauth2", "honorLabels",
                     "honorTimestamps", "relabelings", "metricRelabelings", "followRedirects", "enableHttp2",
                     "filterRunning", "proxyUrl"}
    assert spec["endpoints"], "a ServiceMonitor needs an endpoint"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= endpoint_keys, set(endpoint) - endpoint_keys
        assert endpoint["port"] in port_names
        assert endpoint["path"].startswith("/")
        assert endpoint["scheme"] in {"http", "https"}
        assert isinstance(endpoint.get("honorLabels", False), bool)
        for key in ("interval", "scrapeTimeout"):
            assert PROM_DURATION.fullmatch(endpoint[key]), endpoint[key]
        assert _seconds(endpoint["scrapeTimeout"]) <= _seconds(endpoint["interval"])
        for key in ("relabelings", "metricRelabelings"):
            _check_relabelings(endpoint.get(key, []))
        for key in ("username", "password"):
            if "basicAuth" in endpoint:
                assert set(endpoint["basicAuth"][key]) <= {"name", "key", "optional"}


def check_rule_groups(groups: Any) -> None:
    """The prometheus-operator form of a rule file's groups (also a check of alerts/*.yaml)."""
    assert isinstance(groups, list) and groups
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names)), f"rule group names must be unique: {names}"
    for group in groups:
        assert set(group) <= {"name", "interval", "rules", "limit", "labels", "query_offset",
                              "partial_response_strategy"}, set(group)
        assert isinstance(group["name"], str) and group["name"]
        if "interval" in group:
            assert PROM_DURATION.fullmatch(group["interval"])
        assert isinstance(group.get("rules", []), list)
        for rule in group.get("rules", []):
            where = f"group {group['name']}: {rule.get('alert') or rule.get('record')}"
            assert set(rule) <= {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}, where
            assert ("alert" in rule) != ("record" in rule), f"{where}: give alert or record"
            assert isinstance(rule["expr"], (str, int)) and str(rule["expr"]).strip(), where
            for key in ("for", "keep_firing_for"):
                if key in rule:
                    assert PROM_DURATION.fullmatch(rule[key]), f"{where}: {key}"
            if "record" in rule:
                assert "for" not in rule and "annotations" not in rule, where
            for key in ("labels", "annotations"):
                assert all(isinstance(v, str) for v in (rule.get(key) or {}).values()), f"{where}: {key}"


def check_prometheus_rule(doc: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    _check_metadata(doc)
    assert set(doc["spec"]) == {"groups"}
    check_rule_groups(doc["spec"]["groups"])


CRD_CHECKS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): check_service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): check_prometheus_rule,
}


def validate_all(docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        crd_check = CRD_CHECKS.get((doc["apiVersion"], doc["kind"]))
        if crd_check:
            crd_check(doc, docs)
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(map(str, exc.path))
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {exc.message} at {path}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return helm_or_skip()
    except RuntimeError as exc:  # JFROG_EXPORTER_HELM names no helm: a mistake to report, not to skip
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def repo_chart(helm: Path) -> Path:
    """The chart as the repository has it."""
    return CHART_SRC


@pytest.fixture(scope="session")
def sample_chart(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart beside sample dashboards and alerts."""
    return make_layout(tmp_path_factory.mktemp("sample-layout"), SAMPLE_DASHBOARDS, SAMPLE_ALERTS)


def repo_dashboards() -> dict[str, str]:
    folder = REPO / "dashboards"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def repo_alert_files() -> list[Path]:
    folder = REPO / "alerts"
    return sorted(folder.glob("*.yaml"), key=lambda p: p.name) if folder.is_dir() else []


ALL_VALUES = CI_DIR / "all-values.yaml"


# --------------------------------------------------------------------------- the chart's files


def test_helm_is_version_3(helm: Path) -> None:
    version = run_helm("version", "--short").stdout.strip()
    assert version.startswith("v3."), version


def test_kubernetes_schemas_cover_the_supported_range() -> None:
    assert set(K8S_VERSIONS) <= set(all_versions())
    kube_version = yaml.safe_load((CHART_SRC / "Chart.yaml").read_text(encoding="utf-8"))["kubeVersion"]
    assert kube_version == ">=1.25.0-0", "validate against the chart's oldest Kubernetes (K8S_VERSIONS)"


def test_ci_values_files_follow_chart_testing_convention() -> None:
    names = {p.name for p in CI_FILES}
    assert {"single-token-values.yaml", "multi-existing-secret-values.yaml", "all-values.yaml"} <= names


def test_no_symlink_under_helm() -> None:
    # Helm warns about every link it follows, and a packaged chart must not depend on the checkout.
    links = [str(p.relative_to(REPO)) for p in (REPO / "helm").rglob("*") if p.is_symlink()]
    assert not links, f"symbolic links in the chart: {links}"


def _sync_files() -> Any:
    spec = importlib.util.spec_from_file_location("jfrog_helm_sync_files", REPO / "helm" / "sync_files.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_files_are_copies_of_the_sources() -> None:
    sync = _sync_files()
    assert sync.drift() == [], "the chart's files/ differ from alerts/ and dashboards/: run python helm/sync_files.py"
    names = set(sync.expected())
    assert "alerts/runbook.md" in names
    assert {f"alerts/{p.name}" for p in repo_alert_files()} <= names
    assert {f"dashboards/{n}" for n in repo_dashboards()} <= names


def test_sync_reports_and_repairs_drift(tmp_path: Path) -> None:
    sync = _sync_files()
    files = tmp_path / "files"
    shutil.copytree(CHART_SRC / "files", files)
    some_rule = next(iter(sorted((files / "alerts").glob("*.yaml"))))
    some_rule.write_text("groups: []\n", encoding="utf-8")
    (files / "dashboards" / "gone.json").write_text("{}", encoding="utf-8")
    (files / "alerts" / "runbook.md").unlink()
    assert sync.drift(files) == [
        "files/alerts/runbook.md: missing",
        f"files/alerts/{some_rule.name}: differs from its source",
        "files/dashboards/gone.json: no longer in the sources",
    ]
    sync.sync(files)
    assert sync.drift(files) == []


def test_values_schema_is_a_valid_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((CHART_SRC / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    values = yaml.safe_load((CHART_SRC / "values.yaml").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator(schema).validate(values)
    target = schema["properties"]["targets"]["items"]
    assert set(target["properties"]["collectors"]["properties"]) == COLLECTORS
    assert set(target["properties"]["auth"]["properties"]) == NATIVE_AUTH_KEYS | CHART_ONLY_AUTH_KEYS


def test_values_schema_follows_the_exporter_configuration() -> None:
    """The schema rejects unknown target keys, so it must know every key the exporter accepts."""
    try:
        from exporter import config as exporter_config
    except Exception as exc:  # the exporter is optional for the chart tests
        pytest.skip(f"exporter package not importable: {exc}")
    schema = json.loads((CHART_SRC / "values.schema.json").read_text(encoding="utf-8"))
    target = schema["properties"]["targets"]["items"]["properties"]
    assert set(target) == set(exporter_config.TargetConfig.model_fields)
    assert set(target["auth"]["properties"]) - CHART_ONLY_AUTH_KEYS == set(exporter_config.AuthConfig.model_fields)
    assert set(target["tls"]["properties"]) == set(exporter_config.TlsConfig.model_fields)
    assert set(target["repos"]["properties"]) == set(exporter_config.RepoFilter.model_fields)
    try:
        from exporter import webconfig
    except Exception as exc:
        pytest.skip(f"exporter.webconfig not importable: {exc}")
    web = schema["properties"]["exporter"]["properties"]["webConfig"]["properties"]
    assert set(web) == set(webconfig.WebConfig.model_fields)
    assert set(web["tls_server_config"]["properties"]) == set(webconfig.TlsServerConfig.model_fields)
    from exporter.collectors import registry

    assert set(registry.COLLECTORS) <= COLLECTORS


# --------------------------------------------------------------------------- lint and render


@pytest.mark.parametrize("values", VALUES_CASES)
def test_lint_strict(repo_chart: Path, values: Path | None) -> None:
    args: list[str | Path] = ["lint", "--strict", repo_chart]
    if values is not None:
        args += ["--values", values]
    run_helm(*args)


@pytest.mark.parametrize("values", VALUES_CASES)
def test_rendered_manifests_are_valid_kubernetes_objects(repo_chart: Path, values: Path | None) -> None:
    docs = render(repo_chart, values)
    assert docs
    validate_all(docs)


def test_required_values_alone_render_only_the_core_resources(repo_chart: Path) -> None:
    docs = render(repo_chart)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]
    assert rendered_config(docs) == {"targets": [{"url": "https://acme.jfrog.io"}]}
    assert container(docs)["image"] == "registry.example.com/jfrog-exporter:0.1.0"


def _template_error(chart: Path, *set_args: str) -> str:
    """What `helm template` with the chart's defaults and ``--set`` ``set_args`` fails with."""
    extra = [arg for pair in set_args for arg in ("--set", pair)]
    result = run_helm(*template_args(chart, extra=extra, required=False), check=False)
    assert result.returncode != 0, "the chart rendered although a required value is missing"
    return result.stderr


def test_default_values_fail_naming_targets_and_image(repo_chart: Path) -> None:
    error = _template_error(repo_chart)
    assert "targets: set at least one JFrog Platform to watch, e.g. --set targets[0].url=https://" in error
    assert "image.repository: set it to where you pushed the image" in error
    assert "docker push REGISTRY/jfrog-exporter:0.1.0" in error
    lint = run_helm("lint", "--strict", repo_chart, check=False)
    assert lint.returncode != 0 and "targets: set at least one" in lint.stdout + lint.stderr


def test_no_targets_fails_with_what_to_set(repo_chart: Path) -> None:
    error = _template_error(repo_chart, "image.repository=registry.example.com/jfrog-exporter")
    assert "targets: set at least one JFrog Platform to watch" in error and "see the chart's values.yaml" in error
    assert "image.repository" not in error


def test_explicitly_empty_targets_are_refused_by_the_schema(repo_chart: Path, tmp_path: Path) -> None:
    values = write_values(tmp_path, "targets: []\n")
    result = run_helm(*template_args(repo_chart, values), check=False)
    assert result.returncode != 0
    assert "at '/targets': minItems: got 0, want 1" in result.stderr


def test_placeholder_image_fails_with_how_to_build_it(repo_chart: Path) -> None:
    error = _template_error(repo_chart, "targets[0].url=https://acme.jfrog.io")
    assert "image.repository: set it to where you pushed the image" in error
    assert "docker build -t REGISTRY/jfrog-exporter:0.1.0 . && docker push REGISTRY/jfrog-exporter:0.1.0" in error
    assert "targets:" not in error
    values = yaml.safe_load((CHART_SRC / "values.yaml").read_text(encoding="utf-8"))
    assert values["image"]["repository"] == "", "no default image: the chart's image is published nowhere"


def test_pod_is_locked_down(repo_chart: Path) -> None:
    docs = render(repo_chart, CI_DIR / "single-token-values.yaml")
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    sc = container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == UID
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    resources = container(docs)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    # Secret files are readable by the pod's group only.
    secrets = next(v for v in pod["volumes"] if v["name"] == "secrets")
    assert secrets["projected"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == UID


def test_probes_ports_and_arguments(repo_chart: Path) -> None:
    docs = render(repo_chart, CI_DIR / "single-token-values.yaml")
    c = container(docs)
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http", "scheme": "HTTP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http", "scheme": "HTTP"}
    assert c["ports"] == [{"name": "http", "containerPort": 9743, "protocol": "TCP"}]
    assert c["args"] == ["serve", "--config", "/etc/jfrog-exporter/config/config.yaml", "--listen", "0.0.0.0:9743",
                         "--log-level", "info", "--log-format", "json"]
    assert {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"} in c["env"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/jfrog-exporter/config"
    assert mounts["secrets"]["mountPath"] == SECRETS_DIR
    assert mounts["tmp"]["mountPath"] == "/tmp"
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= one(docs, "Deployment")["spec"]["template"]["metadata"][
        "labels"].items()


def test_ipv6_listen_address_is_bracketed(repo_chart: Path) -> None:
    c = container(render(repo_chart, extra=["--set", "exporter.listenHost=::"]))
    assert c["args"][c["args"].index("--listen") + 1] == "[::]:9743"


def _pod_annotations(docs: list[dict[str, Any]]) -> dict[str, str]:
    return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_config_or_secret_change_restarts_the_pod(repo_chart: Path) -> None:
    base = ["--set", "targets[0].url=https://a.example.com", "--set", "targets[0].auth.token=one"]
    first = _pod_annotations(render(repo_chart, extra=base))
    same = _pod_annotations(render(repo_chart, extra=base))
    other_url = _pod_annotations(render(repo_chart, extra=[*base, "--set", "targets[0].url=https://b.example.com"]))
    other_token = _pod_annotations(render(repo_chart, extra=[*base, "--set", "targets[0].auth.token=two"]))
    assert first == same
    assert other_url["checksum/config"] != first["checksum/config"]
    assert other_token["checksum/secret"] != first["checksum/secret"]
    assert other_token["checksum/config"] == first["checksum/config"]


# --------------------------------------------------------------------------- configuration and credentials


def test_single_target_with_token(repo_chart: Path) -> None:
    docs = render(repo_chart, CI_DIR / "single-token-values.yaml")
    assert rendered_config(docs) == {"targets": [
        {"url": "https://acme.jfrog.io", "auth": {"token_file": f"{SECRETS_DIR}/target-0-token"}},
    ]}
    secret = one(docs, "Secret")
    assert base64.b64decode(secret["data"]["target-0-token"]).decode() == "ci-placeholder-token"
    volume = next(v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets")
    assert volume["projected"]["sources"] == [{"secret": {"name": FULLNAME}}]


def test_multi_target_with_existing_secret(repo_chart: Path) -> None:
    docs = render(repo_chart, CI_DIR / "multi-existing-secret-values.yaml")
    assert not by_kind(docs, "Secret"), "an existing Secret needs no Secret from the chart"
    config = rendered_config(docs)
    assert [t["name"] for t in config["targets"]] == ["prod", "staging"]
    prod, staging = config["targets"]
    # The exporter's format, key for key; only the secret reference is translated.
    assert prod == {
        "name": "prod",
        "url": "https://acme.jfrog.io",
        "auth": {"token_file": f"{SECRETS_DIR}/prod-token"},
        "timeout": "10s",
        "max_concurrency": 8,
        "repos": {"include": ["^libs-"], "exclude": []},
        "collectors": {"storage": {"interval": "5m"}, "replication": {"enabled": False}},
    }
    assert staging["auth"] == {"username": "monitor", "password_file": f"{SECRETS_DIR}/staging-password"}
    assert staging["tls"] == {"insecure_skip_verify": True}
    # The documented key order survives rendering.
    text = one(docs, "ConfigMap")["data"]["config.yaml"]
    assert text.index("name: prod") < text.index("url: https://acme.jfrog.io") < text.index("auth:")
    volume = next(v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets")
    assert volume["projected"]["sources"] == [{"secret": {"name": "jfrog-exporter-credentials"}}]


@pytest.mark.parametrize("values", VALUES_CASES)
def test_configmap_holds_no_secret_and_only_exporter_auth_keys(repo_chart: Path, values: Path | None) -> None:
    docs = render(repo_chart, values)
    text = one(docs, "ConfigMap")["data"]["config.yaml"]
    assert "placeholder" not in text
    for target in yaml.safe_load(text)["targets"]:
        assert set(target.get("auth", {})) <= NATIVE_AUTH_KEYS
        for key in ("token_file", "password_file"):
            if key in target.get("auth", {}):
                assert target["auth"][key].startswith(f"{SECRETS_DIR}/")


@pytest.mark.parametrize("values", CI_FILES, ids=[p.stem for p in CI_FILES])
def test_rendered_configuration_is_accepted_by_the_exporter(repo_chart: Path, values: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from exporter import config as exporter_config
        from exporter import webconfig
        from exporter.collectors import registry
    except Exception as exc:  # the exporter is optional for the chart tests
        pytest.skip(f"exporter package not importable: {exc}")

    def here(path: str) -> str:
        """The pod's file, made under tmp_path: the exporter reads secret files at validation."""
        local = tmp_path / path.lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text("placeholder\n", encoding="utf-8")
        return str(local)

    docs = render(repo_chart, values)
    config = rendered_config(docs)
    for target in config["targets"]:
        auth = target.get("auth", {})
        for key in ("token_file", "password_file"):
            if key in auth:
                auth[key] = here(auth[key])
        for key in ("token_env", "password_env"):
            if key in auth:
                monkeypatch.setenv(auth[key], "placeholder")
        if "ca_file" in target.get("tls", {}):
            target["tls"]["ca_file"] = here(target["tls"]["ca_file"])
        # Only collectors the exporter registers so far; the chart knows the full documented set.
        target["collectors"] = {k: v for k, v in target.get("collectors", {}).items() if k in registry.COLLECTORS}
    parsed = exporter_config.FileConfig.model_validate(config)
    assert len(parsed.targets) == len(config["targets"])
    for secret in by_kind(docs, "Secret"):
        if "web-config.yml" in secret["data"]:
            webconfig.WebConfig.model_validate(yaml.safe_load(base64.b64decode(secret["data"]["web-config.yml"])))


def test_all_optional_parts(repo_chart: Path) -> None:
    docs = render(repo_chart, ALL_VALUES)
    kinds = {d["kind"] for d in docs}
    assert {"ServiceMonitor", "NetworkPolicy", "Secret", "ServiceAccount", "Service", "ConfigMap",
            "Deployment"} <= kinds
    secret = one(docs, "Secret")
    assert set(secret["data"]) == {"dr-token", "target-0-token", "target-1-password"}
    web = yaml.safe_load(base64.b64decode(one(docs, "Secret", f"{FULLNAME}-web-config")["data"]["web-config.yml"]))
    assert "prometheus" in web["basic_auth_users"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(docs)
    assert c["args"][-2:] == ["--web.config.file", "/etc/jfrog-exporter/web/web-config.yml"]
    assert c["image"] == "registry.example.com/jfrog-exporter:0.1.0"
    assert {e["name"] for e in c["env"]} >= {"LAB_TOKEN", "HTTPS_PROXY"}
    assert c["envFrom"][0]["configMapRef"]["name"] == "jfrog-exporter-proxy"
    assert any(m["name"] == "corp-ca" for m in c["volumeMounts"])
    assert any(v["name"] == "corp-ca" for v in pod["volumes"])
    assert c["startupProbe"]["tcpSocket"]["port"] == "http"
    assert "httpGet" not in c["livenessProbe"] and "httpGet" not in c["readinessProbe"]
    sources = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    assert sources == [{"secret": {"name": FULLNAME}}, {"secret": {"name": "jfrog-exporter-extra-credentials"}}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["priorityClassName"] == "monitoring"
    assert pod["serviceAccountName"] == "jfrog-exporter-ci"
    assert deployment["metadata"]["annotations"] == {"example.com/owner": "platform-team"}
    assert deployment["spec"]["template"]["metadata"]["annotations"]["example.com/scrape-note"]
    assert deployment["spec"]["template"]["metadata"]["labels"]["tier"] == "monitoring"
    assert all(d["metadata"]["labels"]["team"] == "platform" for d in docs)

    monitor = one(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http-metrics" and endpoint["path"] == "/metrics"

    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert {"port": 53, "protocol": "UDP"} in policy["spec"]["egress"][0]["ports"]


# --------------------------------------------------------------------------- alerts and dashboards


def _dashboard_configmaps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in by_kind(docs, "ConfigMap") if "grafana_dashboard" in d["metadata"]["labels"]]


def _dashboard_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = {}
    for cm in _dashboard_configmaps(docs):
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert not set(cm["data"]) & set(data), "a dashboard file is rendered twice"
        data.update(cm["data"])
    return data


def test_prometheus_rule_holds_exactly_the_repository_alerts(repo_chart: Path) -> None:
    docs = render(repo_chart, ALL_VALUES)
    files = repo_alert_files()
    expected = [g for f in files for g in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("groups") or []]
    rules = by_kind(docs, "PrometheusRule")
    if not expected:
        assert rules == [], "no alert rules in alerts/*.yaml: no PrometheusRule may be rendered"
        return
    base = yaml.safe_load(ALL_VALUES.read_text(encoding="utf-8"))["prometheusRule"]["runbookBaseUrl"]
    for group in expected:
        for rule in group["rules"]:
            if "runbook_url" in rule.get("annotations", {}):
                section = rule["annotations"]["runbook_url"].partition("#")[2]
                rule["annotations"]["runbook_url"] = f"{base}#{section}"
    assert len(rules) == 1
    assert rules[0]["spec"]["groups"] == expected


def test_runbook_base_url_leads_every_alert_to_its_section(repo_chart: Path) -> None:
    base = "https://wiki.example.net/ops/jfrog-runbook.md"
    docs = render(repo_chart, extra=["--set", "prometheusRule.enabled=true",
                                     "--set", f"prometheusRule.runbookBaseUrl={base}"])
    alerts = [r for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts, "the chart carries no alert"
    for rule in alerts:
        assert rule["annotations"]["runbook_url"] == f"{base}#{rule['alert'].lower()}", rule["alert"]
    headings = set(re.findall(r"^### (\w+)$", (CHART_SRC / "files" / "alerts" / "runbook.md").read_text(
        encoding="utf-8"), re.MULTILINE))
    assert {r["alert"] for r in alerts} <= headings, "the chart's runbook lacks a section an alert links to"


def test_prometheus_rule_needs_a_runbook_base_url(repo_chart: Path) -> None:
    result = run_helm(*template_args(repo_chart, extra=["--set", "prometheusRule.enabled=true"]), check=False)
    assert result.returncode != 0
    assert "prometheusRule.runbookBaseUrl: set it to where your operators read the runbook" in result.stderr


def test_dashboard_configmaps_hold_exactly_the_repository_dashboards(repo_chart: Path) -> None:
    docs = render(repo_chart, ALL_VALUES)
    expected = repo_dashboards()
    if not expected:
        assert _dashboard_configmaps(docs) == [], "no dashboards/*.json: no dashboard ConfigMap may be rendered"
        return
    assert _dashboard_data(docs) == expected
    for text in expected.values():
        json.loads(text)


def test_repository_alert_files_are_valid_rule_files() -> None:
    files = repo_alert_files()
    if not files:
        pytest.skip("alerts/ holds no *.yaml rule file yet")
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(doc, dict) and "groups" in doc, f"{path.name}: a rule file needs a top-level groups: list"
        check_rule_groups(doc["groups"])


def test_sample_alerts_and_dashboards_render_byte_for_byte(sample_chart: Path) -> None:
    docs = render(sample_chart, ALL_VALUES)
    validate_all(docs)
    expected_groups = [g for name in sorted(n for n in SAMPLE_ALERTS if n.endswith(".yaml") and "/" not in n)
                       for g in yaml.safe_load(SAMPLE_ALERTS[name])["groups"]]
    rule = one(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == expected_groups
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # Prometheus' own templates in annotations reach the cluster untouched.
    annotations = rule["spec"]["groups"][0]["rules"][0]["annotations"]
    assert annotations["summary"] == "Collector {{ $labels.collector }} fails for {{ $labels.target }}"
    assert _dashboard_data(docs) == SAMPLE_DASHBOARDS
    names = {cm["metadata"]["name"] for cm in _dashboard_configmaps(docs)}
    assert names == {f"{FULLNAME}-dashboard-jfrog-overview", f"{FULLNAME}-dashboard-jfrog-storage-v2"}
    for cm in _dashboard_configmaps(docs):
        assert cm["metadata"]["annotations"] == {"grafana_folder": "JFrog"}


def test_dashboard_label_is_configurable(sample_chart: Path) -> None:
    docs = render(sample_chart, extra=["--set", "grafanaDashboards.enabled=true",
                                       "--set", "grafanaDashboards.label=jfrog_dashboards",
                                       "--set", "grafanaDashboards.labelValue=yes",
                                       "--set", "grafanaDashboards.namespace=grafana"])
    cms = [d for d in by_kind(docs, "ConfigMap") if "jfrog_dashboards" in d["metadata"]["labels"]]
    assert len(cms) == len(SAMPLE_DASHBOARDS)
    assert {cm["metadata"]["labels"]["jfrog_dashboards"] for cm in cms} == {"yes"}
    assert {cm["metadata"]["namespace"] for cm in cms} == {"grafana"}


def test_optional_resources_are_off_by_default(sample_chart: Path) -> None:
    docs = render(sample_chart)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "Service", "ServiceAccount"]


def test_packaged_chart_carries_its_files(sample_chart: Path, tmp_path: Path) -> None:
    run_helm("package", sample_chart, "--destination", tmp_path)
    (package,) = tmp_path.glob("jfrog-exporter-*.tgz")
    with tarfile.open(package) as tar:
        names = set(tar.getnames())
        for name, text in SAMPLE_DASHBOARDS.items():
            member = tar.extractfile(f"jfrog-exporter/files/dashboards/{name}")
            assert member is not None and member.read().decode("utf-8") == text
        assert "jfrog-exporter/files/alerts/storage.yaml" in names
        alerts = {n.removeprefix("jfrog-exporter/files/alerts/") for n in names if "/files/alerts/" in n}
        assert alerts == {"exporter.yaml", "storage.yaml", "runbook.md"}, "the rule files and their runbook"
        assert not any(n.startswith("jfrog-exporter/ci/") for n in names)
    from_dir = run_helm(*template_args(sample_chart, ALL_VALUES)).stdout
    from_package = run_helm(*template_args(package, ALL_VALUES)).stdout
    assert from_package == from_dir


@pytest.mark.parametrize(
    ("file_name", "content", "message"),
    [
        ("bad.yaml", "rules: []\n", "a rule file needs a top-level groups: list"),
        ("twice.yaml", "groups:\n  - name: jfrog-exporter\n    rules: []\n",
         'rule group "jfrog-exporter" is defined twice'),
        ("broken.yaml", "groups: [\n", "not valid YAML"),
    ],
)
def test_bad_alert_files_fail_clearly(tmp_path: Path, file_name: str, content: str, message: str) -> None:
    chart = make_layout(tmp_path, {}, {**SAMPLE_ALERTS, file_name: content})
    result = run_helm(*template_args(chart, extra=["--set", "prometheusRule.enabled=true",
                                                   "--set", "prometheusRule.runbookBaseUrl=https://w.example/rb"]),
                      check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_dashboard_file_name_must_be_a_configmap_key(tmp_path: Path) -> None:
    chart = make_layout(tmp_path, {"JFrog overview.json": "{}"}, {})
    result = run_helm(*template_args(chart, extra=["--set", "grafanaDashboards.enabled=true"]), check=False)
    assert result.returncode != 0
    assert "JFrog overview.json" in result.stderr and "letters, digits" in result.stderr


# --------------------------------------------------------------------------- values that must be refused

SCHEMA_ERRORS = [
    ("exporter:\n  logLevel: verbose\n", "at '/exporter/logLevel': value must be one of"),
    ("exporter:\n  logFormat: xml\n", "at '/exporter/logFormat'"),
    ("target: []\n", "additional properties 'target' not allowed"),
    ("targets:\n  - url: acme.jfrog.io\n", "at '/targets/0/url'"),
    ("targets:\n  - name: prod\n", "missing property 'url'"),
    ("targets:\n  - url: https://a.io\n    colectors: {}\n", "additional properties 'colectors' not allowed"),
    ("targets:\n  - url: https://a.io\n    collectors:\n      storag: {enabled: true}\n",
     "additional properties 'storag' not allowed"),
    ("targets:\n  - url: https://a.io\n    collectors:\n      storage: {interval: 5 minutes}\n",
     "at '/targets/0/collectors/storage/interval'"),
    ("targets:\n  - url: https://a.io\n    collectors:\n      storage: {enabled: 'no'}\n",
     "at '/targets/0/collectors/storage/enabled'"),
    ("targets:\n  - url: https://a.io\n    timeout: 0\n", "at '/targets/0/timeout'"),
    ("targets:\n  - url: https://a.io\n    max_concurrency: 0\n", "at '/targets/0/max_concurrency'"),
    ("targets:\n  - url: https://a.io\n    name: 'bad name'\n", "at '/targets/0/name'"),
    ("targets:\n  - url: https://a.io\n    auth: {tokn: x}\n", "additional properties 'tokn' not allowed"),
    ("targets:\n  - url: https://a.io\n    auth: {token: ''}\n", "at '/targets/0/auth/token'"),
    ("targets:\n  - url: https://a.io\n    tls: {insecure_skip_verify: 'yes'}\n",
     "at '/targets/0/tls/insecure_skip_verify'"),
    ("image:\n  pullPolicy: Sometimes\n", "at '/image/pullPolicy'"),
    ("serviceMonitor:\n  enabled: 'true'\n", "at '/serviceMonitor/enabled'"),
    ("serviceMonitor:\n  interval: 1 minute\n", "at '/serviceMonitor/interval'"),
    ("grafanaDashboards:\n  labelValue: 1\n", "at '/grafanaDashboards/labelValue'"),
    ("exporter:\n  webConfig: {basic_auth_users: {prometheus: secret}}\n",
     "at '/exporter/webConfig/basic_auth_users/prometheus'"),
    ("exporter:\n  webConfig: {tls_server_config: {cert_file: /c.pem}}\n", "missing property 'key_file'"),
    ("credentials:\n  secretData:\n    'bad key': x\n", "additional properties 'bad key' not allowed"),
]

TEMPLATE_ERRORS = [
    ("targets:\n  - url: https://a.io\n    auth: {token: x, username: u, password: p}\n",
     "targets[0].auth: use either a token or username + password, not both"),
    ("targets:\n  - url: https://a.io\n    auth: {token: x, token_env: T}\n",
     "targets[0].auth: give one of token, token_env, not several"),
    ("targets:\n  - url: https://a.io\n    auth: {username: u}\n", "targets[0].auth: username needs one of"),
    ("targets:\n  - url: https://a.io\n    auth: {password: p}\n", "targets[0].auth: username is required"),
    ("targets:\n  - url: https://a.io\n    auth: {token_secret_key: prod-token}\n",
     'targets[0].auth.token_secret_key: key "prod-token" is not in credentials.secretData'),
    ("targets:\n  - url: https://a.io\n  - url: https://a.io/artifactory\n",
     'targets[1]: two targets are named "a.io"'),
    ("exporter:\n  webConfig: {basic_auth_users: {a: $2y$10$x}}\n  webConfigExistingSecret: web\n",
     "give webConfig or webConfigExistingSecret, not both"),
]


@pytest.mark.parametrize(("values", "message"), SCHEMA_ERRORS, ids=[m for _, m in SCHEMA_ERRORS])
def test_schema_refuses_wrong_values(repo_chart: Path, tmp_path: Path, values: str, message: str) -> None:
    path = write_values(tmp_path, values)
    result = run_helm(*template_args(repo_chart, path), check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr
    lint = run_helm("lint", "--strict", repo_chart, "--values", REQUIRED, "--values", path, check=False)
    assert lint.returncode != 0
    assert message in lint.stdout + lint.stderr


@pytest.mark.parametrize(("values", "message"), TEMPLATE_ERRORS, ids=[m for _, m in TEMPLATE_ERRORS])
def test_inconsistent_values_fail_with_the_field_named(repo_chart: Path, tmp_path: Path, values: str,
                                                      message: str) -> None:
    result = run_helm(*template_args(repo_chart, write_values(tmp_path, values)), check=False)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_secret_key_from_secret_data_is_accepted(repo_chart: Path, tmp_path: Path) -> None:
    values = write_values(tmp_path, "targets:\n  - url: https://a.io\n    auth: {token_secret_key: k}\n"
                                    "credentials:\n  secretData: {k: v}\n")
    docs = render(repo_chart, values)
    assert rendered_config(docs)["targets"][0]["auth"] == {"token_file": f"{SECRETS_DIR}/k"}
    assert base64.b64decode(one(docs, "Secret")["data"]["k"]) == b"v"


# --------------------------------------------------------------------------- NOTES.txt

NOTES_PROBE = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}
"""


def render_notes(tmp_path: Path, values: Path | None = None) -> str:
    """NOTES.txt as `helm install` would print it; `helm template` drops it and a dry-run install needs a cluster."""
    chart = make_layout(tmp_path, {}, {})
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "files" / "notes.txt")
    (chart / "templates" / "zz-notes-probe.yaml").write_text(NOTES_PROBE, encoding="utf-8")
    docs = render(chart, values)
    return one(docs, "ConfigMap", "notes")["data"]["notes"]


def test_notes_tell_how_to_reach_the_metrics_and_what_to_check(tmp_path: Path) -> None:
    notes = render_notes(tmp_path, ALL_VALUES)
    assert f"port-forward service/{FULLNAME} 9743:9743" in notes
    assert f"http://{FULLNAME}.{NAMESPACE}.svc:9743/metrics" in notes
    assert "landing page" in notes
    assert "jfrog_exporter_collector_success" in notes
    assert "/-/ready" in notes
    assert "- prod: https://acme.jfrog.io" in notes
    assert "ServiceMonitor" in notes
    assert "WARNING" not in notes


# --------------------------------------------------------------------------- shards


def test_shards_render_a_statefulset_whose_pods_each_take_their_shard(repo_chart: Path, tmp_path: Path) -> None:
    docs = render(repo_chart, extra=["--set", "shards=3", "--set", "serviceMonitor.enabled=true"])
    validate_all(docs)
    assert not by_kind(docs, "Deployment")
    sts = one(docs, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel", "no shard waits for another to be ready"
    service = one(docs, "Service")
    assert sts["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None", "headless: every pod is scraped, not one at random"
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    # Each pod reads its index from its host name, <statefulset>-<ordinal>, as the exporter's auto/COUNT does.
    assert args[args.index("--shard") + 1] == "auto/3"
    from exporter.sharding import parse_shard

    shards = {parse_shard("auto/3", f"{sts['metadata']['name']}-{i}").index for i in range(3)}
    assert shards == {0, 1, 2}
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    notes = render_notes(tmp_path, write_values(tmp_path, "shards: 3\n"))
    assert f"logs -l app.kubernetes.io/instance={RELEASE} --prefix" in notes


def test_one_shard_renders_exactly_what_the_chart_did_without_shards(repo_chart: Path) -> None:
    default = run_helm(*template_args(repo_chart, ALL_VALUES)).stdout
    assert run_helm(*template_args(repo_chart, ALL_VALUES, ["--set", "shards=1"])).stdout == default
    assert "--shard" not in default and "StatefulSet" not in default and "clusterIP: None" not in default


@pytest.mark.parametrize(("set_args", "message"), [
    (["shards=3", "replicaCount=2"], "shards and replicaCount: with shards > 1 the StatefulSet runs one pod per shard"),
    (["shards=2", "service.type=LoadBalancer"], "service.type: with shards > 1 the Service is headless"),
    (["shards=0"], "at '/shards': minimum: got 0, want 1"),
])
def test_shards_refuse_what_cannot_work(repo_chart: Path, set_args: list[str], message: str) -> None:
    extra = [arg for pair in set_args for arg in ("--set", pair)]
    result = run_helm(*template_args(repo_chart, extra=extra), check=False)
    assert result.returncode != 0 and message in result.stderr
