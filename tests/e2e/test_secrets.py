"""No secret ever reaches a log line, a page or a label, even at debug level."""

from __future__ import annotations

from pathlib import Path

import httpx

from exporter.collectors.registry import COLLECTORS
from tests.support import exporter, simulator

TOKEN = "TOK-d1st1nct1ve-4c3ss-t0ken-99"
PASSWORD = "PW-d1st1nct1ve-p4ssw0rd-77"


def _replication_passwords(url: str) -> set[str]:
    """The passwords the simulated JPD puts in its replication configurations."""
    body = httpx.get(url + "/artifactory/api/replications", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    entries = [e for item in body for e in (item if isinstance(item, list) else [item])]
    return {e["password"] for e in entries if isinstance(e, dict) and e.get("password")}


def _federation_secrets(url: str) -> set[str]:
    """The user-info and query the simulated JPD puts in its Access Federation target URLs."""
    body = httpx.get(url + "/access/api/v1/system/federation", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    found = set()
    for target in body["configurations"]:
        parts = httpx.URL(target["url"])
        found |= {v for v in (parts.password, *parts.params.values()) if v}
    return found


def test_no_secret_in_logs_pages_or_labels(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    with simulator(tmp_path, "replication", "--token", TOKEN, "--user", "monitor", "--password", PASSWORD) as sim:
        secrets = {TOKEN, PASSWORD, *_replication_passwords(sim.url), *_federation_secrets(sim.url)}
        assert len(secrets) >= 5, "the scenario must carry replication passwords and federation user-info to hide"
        config = tmp_path / "config.yaml"
        collectors = ", ".join(f"{name}: {{enabled: true}}" for name in COLLECTORS)
        config.write_text(
            "targets:\n"
            f"  - name: by-token\n    url: {sim.url}\n    auth: {{token_file: {token_file}}}\n"
            f"    collectors: {{{collectors}}}\n"
            f"  - name: by-password\n    url: {sim.url}\n"
            f"    auth: {{username: monitor, password_file: {password_file}}}\n"
            f"    collectors: {{{collectors}}}\n"
        )
        with exporter(tmp_path, "--config", str(config), "--log-level", "debug",
                      env={"JFROG_ACCESS_TOKEN": ""}) as exp:
            pages = [
                httpx.get(exp.url + "/metrics").text,
                httpx.get(exp.url + "/metrics", headers={"Accept": "application/openmetrics-text"}).text,
                httpx.get(exp.url + "/").text,
            ]
            assert "jfrog_replication_status" in pages[0]
            assert "jfrog_access_federation_target_info" in pages[0]
            assert 'target="by-password"' in pages[0]
    output = exp.output() + sim.output()
    assert "DEBUG" in output, "the run must have been at debug level"
    for secret in secrets:
        for text in (*pages, exp.output()):
            assert secret not in text
    assert PASSWORD not in output and TOKEN not in output
