"""The first day with a new exporter: wrong URLs, refused or missing credentials, free and Cloud editions.

Each case runs `once` as a user would, and checks the series, the outcome of every collector and
the exit code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from exporter.simulator.core import DEFAULT_READER_TOKEN, DEFAULT_TOKEN
from tests.support import Samples, parse_exposition, run_cli, series, simulator, value

NGINX_404 = (b"<html><head><title>404 Not Found</title></head>"
             b"<body><center><h1>404 Not Found</h1></center></body></html>")


class _WebSite(BaseHTTPRequestHandler):
    """A web server that is no JFrog Platform: a home page, and 404 pages for everything else."""

    def do_GET(self) -> None:
        status, body = (200, b"<!doctype html><html><title>Welcome</title></html>") if self.path == "/" else \
            (404, NGINX_404)
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def web_site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def once(url: str, token: str | None = DEFAULT_TOKEN) -> tuple[int, Samples, str]:
    env = {"JFROG_ACCESS_TOKEN": token} if token else {}
    result = run_cli("once", "--url", url, env=env)
    return result.returncode, parse_exposition(result.stdout), result.stderr


def outcomes(samples: Samples) -> dict[str, str]:
    """Each collector's outcome, from jfrog_exporter_collector_runs_total."""
    return {labels["collector"]: labels["outcome"] for labels in series(samples, "jfrog_exporter_collector_runs_total")
            if value(samples, "jfrog_exporter_collector_runs_total", **labels) == 1}


def test_a_url_that_is_no_jpd_is_misconfigured() -> None:
    with web_site() as url:
        code, samples, stderr = once(url)
    assert code == 1
    assert set(outcomes(samples).values()) == {"misconfigured"}
    assert value(samples, "jfrog_up") is None, "a wrong URL says nothing about the JPD"
    assert f"{url}/artifactory/api/system/ping answered HTTP 404" in stderr
    assert "this URL does not lead to a JFrog Platform" in stderr


def test_a_wrong_base_path_is_misconfigured(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        code, samples, stderr = once(sim.url + "/jfrog")
    assert code == 1
    assert set(outcomes(samples).values()) == {"misconfigured"}
    assert f"{sim.url}/jfrog/artifactory/api/system/ping answered HTTP 404" in stderr


def test_a_rejected_token_is_the_exporters_fault_not_the_jpds(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        code, samples, stderr = once(sim.url, token="revoked")
    assert code == 1
    assert value(samples, "jfrog_up") == 1 and value(samples, "jfrog_ready") == 1
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="router") == 1
    assert value(samples, "jfrog_exporter_credentials_accepted") == 0
    assert outcomes(samples)["storage"] == "unauthorized"
    assert "revoked" not in stderr


def test_a_reader_token_collects_what_it_may(tmp_path: Path) -> None:
    with simulator(tmp_path, "healthy") as sim:
        code, samples, stderr = once(sim.url, token=DEFAULT_READER_TOKEN)
    assert code == 1
    assert value(samples, "jfrog_exporter_credentials_accepted") == 1
    assert value(samples, "jfrog_artifactory_info", version="7.104.3") == 1
    assert value(samples, "jfrog_exporter_endpoint_up", endpoint="/artifactory/api/system/licenses") == 0
    assert "endpoint=/artifactory/api/system/licenses: forbidden" in stderr
    assert "forbidden" in outcomes(samples).values()


@pytest.mark.parametrize("edition", ["oss", "jcr", "cloud"])
def test_free_and_cloud_editions_succeed(tmp_path: Path, edition: str) -> None:
    with simulator(tmp_path, edition) as sim:
        code, samples, stderr = once(sim.url)
    assert code == 0, stderr
    assert set(outcomes(samples).values()) <= {"success", "unsupported"}
    assert value(samples, "jfrog_up") == 1
    assert "misconfigured" not in stderr


def test_without_credentials_only_the_probes_run(tmp_path: Path) -> None:
    with simulator(tmp_path, "degraded") as sim:
        code, samples, stderr = once(sim.url, token=None)
    assert code == 0, stderr
    assert set(outcomes(samples)) == {"health"}
    assert value(samples, "jfrog_up") == 1 and value(samples, "jfrog_ready") == 0
    assert value(samples, "jfrog_router_service_healthy", node_id="art1", service_id="jffe@01h00nodeart1") == 0
    assert stderr.count("no credentials configured") == 1
