"""Collector `health`: ping, readiness, router health, version, license, and the platform's other services
(JFConnect, Access and its federation targets)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from exporter.client import PING, ApiResult, one_line
from exporter.collectors.base import Collector, CollectorSettings, Occasional, Part, Run, parse_result
from exporter.families import Declarations, Emitter, Family, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.validation import Delay, within
from exporter.values import UnexpectedShape, listed, parse_license_date, safe_url, scalar_text

F = Declarations("health")
F.endpoint(PING, Permission.ANONYMOUS)
READINESS = F.endpoint("/artifactory/api/v1/system/readiness", Permission.ANONYMOUS)
ROUTER_HEALTH = F.endpoint("/router/api/v1/system/health", Permission.NONE)
VERSION = F.endpoint("/artifactory/api/system/version", Permission.ANONYMOUS)
LICENSES = F.endpoint("/artifactory/api/system/licenses", Permission.ADMIN)
LICENSE = F.endpoint("/artifactory/api/system/license", Permission.ADMIN)
# The documents want a token for JFConnect (4.10) and an admin token for Access ping (4.7.4); both are asked
# without credentials first, like the other probes, so a rejected token never makes a service look down.
JFCONNECT_PING = F.endpoint("/jfconnect/api/v1/system/ping", Permission.ANONYMOUS)
JFCONNECT_READINESS = F.endpoint("/jfconnect/api/v1/system/readiness", Permission.ANONYMOUS)
ACCESS_PING = F.endpoint("/access/api/v1/system/ping", Permission.ADMIN)
ACCESS_FEDERATION = F.endpoint("/access/api/v1/system/federation", Permission.ADMIN)

UP = F.gauge("jfrog_up", "1 if /artifactory/api/system/ping answered OK (polled in the background).")
READY = F.gauge("jfrog_ready", "1 if /artifactory/api/v1/system/readiness answered OK.")
# The service identifies a series: an answer may leave out a node id.
ROUTER_SERVICE = F.gauge("jfrog_router_service_healthy",
                         "1 if the router reports the service HEALTHY (the router itself has service_id=\"router\").",
                         "node_id", "service_id", key=("service_id",))
ARTIFACTORY_INFO = F.info("jfrog_artifactory_info", "Artifactory version and revision.", "version", "revision")
# node_id is empty outside HA and licensed_to on the free editions: the type identifies a license.
LICENSE_INFO = F.info("jfrog_license_info", "Installed license (node_id empty outside HA).",
                      "license_type", "licensed_to", "node_id", key=("license_type",))
LICENSE_EXPIRY = F.gauge("jfrog_license_expiry_timestamp_seconds",
                         "License expiry as a Unix timestamp; absent where the JPD reports no date (\"N/R\").",
                         "license_type", "licensed_to", "node_id", key=("license_type",))
SERVICE_UP = F.gauge("jfrog_service_up", "1 if the service's ping answered OK (service: jfconnect, access); absent "
                     "where the JPD runs no such service.", "service")
SERVICE_READY = F.gauge("jfrog_service_ready", "1 if the service's readiness probe answered OK (service: jfconnect).",
                        "service")
FEDERATION_TARGETS = F.gauge("jfrog_access_federation_targets",
                             "Access Federation targets configured (/access/api/v1/system/federation).")
# A target is identified by its name (the API's server_name); its URL is shown without user-info or query.
FEDERATION_TARGET_INFO = F.info("jfrog_access_federation_target_info",
                                "An Access Federation target: its URL and the entities it federates (comma-separated).",
                                "server_name", "url", "entities")
FEDERATION_TARGET_ACTIVE = F.gauge("jfrog_access_federation_target_active",
                                   "1 if the Access Federation target is active.", "server_name")

#: failures that say the JPD itself is in trouble (not the exporter's credentials or URL): then
#: "not up" and "not ready" are current facts, not stale data
_JPD_FAULTS = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.ERROR, Outcome.BAD_RESPONSE})

_NOT_A_NODE = {"", "not in use", "n/a"}


class HealthSettings(CollectorSettings):
    #: the version changes with an upgrade (a restart), licenses with a renewal, Access Federation targets with
    #: the configuration: read them this often, and when the JPD answers its ping again after it did not
    details_interval: Annotated[Delay, AfterValidator(within(0, 86400, "details_interval"))] = Field(
        900.0, description="how often the version, the licenses and the Access Federation targets are read "
        "(0: every run)")


class HealthCollector(Collector[HealthSettings]):
    name = "health"
    default_interval = 30.0
    description = "ping, readiness, router services, version and license"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Remember which license endpoint this JPD answers, to spend one call per read.
        self._license_endpoint = LICENSES
        self._details = Occasional(self.settings.details_interval, self.interval)
        #: whether the JPD answered its ping OK in the last run
        self._answered = False

    async def collect(self, run: Run) -> None:
        if not self._answered:
            # Back from a restart (or first seen): it may have been an upgrade, or brought a new license.
            self._details.expire()
        probes = [run.part(PING, self._ping), run.part(READINESS, self._readiness),
                  run.part(ROUTER_HEALTH, self._router), run.part(ACCESS_PING, self._service_ping, "access")]
        if self.target.auth.kind == "anonymous":
            up, *_ = await asyncio.gather(*probes)  # without credentials, the probes are all there is to read
        else:
            details = self._details
            up, *_ = await asyncio.gather(*probes, details.part(run, VERSION, self._version),
                                          details.part(run, self._license_endpoint, self._licenses),
                                          self._jfconnect(run), details.part(run, ACCESS_FEDERATION,
                                                                             self._access_federation))
        self._answered = up is True

    async def _jfconnect(self, run: Run) -> None:
        # Readiness after ping: its 503 says "not ready" only from a service that answers its ping.
        up = await run.part(JFCONNECT_PING, self._service_ping, "jfconnect")
        await run.part(JFCONNECT_READINESS, self._service_readiness, "jfconnect", up is True)

    @staticmethod
    async def _ping(part: Part) -> bool:
        # Without credentials first: a rejected token cannot make the JPD look down. A URL that leads
        # elsewhere is misconfigured, and says nothing about the JPD either.
        result = await part.client.ping()
        up = result.ok and parse_ping(result.body)
        part.out.gauge(UP, up)
        part.current_on_failure = result.outcome in _JPD_FAULTS
        result.require()
        return up

    @staticmethod
    async def _readiness(part: Part) -> None:
        result = await part.client.probe(READINESS, accept=frozenset({200, 503}))
        if result.ok or result.outcome in _JPD_FAULTS:  # a JPD before the endpoint existed has no readiness to tell
            part.out.gauge(READY, result.ok and result.status == 200 and parse_readiness(result.body))
        part.current_on_failure = result.outcome in _JPD_FAULTS
        result.require()

    @staticmethod
    async def _service_ping(part: Part, service: str) -> bool:
        return await _service_probe(part, SERVICE_UP, service, frozenset({200}))

    @staticmethod
    async def _service_readiness(part: Part, service: str, pinged: bool) -> bool:
        # A service that answers its ping and is not ready answers 503: data, not a failure. Without that
        # ping, a 503 may as well come from a JPD (or a proxy) that answers nothing else: the JPD's fault.
        return await _service_probe(part, SERVICE_READY, service, frozenset({200, 503}) if pinged else frozenset({200}))

    @staticmethod
    async def _access_federation(part: Part) -> None:
        federation_families(parse_result(parse_access_federation, await part.get()), part.out)

    @staticmethod
    async def _router(part: Part) -> None:
        result = await part.client.probe(ROUTER_HEALTH, accept=frozenset({200, 503}))
        router_families(parse_result(parse_router_health, result), part.out)

    @staticmethod
    async def _version(part: Part) -> None:
        version_families(parse_result(parse_version, await part.get()), part.out)

    async def _licenses(self, part: Part) -> None:
        result = await self._get_licenses(part)
        license_families(parse_result(parse_licenses, result), part.out)

    async def _get_licenses(self, part: Part) -> ApiResult:
        result = await part.get(self._license_endpoint)
        if result.unsupported and self._license_endpoint == LICENSES:
            # Editions without the HA endpoint answer the single-license one.
            result = await part.get(LICENSE)
            if result.ok:
                self._license_endpoint = LICENSE
        return result


async def _service_probe(part: Part, family: Family, service: str, accept: frozenset[int]) -> bool:
    """One probe of a service: 1 if it said OK, 0 if it refused or the JPD does not answer.

    An edition without the service answers 404 (unsupported: no series). Rejected credentials and a
    200 that is not the probe's answer (a page from a proxy) say nothing about the service: no series.
    """
    result = await part.client.probe(part.endpoint, expect="text", accept=accept)
    said_ok = result.ok and parse_service_probe(result.body)
    if result.ok and result.status == 200 and not said_ok:
        raise CollectionError(Outcome.BAD_RESPONSE, f"{part.endpoint}: expected OK, got {one_line(result.body, 60)!r}")
    if result.ok or result.outcome in _JPD_FAULTS:
        part.out.gauge(family, said_ok and result.status == 200, service=service)
    part.current_on_failure = result.outcome in _JPD_FAULTS
    result.require()
    return said_ok and result.status == 200


def federation_families(targets: list[FederationTarget], out: Emitter) -> None:
    out.touch(FEDERATION_TARGET_INFO, FEDERATION_TARGET_ACTIVE)
    out.gauge(FEDERATION_TARGETS, len(targets))
    for target in targets:
        out.info(FEDERATION_TARGET_INFO, server_name=target.name, url=target.url, entities=",".join(target.entities))
        out.gauge(FEDERATION_TARGET_ACTIVE, target.active, server_name=target.name)


def router_families(services: list[ServiceHealth], out: Emitter) -> None:
    out.touch(ROUTER_SERVICE)
    for svc in services:
        out.gauge(ROUTER_SERVICE, svc.healthy, node_id=svc.node_id, service_id=svc.service_id)


def version_families(version: tuple[str, str], out: Emitter) -> None:
    number, revision = version
    out.info(ARTIFACTORY_INFO, version=number, revision=revision)


def license_families(licenses: list[License], out: Emitter) -> None:
    out.touch(LICENSE_INFO, LICENSE_EXPIRY)
    for lic in licenses:
        labels = {"license_type": lic.license_type, "licensed_to": lic.licensed_to, "node_id": lic.node_id}
        out.info(LICENSE_INFO, **labels)
        out.gauge(LICENSE_EXPIRY, lic.expires, **labels)


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceHealth:
    node_id: str
    service_id: str
    healthy: bool


@dataclass(frozen=True, slots=True)
class FederationTarget:
    name: str
    url: str
    entities: tuple[str, ...]
    #: None where the answer does not say
    active: bool | None


@dataclass(frozen=True, slots=True)
class License:
    license_type: str
    licensed_to: str
    node_id: str
    expires: float | None


def parse_ping(body: object) -> bool:
    return isinstance(body, str) and body.strip().upper() == "OK"


def parse_readiness(body: object) -> bool:
    code = body.get("code") if isinstance(body, dict) else None
    return isinstance(code, str) and code.upper() == "OK"


def parse_service_probe(body: object) -> bool:
    """JFConnect answers "Ok", Access "OK" (4.10.1, 4.7.4): plain text, in either case."""
    return isinstance(body, str) and body.strip().upper() == "OK"


def parse_access_federation(body: object) -> list[FederationTarget]:
    """The targets of 4.7.7.1, wrapped in "configurations". Only what is no secret is kept: the URL
    without user-info or query, never the filters' patterns or any credential."""
    targets: dict[str, FederationTarget] = {}
    for entry in listed(body, "access federation", "configurations"):
        if not isinstance(entry, dict):
            raise UnexpectedShape("access federation", "JSON objects", entry)
        entities = entry.get("entities")
        names = sorted({scalar_text(e).lower() for e in entities if scalar_text(e)}) \
            if isinstance(entities, list) else []
        active = entry.get("active")
        target = FederationTarget(scalar_text(entry.get("name")), safe_url(entry.get("url")), tuple(names),
                                  active if isinstance(active, bool) else None)
        targets.setdefault(target.name, target)  # a name listed twice is one target
    return list(targets.values())


