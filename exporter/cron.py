"""Quartz cron expressions, as Artifactory schedules replications: when did one last fire?

Artifactory writes Quartz expressions: seconds, minutes, hours, day of month,
month, day of week (1 = Sunday, or SUN-SAT) and an optional year, with ``?``
for "no specific value". Lists, ranges and steps are read; the rarer day
forms (``L``, ``W``, ``#``) are not: :func:`parse` returns None for them, and
a caller then treats the schedule as unknown (the replication may run at any
time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
#: (lowest, highest, names) of each field, in the order Quartz writes them
_FIELDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, {}), (0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (1, 7, _DAYS), (1970, 2199, {}))
_TERM = re.compile(r"^(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?$")
#: how far back a last fire time is looked for (a yearly schedule, a leap day)
_SEARCH_DAYS = 4 * 366 + 1


@dataclass(frozen=True, slots=True)
class Schedule:
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    #: None: any day of the month (``*`` or ``?``)
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    #: None: any day of the week; Quartz numbering, 1 = Sunday
    days_of_week: frozenset[int] | None
    years: frozenset[int] | None

    def _runs_on(self, day: date) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        by_month = self.days_of_month is None or day.day in self.days_of_month
        by_week = self.days_of_week is None or (day.isoweekday() % 7 + 1) in self.days_of_week
        if self.days_of_month is not None and self.days_of_week is not None:
            return by_month or by_week  # both restricted (not valid Quartz): classic cron's either-or
        return by_month and by_week

    def last_fire(self, at: datetime) -> datetime | None:
        """The latest time at or before ``at`` (an aware datetime) when the schedule fired; None if none is near."""
        limit = at.replace(microsecond=0)
        zone = at.tzinfo
        for back in range(_SEARCH_DAYS):
            day = limit.date() - timedelta(days=back)
            if not self._runs_on(day):
                continue
            fired = self._latest_in_day(day, limit.time() if back == 0 else None, zone)
            if fired is not None:
                return fired
        return None

    def _latest_in_day(self, day: date, until: time | None, zone: tzinfo | None) -> datetime | None:
        def moment(hour: int, minute: int, second: int) -> datetime:
            return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)

        if until is None:
            return moment(self.hours[-1], self.minutes[-1], self.seconds[-1])
        for hour in reversed(self.hours):
            if hour < until.hour:
                return moment(hour, self.minutes[-1], self.seconds[-1])
            if hour > until.hour:
                continue
            for minute in reversed(self.minutes):
                if minute < until.minute:
                    return moment(hour, minute, self.seconds[-1])
                if minute > until.minute:
                    continue
                for second in reversed(self.seconds):
                    if second <= until.second:
                        return moment(hour, minute, second)
        return None


def parse(expression: str) -> Schedule | None:
    """The schedule of a Quartz expression, or None when it cannot be read here."""
    fields = expression.split()
    if len(fields) not in (6, 7):
        return None
    values: list[frozenset[int] | None] = []
    for text, (low, high, names) in zip(fields, _FIELDS, strict=False):
        values.append(_field(text.upper(), low, high, names))
    if len(fields) == 6:
        values.append(None)
    seconds, minutes, hours, dom, months, dow, years = values
    if seconds is None or minutes is None or hours is None or months is None:
        return None  # "?" belongs to the day fields only
    if (dom is None and fields[3] not in ("*", "?")) or (dow is None and fields[5] not in ("*", "?")):
        return None
    if len(fields) == 7 and years is None and fields[6] != "*":
        return None
    return Schedule(tuple(sorted(seconds)), tuple(sorted(minutes)), tuple(sorted(hours)),
                    None if fields[3] in ("*", "?") else dom, months,
                    None if fields[5] in ("*", "?") else dow,
                    None if len(fields) == 6 or fields[6] == "*" else years)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int] | None:
    """The values a field allows; None for "?" or a form this module does not read."""
    if text == "?":
        return None
    allowed: set[int] = set()
    for term in text.split(","):
        match = _TERM.match(term)
        if match is None:
            return None
        star, first, last, step = match.groups()
        try:
            start = low if star else _value(first, names)
            end = high if star or (last is None and step is not None) else _value(last or first, names)
        except ValueError:
            return None
        increment = int(step) if step else 1
        if not (low <= start <= high and low <= end <= high) or increment < 1:
            return None
        if end < start:  # a range that wraps, like FRI-MON
            allowed.update(range(start, high + 1, increment))
            allowed.update(range(low, end + 1, increment))
        else:
            allowed.update(range(start, end + 1, increment))
    return frozenset(allowed) if allowed else None


def _value(text: str, names: dict[str, int]) -> int:
    if text in names:
        return names[text]
    if not text.isdigit():
        raise ValueError(text)
    return int(text)
