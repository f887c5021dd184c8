"""Reloading the configuration while serving: on SIGHUP, and on POST /-/reload where enabled.

The configuration is read again from the same sources (file, environment, flags); its targets are
applied to the running engine, which keeps every snapshot of what stays. A configuration that does not
load is refused with one log line, and the running one stays. The listen address and the web
configuration are read at start only; a shard (--shard) applies to the new configuration as to the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from exporter.config import ConfigError, ExporterConfig, load_config
from exporter.scheduler import CollectionThread
from exporter.sharding import describe

log = logging.getLogger(__name__)

#: what a reload cannot change in a running process
_AT_START_ONLY = ("listen", "web_config_file")


class ReloadRefused(Exception):
    """The new configuration does not load; the running one stays."""


class Reloader:
    def __init__(self, overrides: dict[str, Any], running: ExporterConfig) -> None:
        self._overrides = overrides
        self._running = running
        self._lock = asyncio.Lock()
        #: set once collection runs
        self.collection: CollectionThread | None = None
        #: the running targets, updated in place: what the landing page shows
        self.targets = list(running.targets)

    async def reload(self) -> str:
        """Apply the configuration as it reads now; returns what changed. Raises ReloadRefused."""
        async with self._lock:
            try:
                config = load_config(self._overrides)
            except ConfigError as exc:
                log.error("reload refused: %s; the running configuration stays", exc)
                raise ReloadRefused(str(exc)) from None
            fixed = [name for name in _AT_START_ONLY if getattr(config, name) != getattr(self._running, name)]
            if fixed:
                log.warning("reload: %s changed, which takes a restart to apply", ", ".join(fixed))
            if self.collection is None:
                raise ReloadRefused("collection has not started yet")
            changes = await self.collection.apply(config.targets)
            self._running = config
            self.targets[:] = config.targets
            summary = ", ".join(changes) or "no target changed"
            log.info("configuration reloaded: %s", summary)
            log_shard(config)
            return summary

    def on_signal(self) -> None:
        """SIGHUP: reload in the background; a refusal is logged by :meth:`reload`."""
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    async def _reload_quietly(self) -> None:
        with contextlib.suppress(ReloadRefused):  # already logged
            await self.reload()


def log_shard(config: ExporterConfig) -> None:
    """With a shard: how many of the configured targets it takes (at start and after each reload)."""
    if config.shard is None:
        return
    names = [t.name for t in config.targets]
    log.info("%s", describe(config.shard, names, config.configured_targets),
             extra={"shard": str(config.shard), "targets": names, "configured_targets": config.configured_targets})


#: reloads started by a signal, kept referenced until they end
_pending: set[asyncio.Task[None]] = set()
