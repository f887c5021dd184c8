"""A JPD (or what stands in front of it) that answers in ways no real one should: bodies that never end,
strings that are no UTF-8, JSON nested beyond reason, numbers beyond a float, entries listed twice, the
credential echoed back. The exporter says what happened, keeps serving, and never shows the secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from exporter import families
from exporter.collectors.health import ROUTER_HEALTH
from exporter.collectors.storage import STORAGEINFO as STORAGE_INFO
from exporter.config import TargetConfig
from exporter.outcomes import Outcome
from exporter.scheduler import Engine
from exporter.server import landing_page
from exporter.simulator.core import DEFAULT_TOKEN
from exporter.simulator.faults import Fault
from tests.conftest import make_target
from tests.support import REPO, parse_exposition, series, simulator, value

#: the configured credential, the one the simulator accepts
SECRET_TOKEN = DEFAULT_TOKEN


async def run_once(url: str, only: list[str], **fields: object) -> Engine:
    engine = Engine([make_target(url, retries=0, **fields)], only)
    try:
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    return engine


def storage_body(repo_key: str, files: object = 1) -> str:
    """A storage summary with one repository, as the JPD would write it but for the given values."""
    return json.dumps({
        "binariesSummary": {"binariesCount": "1", "binariesSize": "1 KB", "artifactsSize": "1 KB",
                            "optimization": "100%", "itemsCount": "1", "artifactsCount": "1"},
        "fileStoreSummary": {"storageType": "filesystem", "storageDirectory": "/data", "totalSpace": "10 GB",
                             "usedSpace": "1 GB (10%)", "freeSpace": "9 GB (90%)"},
        "repositoriesSummaryList": [{"repoKey": repo_key, "repoType": "LOCAL", "foldersCount": 1,
                                     "filesCount": files, "usedSpace": "1 KB", "itemsCount": 1,
                                     "packageType": "Generic", "percentage": "1%"}],
    })


async def test_a_body_that_trickles_in_times_out_at_the_deadline(sim) -> None:
    # Each piece arrives well within the timeout; the whole body would take 8 s.
    url, state = await sim.start()
    state.faults.append(Fault(route=STORAGE_INFO, kind="slow_body", seconds=8.0))
    started = time.monotonic()
    engine = await run_once(url, ["storage"], timeout=1.0)
    took = time.monotonic() - started
    run = engine.store.run("sim", "storage")
    assert run.outcome is Outcome.TIMEOUT
    assert "no complete answer within 1s (HTTP 200 arrived, its body did not finish)" in run.reason
    assert took < 4, f"the run took {took:.1f}s, the deadline is 1 s"


# As a JSON escape, and as the bytes ed bf bf that no UTF-8 decoder accepts.
@pytest.mark.parametrize("written", ["\\udfff", "\udfff"], ids=["escaped", "raw-bytes"])
async def test_a_lone_surrogate_becomes_a_question_mark(sim, written: str) -> None:
    url, state = await sim.start()
    body = storage_body("bad-HERE-repo").replace("-HERE-", written)
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", body=body))
    engine = await run_once(url, ["storage"])
    assert engine.store.run("sim", "storage").outcome is Outcome.SUCCESS
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode("utf-8"))
    assert {s["repo"] for s in series(samples, "jfrog_storage_repo_files")} == {"bad?repo"}


async def test_a_lone_surrogate_in_an_error_message_keeps_the_page_readable(sim) -> None:
    url, state = await sim.start()
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", status=500,
                              body='{"errors": [{"status": 500, "message": "broken \\udfff here"}]}'))
    engine = await run_once(url, ["storage"])
    run = engine.store.run("sim", "storage")
    assert run.outcome is Outcome.ERROR
    assert "broken ? here" in run.reason
    assert "broken ? here" in landing_page(engine.store)
    landing_page(engine.store).encode("utf-8")


async def test_json_nested_beyond_reason_is_a_bad_response_and_health_still_says_up(sim) -> None:
    url, state = await sim.start()
    deep = "[" * 100_000 + "]" * 100_000
    state.faults.append(Fault(route="/artifactory/api/system/license*", kind="answer", body=deep))
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", body=deep))
    engine = await run_once(url, ["health", "storage"])
    storage = engine.store.run("sim", "storage")
    assert storage.outcome is Outcome.BAD_RESPONSE
    assert "nested too deep" in storage.reason
    assert engine.store.run("sim", "health").outcome is Outcome.BAD_RESPONSE
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    assert value(samples, "jfrog_up") == 1, "ping answered: the JPD is up whatever its license endpoint sent"


async def test_a_number_beyond_a_float_gives_no_series_and_no_error(sim, caplog) -> None:
    url, state = await sim.start()
    body = storage_body("libs", "HUGE").replace('"HUGE"', "1" + "0" * 400)
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", body=body))
    with caplog.at_level(logging.ERROR):
        engine = await run_once(url, ["storage"])
    run = engine.store.run("sim", "storage")
    assert run.outcome is Outcome.SUCCESS, run.reason
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    assert value(samples, "jfrog_storage_repo_files", repo="libs") is None, "no count is that large: no value"
    assert value(samples, "jfrog_storage_repo_folders", repo="libs") == 1
    assert "Traceback" not in caplog.text


async def test_a_service_listed_twice_is_healthy_only_if_both_entries_say_so(sim) -> None:
    url, state = await sim.start()
    entry = {"service_id": "jfrt@01", "node_id": "art1", "message": "x"}
    body = {"router": {"node_id": "art1", "state": "HEALTHY"},
            "services": [{**entry, "state": "HEALTHY"}, {**entry, "state": "UNHEALTHY"}]}
    state.faults.append(Fault(route=ROUTER_HEALTH, kind="answer", body=json.dumps(body)))
    engine = await run_once(url, ["health"])
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    healthy = [v for (name, labels), v in samples.items()
               if name == "jfrog_router_service_healthy" and ("service_id", "jfrt@01") in labels]
    assert healthy == [0.0]


async def test_a_repository_listed_twice_gives_one_series(sim, caplog, monkeypatch) -> None:
    monkeypatch.setattr(families, "_warned_duplicate", set())  # warned once per process
    url, state = await sim.start()
    body = json.loads(storage_body("libs"))
    body["repositoriesSummaryList"] *= 2
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", body=json.dumps(body)))
    with caplog.at_level(logging.WARNING):
        engine = await run_once(url, ["storage"])
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    assert len(series(samples, "jfrog_storage_repo_files", repo="libs")) == 1
    assert "twice; the first is kept" in caplog.text


@pytest.mark.parametrize("status", [401, 500])
async def test_an_echoed_credential_is_never_shown(sim, caplog, status: int) -> None:
    url, state = await sim.start()
    echo = {"errors": [{"status": status, "message": f"rejected header Authorization: Bearer {SECRET_TOKEN}"}]}
    state.faults.append(Fault(route=STORAGE_INFO, kind="answer", status=status, body=json.dumps(echo)))
    with caplog.at_level(logging.DEBUG):
        engine = await run_once(url, ["storage"], token=SECRET_TOKEN)
    run = engine.store.run("sim", "storage")
    assert run.outcome is (Outcome.UNAUTHORIZED if status == 401 else Outcome.ERROR)
    assert "Bearer <redacted>" in run.reason
    for shown in (run.reason, caplog.text, landing_page(engine.store)):
        assert SECRET_TOKEN not in shown
        assert SECRET_TOKEN[:12] not in shown


#: runs the exporter's command line and writes the process's peak resident size (VmHWM, KiB) to $PEAK_FILE at
#: exit. Not wait4's ru_maxrss: a child spawned by a large process (pytest, late in a run) inherits its parent's
#: high-water mark through exec, and would report that.
_REPORTS_PEAK = r"""
import atexit, os, re, runpy, sys
def _peak():
    with open("/proc/self/status") as status, open(os.environ["PEAK_FILE"], "w") as out:
        out.write(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))