def parse_router_health(body: object) -> list[ServiceHealth]:
    """The router and each registered service; a 503 carries the same body."""
    if not isinstance(body, dict):
        raise UnexpectedShape("router health", "a JSON object", body)
    services: list[ServiceHealth] = []
    router = body.get("router")
    if isinstance(router, dict):
        services.append(ServiceHealth(scalar_text(router.get("node_id")), "router", _is_healthy(router)))
    entries = body.get("services") or []
    if not isinstance(entries, list):
        raise UnexpectedShape("router health: services", "a JSON array", entries)
    for entry in entries:
        if isinstance(entry, dict) and scalar_text(entry.get("service_id")):
            services.append(ServiceHealth(scalar_text(entry.get("node_id")), scalar_text(entry["service_id"]),
                                          _is_healthy(entry)))
    return _least_healthy(services)


def _least_healthy(services: list[ServiceHealth]) -> list[ServiceHealth]:
    """One entry per node and service: one listed twice is healthy only if every entry says so."""
    merged: dict[tuple[str, str], ServiceHealth] = {}
    for service in services:
        key = (service.node_id, service.service_id)
        known = merged.get(key)
        if known is None or (known.healthy and not service.healthy):
            merged[key] = service
    return list(merged.values())


def _is_healthy(entry: dict[str, Any]) -> bool:
    state = entry.get("state")
    return isinstance(state, str) and state.upper() == "HEALTHY"


