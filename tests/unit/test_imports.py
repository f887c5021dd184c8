"""`serve` and `once` never import the simulator, nor libraries only some configurations need (YAML for a
configuration file, JSON logging), nor aiohttp (the simulator's server), nor what only an optional collector or a
tool uses (the OpenMetrics parsers, statistics), nor the fast gzip that only large expositions need: they stay
out of the exporter's memory."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO, free_port

PROGRAM = """
import sys
from exporter import cli
code = cli.main(["once", "--url", "http://127.0.0.1:{port}", "--collector", "health"])
print(sorted(m for m in sys.modules if m.startswith("exporter.simulator")), code)
"""


def test_once_runs_without_the_simulator() -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM.format(port=free_port())], cwd=REPO, capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "JFROG_ACCESS_TOKEN": "t"})
    assert result.stdout.strip().splitlines()[-1] == "[] 1", result.stdout + result.stderr


def test_serve_modules_do_not_import_the_simulator() -> None:
    program = ("import sys, exporter.cli, exporter.scheduler, exporter.server, exporter.snapshot; "
               "exporter.snapshot.gzip_chunks([b'x' * 500_000]); "
               "print(sorted(m for m in sys.modules if m.startswith(('exporter.simulator', 'yaml', 'pythonjsonlogger',"
               " 'pydantic_settings', 'bcrypt', 'aiohttp', 'exporter.openmetrics_parser', 'prometheus_client.parser',"
               " 'statistics', 'isal'))))")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_serving_with_tls_and_basic_auth_does_not_import_aiohttp() -> None:
    program = "import sys, exporter.cli, exporter.webconfig; print('aiohttp' in sys.modules, 'h11' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False True", result.stdout + result.stderr


def test_the_serving_process_loads_only_the_http_server() -> None:
    """A serving process of its own holds its server and a payload: none of the collecting process's libraries."""
    program = ("import sys, exporter.servingchild; print(sorted({m.split('.')[0] for m in sys.modules} & "
               "{'pydantic', 'httpx', 'prometheus_client', 'apscheduler', 'yaml', 'bcrypt', 'aiohttp', 'anyio'}))")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
