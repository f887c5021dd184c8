"""What the exporter says on standard error, as a person and a log pipeline read it, and its process metrics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.simulator.core import DEFAULT_TOKEN
from tests.support import REPO, Process, exporter, run_cli, scrape, series, simulator, value

STORAGE = "/artifactory/api/storageinfo"
LICENSES = "/artifactory/api/system/licenses"
# Faults that are not retried: each failing part costs one request.
FAULTS = ("--fault", f"{STORAGE}=wrong_type", "--fault", f"{LICENSES}=truncated_json")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ONLY = ("--collector", "health", "--collector", "storage")


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """One simulated JPD for the module, two of whose parts fail."""
    with simulator(tmp_path_factory.mktemp("sim"), "healthy", *FAULTS) as process:
        yield process


def _json_lines(text: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(TS.match(e["ts"]) and {"level", "logger", "msg"} <= e.keys() for e in events), events
    return events


def _where(events: list[dict[str, Any]], **fields: Any) -> list[dict[str, Any]]:
    return [e for e in events if all(e.get(k) == v for k, v in fields.items())]


def test_once_in_json_gives_one_object_per_failed_part_then_a_summary(sim: Process) -> None:
    result = run_cli("once", "--url", sim.url, "--log-format", "json", *ONLY,
                     env={"JFROG_ACCESS_TOKEN": DEFAULT_TOKEN})
    assert result.returncode == 1, result.stderr
    assert "jfrog_storage_binaries" not in result.stderr and "jfrog_up" in result.stdout  # metrics on stdout
    events = _json_lines(result.stderr)  # every line parses
    target = sim.url.removeprefix("http://")
    (storage,) = _where(events, target=target, collector="storage")
    assert storage["endpoint"] == STORAGE and storage["outcome"] == "bad_response"
    assert storage["reason"].startswith("unexpected shape")
    (health,) = _where(events, target=target, collector="health")
    assert health["endpoint"] == LICENSES and health["outcome"] == "bad_response"
    summary = events[-1]
    assert summary["failed_parts"] == 2 and summary["failed_collectors"] == 2 and summary["collectors"] == 2
    assert summary["series"] > 0 and summary["duration_seconds"] > 0
    assert DEFAULT_TOKEN not in result.stderr + result.stdout


def test_once_says_each_failure_once(sim: Process) -> None:
    result = run_cli("once", "--url", sim.url, *ONLY, env={"JFROG_ACCESS_TOKEN": DEFAULT_TOKEN})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    for endpoint in (STORAGE, LICENSES):
        assert sum(endpoint in line for line in lines) == 1, result.stderr
    assert lines[-1] == "jfrog-exporter: 2 of 2 collectors failed (2 parts)", result.stderr
    assert "keeping the last good data" not in result.stderr  # a first run has none


def test_debug_level_leaves_the_libraries_out_unless_asked(sim: Process) -> None:
    env = {"JFROG_ACCESS_TOKEN": DEFAULT_TOKEN, "JFROG_EXPORTER_LOG_FORMAT": "json"}
    quiet = run_cli("once", "--url", sim.url, "--collector", "security", "--log-level", "debug", env=env)
    loud = run_cli("once", "--url", sim.url, "--collector", "security", "--log-level", "debug",
                   env={**env, "JFROG_EXPORTER_DEBUG_LIBRARIES": "1"})
    assert quiet.returncode == 0 and loud.returncode == 0, quiet.stderr + loud.stderr
    quiet_loggers = {e["logger"] for e in _json_lines(quiet.stderr)}
    assert quiet_loggers and all(name.split(".")[0] == "exporter" for name in quiet_loggers), quiet_loggers
    assert any(e["logger"].startswith("httpx") for e in _json_lines(loud.stderr))


def _wait_for(exp: Any, pattern: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while pattern not in (log := exp.output()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return str(log)


def test_serve_logs_start_ready_and_failures_as_fields_and_exposes_process_metrics(sim: Process,
                                                                                   tmp_path: Path) -> None:
    with exporter(tmp_path, "--url", sim.url, "--log-format", "json", "--log-level", "debug", *ONLY) as exp:
        samples = scrape(exp.url)
        log = _wait_for(exp, '"ready: first round done')
    target = sim.url.removeprefix("http://")
    assert (value(samples, "process_resident_memory_bytes") or 0) > 0
    assert (value(samples, "process_cpu_seconds_total") or 0) > 0
    assert len(series(samples, "python_info")) == 1
    assert value(samples, "jfrog_exporter_target_info", target=target, url=sim.url, auth="token") == 1
    reference = (REPO / "docs" / "metrics.md").read_text()
    assert all(f"`{name}`" in reference for name, _ in samples if not name.startswith("jfrog_"))

    events = _json_lines(log)
    assert {e["logger"].split(".")[0] for e in events} == {"exporter"}, "no library lines at debug level"
    (start,) = _where(events, target=target, url=sim.url)
    assert start["collectors"] == ["health", "storage"]
    (serving,) = [e for e in events if "listen" in e]
    assert serving["listen"] == f"{exp.url}/" and serving["targets"] == [target]
    (ready,) = [e for e in events if e["msg"].startswith("ready: first round done in ")]
    assert ready["series"] > 0 and ready["duration_seconds"] > 0
    (failed,) = _where(events, level="warning", collector="storage", endpoint=STORAGE)
    assert failed["target"] == target and failed["outcome"] == "bad_response" and failed["duration_seconds"] >= 0
    assert "no data yet" in failed["msg"] and "keeping the last good data" not in log
    assert _where(events, level="warning", collector="health", endpoint=LICENSES)
    # Lines logged inside a part carry where they come from without naming it in their text.
    assert all(e.get("target") == target for e in events if e.get("endpoint"))