def parse_version(body: object) -> tuple[str, str]:
    if not isinstance(body, dict) or "version" not in body:
        raise UnexpectedShape("version", "an object with 'version'", body)
    return scalar_text(body["version"]), scalar_text(body.get("revision"))


def parse_licenses(body: object) -> list[License]:
    """Single-license objects and the HA list; "N/R" (Cloud) has no expiry.

    Several unassigned HA licenses share the same labels: keep the earliest
    expiry, the one that matters first.
    """
    wrapped = isinstance(body, list) or (isinstance(body, dict) and "licenses" in body)
    entries = listed(body, "licenses", "licenses") if wrapped else [body]
    by_labels: dict[tuple[str, str, str], License] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise UnexpectedShape("licenses", "JSON objects", entry)
        node = scalar_text(entry.get("nodeId"))
        lic = License(
            license_type=scalar_text(entry.get("type")),
            licensed_to=scalar_text(entry.get("licensedTo")),
            node_id="" if node.strip().lower() in _NOT_A_NODE else node,
            expires=parse_license_date(entry.get("validThrough")),
        )
        key = (lic.license_type, lic.licensed_to, lic.node_id)
        known = by_labels.get(key)
        if known is None or (lic.expires is not None and (known.expires is None or lic.expires < known.expires)):
            by_labels[key] = lic
    return list(by_labels.values())


