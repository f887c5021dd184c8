"""A bounded soak: random faults on every route while Prometheus-like scrapers keep scraping.

Runs for SOAK_SECONDS (default 30 s in the suite); `pytest --soak-seconds 1800 tests/e2e/test_soak.py`
runs it longer.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import httpx
import pytest

from exporter.simulator.faults import KINDS
from tests.support import exporter, simulator

#: fault kinds that need no recorded answer
RANDOM_KINDS = [k for k in KINDS if k != "answer"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_soak_random_faults(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    seconds = float(request.config.getoption("--soak-seconds"))
    rng = random.Random(20261123)
    with simulator(tmp_path, "healthy") as sim:
        cfg = tmp_path / "soak.yaml"
        cfg.write_text(
            "targets:\n"
            f"  - name: soak\n    url: {sim.url}\n    auth: {{token_env: SIM_TOKEN}}\n"
            "    timeout: 1s\n    retries: 1\n    max_response_bytes: 2097152\n"
            "    collectors: {health: {interval: 1s}, storage: {interval: 1s}}\n"
        )
        with exporter(tmp_path, "--config", str(cfg), env={"SIM_TOKEN": "simulator-token"}) as exp:
            pid = exp.proc.pid
            scrapes = failures = 0
            warm_until = time.monotonic() + min(15.0, seconds / 4)
            baseline: float | None = None
            peak = 0.0
            deadline = time.monotonic() + seconds
            with httpx.Client(timeout=5) as client:
                while time.monotonic() < deadline:
                    faults = [{"route": "/artifactory/*", "kind": rng.choice(RANDOM_KINDS), "times": rng.randint(1, 5),
                               "seconds": rng.uniform(0.2, 2.5), "size": 4 << 20}
                              for _ in range(rng.randint(0, 3))]
                    client.post(sim.url + "/-/simulator", json={"clear_faults": True, "faults": faults})
                    for _ in range(10):
                        response = client.get(exp.url + "/metrics")
                        scrapes += 1
                        failures += response.status_code != 200
                        time.sleep(0.05)
                    if baseline is None and time.monotonic() > warm_until:
                        baseline = _rss_mb(pid)
                    if baseline is not None:
                        peak = max(peak, _rss_mb(pid))
            assert exp.proc.poll() is None, "the exporter must survive: " + exp.output()[-2000:]
            client_ok = httpx.get(exp.url + "/-/healthy").status_code == 200
    assert client_ok
    assert failures == 0, f"{failures} of {scrapes} scrapes failed"
    assert baseline is not None
    growth = peak - baseline
    print(f"soak: {seconds:.0f}s, {scrapes} scrapes, RSS {baseline:.1f} MB -> peak {peak:.1f} MB")
    assert growth < 25, f"memory grew by {growth:.1f} MB during the soak"
    log = exp.output()
    assert "Traceback" not in log, log[-3000:]
