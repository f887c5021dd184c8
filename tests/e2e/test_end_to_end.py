"""The real command line over real HTTP: simulator and `serve` as processes on loopback."""

from __future__ import annotations

import gzip
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from exporter.simulator.scenarios import GB
from tests.support import (
    ensure_prometheus,
    exporter,
    parse_exposition,
    run_cli,
    scrape,
    series,
    simulator,
    value,
    wait_http,
)


def _config(tmp: Path, targets: dict[str, str], interval: str = "30s") -> Path:
    lines = ["targets:"]
    for name, url in targets.items():
        lines += [
            f"  - name: {name}",
            f"    url: {url}",
            "    auth: {token_env: SIM_TOKEN}",
            "    timeout: 2s",
            "    retries: 0",
            f"    collectors: {{health: {{interval: {interval}}}, storage: {{interval: {interval}}}}}",
        ]
    path = tmp / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("scenario", ["healthy", "oss", "cloud", "degraded"])
def test_serve_against_each_edition(tmp_path: Path, scenario: str) -> None:
    with simulator(tmp_path, scenario) as sim, exporter(tmp_path, "--url", sim.url) as exp:
        samples = scrape(exp.url)
    target = sim.url.removeprefix("http://")
    assert value(samples, "jfrog_up", target=target) == 1
    for collector in ("health", "storage"):
        assert value(samples, "jfrog_exporter_collector_success", target=target, collector=collector) == 1
    assert value(samples, "jfrog_storage_binaries", target=target) == 125_726
    if scenario == "healthy":
        assert value(samples, "jfrog_ready") == 1
        assert value(samples, "jfrog_storage_filestore_used_bytes") == pytest.approx(32.22 * GB, rel=1e-3)
        assert len(series(samples, "jfrog_license_expiry_timestamp_seconds")) == 2
        assert all(v == 1 for (n, _), v in samples.items() if n == "jfrog_router_service_healthy")
    elif scenario == "oss":
        assert series(samples, "jfrog_license_info") == []
        assert value(samples, "jfrog_artifactory_info", version="7.77.5") == 1
    elif scenario == "cloud":
        assert value(samples, "jfrog_license_info", license_type="Enterprise+") == 1
        assert series(samples, "jfrog_license_expiry_timestamp_seconds") == []
        assert series(samples, "jfrog_storage_filestore_size_bytes") == []
    else:
        assert value(samples, "jfrog_ready") == 0
        assert value(samples, "jfrog_router_service_healthy", service_id="jffe@01h00nodeart1") == 0
        used = value(samples, "jfrog_storage_filestore_used_bytes")
        size = value(samples, "jfrog_storage_filestore_size_bytes")
        assert used is not None and size is not None and used / size == pytest.approx(0.96, abs=0.001)


def test_exposition_passes_promtool(tmp_path: Path) -> None:
    promtool = ensure_prometheus()
    with simulator(tmp_path, "healthy") as a, simulator(tmp_path, "degraded") as b:
        cfg = _config(tmp_path, {"a": a.url, "b": b.url})
        with exporter(tmp_path, "--config", str(cfg), env={"SIM_TOKEN": "simulator-token"}) as exp:
            text = httpx.get(exp.url + "/metrics").text
    samples = parse_exposition(text)
    assert value(samples, "jfrog_up", target="a") == 1 and value(samples, "jfrog_ready", target="b") == 0
    # Each family once, whatever the number of targets.
    assert text.count("# TYPE jfrog_up gauge") == 1
    check = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip() == "" and check.stderr.strip() == "", check.stdout + check.stderr


