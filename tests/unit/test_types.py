"""mypy in strict mode (configured in pyproject.toml) finds nothing in the package."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_mypy_strict_reports_nothing() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=REPO, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
