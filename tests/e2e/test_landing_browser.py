"""The landing page of the demo in a real browser: Chromium, headless, under the page's own CSP."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO, free_port, wait_http

CHROMIUM = "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def ensure_chromium() -> str:
    """Debian's Chromium, installed when missing and this user may install it; else the test is skipped."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs apt-get and root)")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*apt, "update", "-qq"], check=True, capture_output=True, env=env)
    subprocess.run([*apt, "install", "-y", "-qq", "--no-install-recommends", "chromium"], check=True,
                   capture_output=True, env=env)
    return CHROMIUM


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[str]:
    """`jfrog-exporter demo`: the healthy and the degraded simulated JPD, and the exporter, after its first round."""
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exporter", "demo", "--listen", url.removeprefix("http://"),
                                 "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        try:
            wait_http(url + "/-/ready", timeout=30)
        except AssertionError:
            raise AssertionError("the demo did not get ready; its log:\n" + log.read_text()) from None
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def card_state(dom: str, target: str) -> str:
    found = re.search(rf"<section class=\"card s-\w+\" id=\"target-{target}\" data-target=\"{target}\" "
                      r"data-state=\"(\w+)\">", dom)
    assert found is not None, f"no card for {target}"
    return found.group(1)


def test_the_demo_page_shows_the_degraded_jpd_degraded_in_a_browser(demo: str, tmp_path: Path) -> None:
    chromium = ensure_chromium()
    screenshot = tmp_path / "landing.png"
    browser = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", f"--screenshot={screenshot}", "--window-size=1280,1600", demo + "/"],
        capture_output=True, text=True, timeout=60)
    dom = browser.stdout
    assert browser.returncode == 0, browser.stderr[-2000:]
    assert card_state(dom, "degraded") == "degraded"
    assert card_state(dom, "healthy") == "healthy"
    assert dom.index('data-target="degraded"') < dom.index('data-target="healthy"'), "failing first"
    summary = re.search(r'<p id="summary" ([^>]*)>(.*?)</p>', dom)
    assert summary is not None
    assert re.sub(r"<[^>]+>", "", summary.group(2)) == \
        "2 targets: 1 healthy, 1 degraded, 0 down, 0 with exporter-side problems"
    assert 'data-healthy="1"' in summary.group(1) and 'data-degraded="1"' in summary.group(1)
    degraded = dom[dom.index('data-target="degraded"'):]
    assert "not ready" in degraded[:degraded.index("</section>")]
    # The inline script ran, and nothing of the page was refused by its Content-Security-Policy.
    assert '<html lang="en" data-refresh="15">' in dom
    assert "Content Security Policy" not in browser.stderr
    assert screenshot.read_bytes()[:8] == PNG_SIGNATURE
