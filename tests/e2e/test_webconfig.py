"""TLS and basic auth on the exporter's endpoints, from an exporter-toolkit web config file."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.support import exporter, run_cli, simulator, wait_http


def _certificate(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is required to generate a test certificate")
    cert, key = tmp / "server.crt", tmp / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def test_tls_and_basic_auth(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")
    web_config = tmp_path / "web.yml"
    web_config.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\nbasic_auth_users:\n  prometheus: '{hashed}'\n"
    )
    context = ssl.create_default_context(cafile=str(cert))
    with simulator(tmp_path, "healthy") as sim, \
            exporter(tmp_path, "--url", sim.url, "--web.config.file", str(web_config), ready=False) as exp:
        url = exp.url.replace("http://", "https://")
        deadline_ok = False
        for _ in range(100):
            try:
                httpx.get(url + "/-/healthy", verify=context, timeout=2)
                deadline_ok = True
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert deadline_ok, exp.output()
        assert httpx.get(url + "/metrics", verify=context).status_code == 401
        assert httpx.get(url + "/metrics", verify=context, auth=("prometheus", "wrong")).status_code == 401
        good = httpx.get(url + "/metrics", verify=context, auth=("prometheus", "scrape-pass"))
        assert good.status_code == 200 and "jfrog_exporter_build_info" in good.text
        with pytest.raises(httpx.HTTPError):
            httpx.get(exp.url + "/metrics", timeout=2)  # plain HTTP is not served
    assert "scrape-pass" not in exp.output()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("basic_auth_users:\n  alice: plaintext\n", "basic_auth_users.alice: expected a bcrypt hash"),
        ("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: /nonexistent.key\n", "tls_server_config"),
        ("tls_config: {}\n", "tls_config: unknown field"),
    ],
)
def test_bad_web_config_exits_2(tmp_path: Path, content: str, message: str) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text(content)
    result = run_cli("serve", "--url", "http://127.0.0.1:1", "--listen", "127.0.0.1:0",
                     "--web.config.file", str(web_config))
    assert result.returncode == 2
    assert message in result.stderr


def test_plain_http_without_web_config(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim, exporter(tmp_path, "--url", sim.url) as exp:
        assert wait_http(exp.url + "/metrics").status_code == 200
