"""Quartz cron expressions as Artifactory schedules replications: the last fire time before a moment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from exporter import cron

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 1, 21, 5, 30, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(("expression", "fired"), [
    ("0 0 */2 * * ?", datetime(2026, 12, 1, 20, 0, tzinfo=UTC)),        # the simulator's and a common default
    ("0 0 12 * * ?", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
    ("0 15,45 * * * ?", datetime(2026, 12, 1, 20, 45, tzinfo=UTC)),
    ("30 5 21 * * ?", datetime(2026, 12, 1, 21, 5, 30, tzinfo=UTC)),    # at the very moment: fired
    ("31 5 21 * * ?", datetime(2026, 11, 30, 21, 5, 31, tzinfo=UTC)),   # one second later: yesterday's
    ("0 30 2 ? * MON-FRI", datetime(2026, 12, 1, 2, 30, tzinfo=UTC)),
    ("0 0 3 ? * SAT,SUN", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),
    ("0 0 3 ? * 1", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),          # Quartz: 1 is Sunday
    ("0 0 3 ? * FRI-MON", datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),    # a range across the week's end
    ("0 0 0 1 JAN ?", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ("0 0 0 29 2 ?", datetime(2024, 2, 29, 0, 0, tzinfo=UTC)),          # leap days only
    ("0 0/20 8-18 ? * * 2025", datetime(2025, 12, 31, 18, 40, tzinfo=UTC)),
])
def test_last_fire(expression: str, fired: datetime) -> None:
    schedule = cron.parse(expression)
    assert schedule is not None
    assert schedule.last_fire(AT) == fired


def test_the_servers_time_zone_moves_the_fire() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    fired = cron.parse("0 0 22 * * ?").last_fire(AT.astimezone(berlin))  # type: ignore[union-attr]
    assert fired == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)


@pytest.mark.parametrize("expression", [
    "", "0 0 12 * *", "0 0 12 L * ?", "0 0 12 ? * 6#3", "0 0 12 15W * ?", "0 61 * * * ?", "? 0 0 * * ?",
    "0 0 12 * * ? 1900", "0 0 12 * * ? 2026 extra", "0 0 */0 * * ?", "zero 0 0 * * ?",
])
def test_forms_not_read_give_no_schedule(expression: str) -> None:
    assert cron.parse(expression) is None


def test_a_schedule_that_never_fires_near_gives_no_time() -> None:
    assert cron.parse("0 0 0 1 1 ? 2199").last_fire(AT) is None  # type: ignore[union-attr]
