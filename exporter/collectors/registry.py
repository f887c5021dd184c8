"""The collectors the exporter knows, by name (like node_exporter's registry)."""

from __future__ import annotations

from typing import Any

from exporter.collectors.activity import ActivityCollector
from exporter.collectors.base import Collector
from exporter.collectors.distribution import DistributionCollector
from exporter.collectors.federation import FederationCollector
from exporter.collectors.health import HealthCollector
from exporter.collectors.maintenance import MaintenanceCollector
from exporter.collectors.openmetrics import OpenMetricsCollector
from exporter.collectors.replication import ReplicationCollector
from exporter.collectors.security import SecurityCollector
from exporter.collectors.storage import StorageCollector
from exporter.collectors.webhooks import WebhooksCollector
from exporter.collectors.workers import WorkersCollector

COLLECTORS: dict[str, type[Collector[Any]]] = {
    cls.name: cls
    for cls in (
        HealthCollector,
        StorageCollector,
        ReplicationCollector,
        FederationCollector,
        OpenMetricsCollector,
        MaintenanceCollector,
        WorkersCollector,
        SecurityCollector,
        ActivityCollector,
        DistributionCollector,
        WebhooksCollector,
    )
}
