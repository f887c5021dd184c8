"""One module of routes per API area; each has ``add_routes(router)``."""

from __future__ import annotations

from types import ModuleType

from exporter.simulator.routes import (
    aql,
    distribution,
    federation,
    legacy_security,
    maintenance,
    openmetrics,
    replication,
    repositories,
    security,
    services,
    storage,
    system,
    webhooks,
    workers,
)

ROUTE_MODULES: list[ModuleType] = [system, storage, replication, federation, repositories, openmetrics,
                                   maintenance, workers, security, legacy_security, aql,
                                   services, distribution, webhooks]
