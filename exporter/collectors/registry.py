"""The collectors the exporter knows, by name (like node_exporter's registry)."""

from __future__ import annotations

from exporter.collectors.base import Collector
from exporter.collectors.health import HealthCollector
from exporter.collectors.storage import StorageCollector

COLLECTORS: dict[str, type[Collector]] = {
    cls.name: cls
    for cls in (
        HealthCollector,
        StorageCollector,
    )
}
