"""The value formats Artifactory renders for humans (storageinfo, licenses, replication)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exporter.values import (
    parse_count,
    parse_iso_timestamp,
    parse_license_date,
    parse_percent_ratio,
    parse_size,
)

GB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("125,726", 125726),
        ("2,176,580", 2176580),
        (42, 42),
        ("0", 0),
        ("N/A", None),
        (None, None),
        ("lots", None),
        (True, None),
    ],
)
def test_counts(text: object, expected: float | None) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.48 GB", 3.48 * GB),
        ("59.77 GB", 59.77 * GB),
        ("0 bytes", 0),
        ("1 KB", 1024),
        ("1.50 MB", 1.5 * 1024**2),
        ("2 TB", 2 * 1024**4),
        ("32.22 GB (15.77%)", 32.22 * GB),
        ("172.06 GB (84.23%)", 172.06 * GB),
        ("1,024.5 MB", 1024.5 * 1024**2),
        ("N/A", None),
        ("", None),
        ("12 parsecs", None),
        (5_000_000, 5_000_000),
    ],
)
def test_sizes_are_1024_based(text: object, expected: float | None) -> None:
    result = parse_size(text)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5.82%", 0.0582), ("0%", 0.0), ("100%", 1.0), ("N/A", None), ("abc", None)],
)
def test_percentages(text: str, expected: float | None) -> None:
    result = parse_percent_ratio(text)
    assert result == (pytest.approx(expected) if expected is not None else None)


def test_license_dates() -> None:
    assert parse_license_date("May 15, 2014") == datetime(2014, 5, 15, tzinfo=UTC).timestamp()
    assert parse_license_date("Dec 1, 2027") == datetime(2027, 12, 1, tzinfo=UTC).timestamp()
    assert parse_license_date("N/R") is None  # JFrog Cloud
    assert parse_license_date("<validity date formatted MMM DD, YYYY>") is None


def test_iso_timestamps_with_offsets() -> None:
    # 2.3.1.5 sample: 15:08:49.050 at +02:00 is 13:08:49.050 UTC.
    expected = datetime(2015, 12, 27, 13, 8, 49, 50_000, tzinfo=UTC).timestamp()
    assert parse_iso_timestamp("2015-12-27T15:08:49.050+02:00") == pytest.approx(expected)
    assert parse_iso_timestamp("2015-12-27T15:08:49.050+0200") == pytest.approx(expected)
    assert parse_iso_timestamp("2015-12-27T13:08:49.050Z") == pytest.approx(expected)
    assert parse_iso_timestamp(None) is None
    assert parse_iso_timestamp("yesterday") is None
    assert parse_iso_timestamp(1_451_221_729_050) == pytest.approx(1_451_221_729.05)