def test_failing_jpd_keeps_last_good_values(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        cfg = _config(tmp_path, {"jpd": sim.url}, interval="1s")
        with exporter(tmp_path, "--config", str(cfg), env={"SIM_TOKEN": "simulator-token"}) as exp:
            before = scrape(exp.url)
            assert value(before, "jfrog_storage_binaries", target="jpd") == 125_726
            sim.stop()  # the JPD goes away mid-run
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                after = scrape(exp.url)
                # storage and health notice on their own runs, each after its own retries: wait for both
                if (value(after, "jfrog_exporter_collector_success", target="jpd", collector="storage") == 0
                        and value(after, "jfrog_up", target="jpd") == 0):
                    break
                time.sleep(0.3)
            assert exp.proc.poll() is None, "the exporter must keep running"
            assert value(after, "jfrog_exporter_collector_success", target="jpd", collector="storage") == 0
            assert (value(after, "jfrog_exporter_collector_runs_total", target="jpd", collector="storage",
                          outcome="unreachable") or 0) >= 1
            # Last good data stays, with its age visible.
            assert value(after, "jfrog_storage_binaries", target="jpd") == 125_726
            assert value(after, "jfrog_storage_repo_files", repo="docker-local") == 15_780
            last_ok = value(after, "jfrog_exporter_collector_last_success_timestamp_seconds", collector="storage")
            assert last_ok is not None and last_ok < time.time()
            assert value(after, "jfrog_up", target="jpd") == 0
            page = httpx.get(exp.url + "/").text
            assert "unreachable" in page and "cannot reach the JPD" in page
    log = exp.output()
    assert log.count("collector=storage endpoint=/artifactory/api/storageinfo: failed: unreachable") == 1, \
        "one log line per change, no flood"


def test_once_prints_metrics_and_exit_codes(tmp_path: Path) -> None:
    with simulator(tmp_path, "oss") as sim:
        ok = run_cli("once", "--url", sim.url, env={"JFROG_ACCESS_TOKEN": "simulator-token"})
        assert ok.returncode == 0, ok.stderr
        assert value(parse_exposition(ok.stdout), "jfrog_storage_binaries") == 125_726
        bad = run_cli("once", "--url", sim.url, env={"JFROG_ACCESS_TOKEN": "wrong-token"})
        assert bad.returncode == 1
        assert "collector=storage endpoint=/artifactory/api/storageinfo: unauthorized: HTTP 401" in bad.stderr
        assert "wrong-token" not in bad.stderr + bad.stdout
        # The JPD is up; it is the exporter's credential that is refused.
        assert value(parse_exposition(bad.stdout), "jfrog_up") == 1
        assert value(parse_exposition(bad.stdout), "jfrog_exporter_credentials_accepted") == 0
        only = run_cli("once", "--url", sim.url, "--collector", "storage",
                       env={"JFROG_ACCESS_TOKEN": "simulator-token"})
        assert only.returncode == 0
        assert series(parse_exposition(only.stdout), "jfrog_exporter_collector_success") == [
            {"target": sim.url.removeprefix("http://"), "collector": "storage"}]


def test_metrics_negotiation_and_endpoints(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, exporter(tmp_path, "--url", sim.url) as exp:
        plain = httpx.get(exp.url + "/metrics", headers={"Accept-Encoding": "identity"})
        assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
        raw = httpx.get(exp.url + "/metrics", headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert raw.text == plain.text  # httpx decodes; the bytes on the wire were gzip
        om = httpx.get(exp.url + "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")
        assert httpx.get(exp.url + "/-/healthy").status_code == 200
        assert httpx.get(exp.url + "/-/ready").status_code == 200
        page = httpx.get(exp.url + "/").text
        assert "health" in page and "storage" in page and "success" in page
        assert "simulator-token" not in page + plain.text


def test_ready_only_after_first_round_and_clean_shutdown(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy", "--latency-ms", "1500") as sim:
        with exporter(tmp_path, "--url", sim.url, ready=False) as exp:
            wait_http(exp.url + "/-/healthy")
            assert httpx.get(exp.url + "/-/ready").status_code == 503
            wait_http(exp.url + "/-/ready", timeout=20)
            assert exp.stop() == 0
    assert "shutting down" in exp.output()


def test_gzip_payload_is_valid(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, exporter(tmp_path, "--url", sim.url) as exp:
        with httpx.stream("GET", exp.url + "/metrics", headers={"Accept-Encoding": "gzip"}) as response:
            body = b"".join(response.iter_raw())
    assert gzip.decompress(body).startswith(b"# HELP")


def test_demo_starts_and_serves(tmp_path: Path) -> None:
    from tests.support import Process, _spawn, free_port

    port = free_port()
    log = tmp_path / "demo.log"
    demo = Process(_spawn(["demo", "--listen", f"127.0.0.1:{port}"], log), f"http://127.0.0.1:{port}", log)
    try:
        wait_http(demo.url + "/-/ready", timeout=30)
        samples = scrape(demo.url)
        assert value(samples, "jfrog_up", target="healthy") == 1
        assert value(samples, "jfrog_ready", target="degraded") == 0
        assert f"http://127.0.0.1:{port}/metrics" in demo.output()
    finally:
        assert demo.stop() == 0
