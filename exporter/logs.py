"""Logging for people (text) and for pipelines (JSON), with the same fields in both.

An event about a target, a collector or a part carries them as fields
(``target``, ``collector``, ``endpoint``, ``outcome``, ``duration_seconds``),
passed with ``extra=`` where the event is logged. Code that runs inside a run
or a part (a collector, the client, the emitter) inherits the target,
collector and endpoint from :func:`context`, so its lines can be filtered the
same way without every call site naming them.

Third-party libraries log every request and every scheduler tick at debug
level: they stay at WARNING unless asked for (``debug_libraries``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator, Mapping

#: fields an event may carry besides its message, in the order they are shown
FIELDS = ("target", "collector", "endpoint", "outcome", "duration_seconds")
#: the fields that say where an event happened; the text format puts them before the message
WHERE = ("target", "collector", "endpoint")
#: libraries whose debug and info lines are requests, scheduler ticks and event-loop details
LIBRARIES = ("asyncio", "tzlocal", "apscheduler", "httpx", "httpcore", "aiohttp", "hpack", "urllib3")
OWN = "exporter"

_where: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("log_where", default=None)


@contextlib.contextmanager
def context(**where: str) -> Iterator[None]:
    """Lines logged inside (this task and the tasks it starts) carry ``where`` unless they say otherwise."""
    token = _where.set({**(_where.get() or {}), **where})
    try:
        yield
    finally:
        _where.reset(token)


def utc_timestamp(created: float) -> str:
    """ISO 8601 in UTC to the millisecond: ``2025-06-01T10:00:00.123Z``."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class ContextFilter(logging.Filter):
    """Adds the current context's fields to a record that does not carry them already."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_where.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class LibraryFilter(logging.Filter):
    """Drops other libraries' lines below WARNING, whatever level their logger was left at."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name == OWN or record.name.startswith(OWN + ".")


class TextFormatter(logging.Formatter):
    """``2025-06-01T10:00:00.123Z WARNING target=prod collector=storage: failed: ...``

    The exporter's own logger names are left out (the fields say where); another library's name is shown.
    """

    def format(self, record: logging.LogRecord) -> str:
        where = " ".join(f"{key}={getattr(record, key)}" for key in WHERE if getattr(record, key, None))
        source = "" if record.name == OWN or record.name.startswith(OWN + ".") else record.name
        about = " ".join(p for p in (source, where) if p)
        about += ": " if about else ""
        line = f"{utc_timestamp(record.created)} {record.levelname} {about}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str, fmt: str = "text", debug_libraries: bool = False) -> None:
    """Send every line to standard error in ``fmt``; other libraries stay at WARNING unless ``debug_libraries``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from exporter.jsonlog import JsonLineFormatter  # its library only where JSON is asked for

        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(ContextFilter())
    if not debug_libraries:
        handler.addFilter(LibraryFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in LIBRARIES:
        # At the logger, not only the handler: httpx would otherwise build a record for every request.
        logging.getLogger(name).setLevel(logging.NOTSET if debug_libraries else max(logging.WARNING, root.level))