atexit.register(_peak)
sys.argv = ["exporter", *sys.argv[1:]]
runpy.run_module("exporter", run_name="__main__", alter_sys=True)
"""


def test_answers_as_large_as_the_cap_on_every_endpoint_stay_under_the_pod_limit(tmp_path: Path) -> None:
    """`once` with every collector while every route answers a JSON body just under the default cap: the
    process's peak resident size stays under the chart's 256Mi memory limit."""
    size = TargetConfig.model_fields["max_response_bytes"].default - (1 << 20)
    peak_file = tmp_path / "peak-kib"
    with simulator(tmp_path, "healthy") as sim:
        fault = {"route": "*", "kind": "huge", "size": size}
        httpx.post(sim.url + "/-/simulator", json={"faults": [fault]}, timeout=10).raise_for_status()
        proc = subprocess.run([sys.executable, "-c", _REPORTS_PEAK, "once", "--url", sim.url],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, check=False,
                              env={**os.environ, "JFROG_ACCESS_TOKEN": DEFAULT_TOKEN, "PEAK_FILE": str(peak_file)})
    peak_mib = int(peak_file.read_text()) / 1024
    assert proc.returncode == 1, "every collector failed: the answers are no data"
    assert 50 < peak_mib < 256, f"peak RSS {peak_mib:.0f} MiB"
