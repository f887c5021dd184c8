"""ruff (pinned in the test extras, explicit rule selection in pyproject.toml) is part of the tests."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_ruff_reports_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
