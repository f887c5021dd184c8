"""JSON log lines (``--log-format json``); imported only when asked for, so text logging does not load
python-json-logger."""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from exporter.logs import FIELDS, utc_timestamp


class JsonLineFormatter(JsonFormatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg``, then the event's fields."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s",
                         rename_fields={"levelname": "level", "name": "logger", "message": "msg",
                                        "exc_info": "exc"})

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["ts"] = utc_timestamp(record.created)  # first, so a line reads from its time
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        # The event's fields in one order whichever way they were given (extra= or the context).
        head = {key: log_data.pop(key) for key in ("ts", "level", "logger", "msg", *FIELDS) if key in log_data}
        return head | log_data
