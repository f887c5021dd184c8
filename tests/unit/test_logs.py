"""The log formats, their fields and the logging settings."""

from __future__ import annotations

import json
import logging

import pytest

from exporter.config import ConfigError, TargetConfig, load_log_settings
from exporter.jsonlog import JsonLineFormatter
from exporter.logs import LibraryFilter, TextFormatter, context, utc_timestamp
from exporter.scheduler import Engine


def _record(name: str = "exporter.scheduler", level: int = logging.WARNING, msg: str = "failed: %s",
            args: tuple[object, ...] = ("timeout",), **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, None)
    record.created = 1_750_000_000.25
    for key, val in extra.items():
        setattr(record, key, val)
    return record


def test_timestamps_are_utc_to_the_millisecond() -> None:
    assert utc_timestamp(1_750_000_000.25) == "2025-06-15T15:06:40.250Z"
    assert utc_timestamp(0.9999) == "1970-01-01T00:00:00.999Z"


def test_json_lines_carry_the_fields_of_the_event() -> None:
    line = JsonLineFormatter().format(_record(target="prod", collector="storage", endpoint="/e", outcome="timeout",
                                              duration_seconds=1.5))
    assert json.loads(line) == {"ts": "2025-06-15T15:06:40.250Z", "level": "warning", "logger": "exporter.scheduler",
                                "msg": "failed: timeout", "target": "prod", "collector": "storage", "endpoint": "/e",
                                "outcome": "timeout", "duration_seconds": 1.5}
    assert list(json.loads(line))[:4] == ["ts", "level", "logger", "msg"]


def test_text_lines_read_as_a_sentence_with_where_first() -> None:
    formatter = TextFormatter()
    assert formatter.format(_record(target="prod", collector="storage", endpoint="/e", outcome="timeout")) == \
        "2025-06-15T15:06:40.250Z WARNING target=prod collector=storage endpoint=/e: failed: timeout"
    assert formatter.format(_record(msg="serving on %s", args=("x",), level=logging.INFO)) == \
        "2025-06-15T15:06:40.250Z INFO serving on x"
    assert formatter.format(_record(name="httpx", msg="HTTP Request", args=(), level=logging.INFO)) == \
        "2025-06-15T15:06:40.250Z INFO httpx: HTTP Request"


def test_lines_inside_a_context_carry_it(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.logs import ContextFilter

    caplog.handler.addFilter(ContextFilter())
    log = logging.getLogger("exporter.test")
    with caplog.at_level(logging.INFO), context(target="prod", collector="storage"):
        with context(endpoint="/e"):
            log.info("inside a part")
        log.info("after it", extra={"target": "explicit"})
    inside, after = caplog.records
    assert (inside.target, inside.collector, inside.endpoint) == ("prod", "storage", "/e")  # type: ignore[attr-defined]
    assert after.target == "explicit" and not hasattr(after, "endpoint")  # type: ignore[attr-defined]


def test_other_libraries_below_warning_are_left_out() -> None:
    keep = LibraryFilter().filter
    assert keep(_record(name="exporter.client", level=logging.DEBUG))
    assert not keep(_record(name="httpcore.http11", level=logging.DEBUG))
    assert not keep(_record(name="apscheduler.scheduler", level=logging.INFO))
    assert keep(_record(name="aiohttp.server", level=logging.ERROR))


def test_log_settings_come_from_flags_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JFROG_EXPORTER_LOG_FORMAT", "json")
    monkeypatch.setenv("JFROG_EXPORTER_DEBUG_LIBRARIES", "1")
    settings = load_log_settings()
    assert (settings.log_level, settings.log_format, settings.debug_libraries) == ("info", "json", True)
    assert load_log_settings("debug", "text").log_format == "text"
    monkeypatch.setenv("JFROG_EXPORTER_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="JFROG_EXPORTER_LOG_FORMAT"):
        load_log_settings()


def test_target_info_shows_a_url_that_cannot_carry_user_info() -> None:
    with pytest.raises(ValueError, match="credentials must not be part of the URL"):
        TargetConfig.model_validate({"url": "https://user:secret@jpd.example"})
    engine = Engine([TargetConfig.model_validate({"name": "t", "url": "https://jpd.example/artifactory/"})])
    urls = [s.labels["url"] for f in engine._target_metrics("t") for s in f.samples
            if s.name == "jfrog_exporter_target_info"]
    assert urls == ["https://jpd.example"]
