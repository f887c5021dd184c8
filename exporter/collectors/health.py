"""Collector `health`: ping, readiness, router health, version and license."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import Metric

from exporter.client import ApiResult, CollectionError, JfrogClient
from exporter.collectors.base import Collector, parse_result
from exporter.metrics import MetricSet
from exporter.values import parse_license_date

PING = "/artifactory/api/system/ping"
READINESS = "/artifactory/api/v1/system/readiness"
ROUTER_HEALTH = "/router/api/v1/system/health"
VERSION = "/artifactory/api/system/version"
LICENSES = "/artifactory/api/system/licenses"
LICENSE = "/artifactory/api/system/license"

_NOT_A_NODE = {"", "not in use", "n/a"}


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    node_id: str
    service_id: str
    healthy: bool


@dataclass(frozen=True, slots=True)
class License:
    license_type: str
    licensed_to: str
    node_id: str
    expires: float | None


def parse_ping(body: object) -> bool:
    return isinstance(body, str) and body.strip().upper() == "OK"


def parse_readiness(body: object) -> bool:
    return isinstance(body, dict) and str(body.get("code", "")).upper() == "OK"


def parse_router_health(body: object) -> list[ServiceHealth]:
    """The router and each registered service; a 503 carries the same body."""
    if not isinstance(body, dict):
        raise ValueError("router health: expected a JSON object")
    services: list[ServiceHealth] = []
    router = body.get("router")
    if isinstance(router, dict):
        services.append(ServiceHealth(str(router.get("node_id", "")), "router", _is_healthy(router)))
    for entry in body.get("services") or []:
        if isinstance(entry, dict) and entry.get("service_id"):
            services.append(ServiceHealth(str(entry.get("node_id", "")), str(entry["service_id"]), _is_healthy(entry)))
    return services


def _is_healthy(entry: dict[str, Any]) -> bool:
    return str(entry.get("state", "")).upper() == "HEALTHY"


def parse_version(body: object) -> tuple[str, str]:
    if not isinstance(body, dict) or "version" not in body:
        raise ValueError("version: expected an object with 'version'")
    return str(body["version"]), str(body.get("revision", ""))


def parse_licenses(body: object) -> list[License]:
    """Single-license objects and the HA list; "N/R" (Cloud) has no expiry.

    Several unassigned HA licenses share the same labels: keep the earliest
    expiry, the one that matters first.
    """
    entries = body if isinstance(body, list) else [body]
    by_labels: dict[tuple[str, str, str], License] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("license: expected JSON objects")
        node = str(entry.get("nodeId") or "")
        lic = License(
            license_type=str(entry.get("type") or ""),
            licensed_to=str(entry.get("licensedTo") or ""),
            node_id="" if node.strip().lower() in _NOT_A_NODE else node,
            expires=parse_license_date(entry.get("validThrough")),
        )
        key = (lic.license_type, lic.licensed_to, lic.node_id)
        known = by_labels.get(key)
        if known is None or (lic.expires is not None and (known.expires is None or lic.expires < known.expires)):
            by_labels[key] = lic
    return list(by_labels.values())


UP_HELP = "1 if /artifactory/api/system/ping answered OK (polled in the background)."
READY_HELP = "1 if /artifactory/api/v1/system/readiness answered OK."
ROUTER_HELP = "1 if the router reports the service HEALTHY (the router itself has service_id=\"router\")."
INFO_HELP = "Artifactory version and revision."
LICENSE_HELP = "Installed license (node_id empty outside HA)."
EXPIRY_HELP = "License expiry as a Unix timestamp; absent where the JPD reports no date (\"N/R\")."


class HealthCollector(Collector):
    name = "health"
    default_interval = 30.0
    description = "ping, readiness, router services, version and license"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Remember which license endpoint this JPD answers, to spend one call per run.
        self._license_endpoint = LICENSES

    async def collect(self, client: JfrogClient) -> list[Metric]:
        ping, readiness, router, version, licenses = await asyncio.gather(
            client.get(PING, expect="text"),
            client.get(READINESS, accept=frozenset({200, 503})),
            client.get(ROUTER_HEALTH, accept=frozenset({200, 503})),
            client.get(VERSION),
            self._get_licenses(client),
        )
        metrics = MetricSet(self.target.name)
        up = ping.ok and parse_ping(ping.body)
        metrics.gauge("jfrog_up", UP_HELP, 1.0 if up else 0.0)
        metrics.gauge("jfrog_ready", READY_HELP, 1.0 if readiness.ok and readiness.status == 200
                      and parse_readiness(readiness.body) else 0.0)
        metrics.declare("jfrog_router_service_healthy", ROUTER_HELP)
        if router.ok:
            for svc in parse_result(parse_router_health, router):
                metrics.gauge("jfrog_router_service_healthy", ROUTER_HELP, 1.0 if svc.healthy else 0.0,
                              node_id=svc.node_id, service_id=svc.service_id)
        if not ping.ok:
            # The JPD did not answer: report it down now, keep the last version and license.
            raise CollectionError(ping.outcome, f"{PING}: {ping.reason}", partial=metrics.families())
        for result in (version, licenses):
            if not (result.ok or result.unsupported):
                raise CollectionError(result.outcome, f"{result.endpoint}: {result.reason}",
                                      partial=metrics.families())
        if version.ok:
            ver, rev = parse_result(parse_version, version)
            metrics.info("jfrog_artifactory_info", INFO_HELP, version=ver, revision=rev)
        metrics.declare("jfrog_license_info", LICENSE_HELP)
        metrics.declare("jfrog_license_expiry_timestamp_seconds", EXPIRY_HELP)
        if licenses.ok:
            for lic in parse_result(parse_licenses, licenses):
                labels = {"license_type": lic.license_type, "licensed_to": lic.licensed_to, "node_id": lic.node_id}
                metrics.info("jfrog_license_info", LICENSE_HELP, **labels)
                metrics.gauge("jfrog_license_expiry_timestamp_seconds", EXPIRY_HELP, lic.expires, **labels)
        return metrics.families()

    async def _get_licenses(self, client: JfrogClient) -> ApiResult:
        result = await client.get(self._license_endpoint)
        if result.unsupported and self._license_endpoint == LICENSES:
            # Editions without the HA endpoint answer the single-license one.
            result = await client.get(LICENSE)
            if result.ok:
                self._license_endpoint = LICENSE
        return result

