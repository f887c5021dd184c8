"""Collector `distribution`: JFrog Distribution's health, Release Bundle v1 distributions, received v2 bundles.

Distribution answers under ``/distribution/api`` of the platform URL, or of
its own URL (``collectors.distribution.url``, for a Distribution reached on a
host of its own); the same credentials serve both. A JPD without
Distribution answers 404 on its ping: the collector reports ``unsupported``
and reads nothing else. With a URL of its own, the same 404 means the URL is
wrong: ``misconfigured``, the exporter's fault, not the JPD's.

Distributions are counted per status (bounded: four documented statuses and
``unknown``). Failures are kept per Release Bundle version and site, and
only where the latest distribution to that site failed (a retry that
completed clears it); the most recent ``max_failures`` get a series each.
Labels carry bundle, version and site names only: no user, no error text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, field_validator

from exporter.client import ApiResult
from exporter.collectors.base import Collector, CollectorSettings, Part, Run, parse_result
from exporter.families import UNKNOWN_STATE, Declarations, Emitter, Permission
from exporter.outcomes import CollectionError, Outcome
from exporter.validation import base_url
from exporter.values import UnexpectedShape, parse_count, parse_iso_timestamp, scalar_text

log = logging.getLogger(__name__)

F = Declarations("distribution")
PING = F.endpoint("/distribution/api/v1/system/ping", Permission.NONE)
INFO = F.endpoint("/distribution/api/v1/system/info", Permission.NONE)
DISTRIBUTIONS = F.endpoint("/distribution/api/v1/release_bundle/distribution", Permission.USER)
RECEIVED = F.endpoint("/distribution/api/v2/release_bundle/received", Permission.ADMIN)

#: the documented statuses of a distribution and of each of its sites (5.6.4), as label values
STATES = ("not_distributed", "in_progress", "completed", "failed")

UP = F.gauge("jfrog_distribution_up",
             "1 if Distribution's ping (/distribution/api/v1/system/ping) answered OK (polled in the background).")
INFO_FAMILY = F.info("jfrog_distribution_info", "Distribution version, from its system info.", "version")
STABLE = F.gauge("jfrog_distribution_stable", "1 if Distribution's system info reports status STABLE.")
DISTRIBUTIONS_FAMILY = F.gauge(
    "jfrog_distribution_distributions",
    "Release Bundle v1 distributions Distribution lists, by status (not_distributed, in_progress, completed, "
    "failed; unknown for a status it does not document).", "status")
FAILED_SITES = F.gauge(
    "jfrog_distribution_failed_sites",
    "Release Bundle v1 versions and sites whose latest distribution failed (all of them, not only those with a "
    "series).")
SITE_FAILED = F.gauge(
    "jfrog_distribution_site_failed_timestamp_seconds",
    "When the latest distribution of a Release Bundle v1 version to a site failed (its finish, else its start); "
    "only the most recent max_failures get a series.", "release_bundle", "version", "site",
    key=("release_bundle", "version"))
OLDEST_IN_PROGRESS = F.gauge(
    "jfrog_distribution_oldest_in_progress_start_timestamp_seconds",
    "When the oldest distribution still in progress started; absent when none is in progress.")
RECEIVED_FAMILY = F.gauge("jfrog_distribution_received_release_bundles",
                          "Release Bundles v2 this Distribution target has received.")

#: failures that say Distribution itself is in trouble: then "not up" is a current fact
_SERVICE_FAULTS = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.ERROR, Outcome.BAD_RESPONSE})
#: Distribution answers its ping with a JSON body and status 500 when a service it needs is down (5.2.1)
_PING_STATUSES = frozenset({200, 500, 503})
#: received Release Bundles read per call; the answer's total usually makes one call enough
RECEIVED_PAGE = 100
RECEIVED_MAX_PAGES = 50


class DistributionSettings(CollectorSettings):
    #: Distribution's base URL when it is not the platform's (``/distribution`` at its end is accepted)
    url: str | None = None
    #: failed (bundle, version, site) that get a series, the most recent first
    max_failures: Annotated[int, Field(ge=0, le=1000)] = 50

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else base_url(value, "/distribution")[0]


class DistributionCollector(Collector[DistributionSettings]):
    name = "distribution"
    default_interval = 300.0
    enabled_by_default = False
    description = "JFrog Distribution: health, version, Release Bundle v1 distributions and failures, " \
                  "received Release Bundles v2"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._paging_warned = False

    @property
    def own_url(self) -> str | None:
        """Distribution's URL when configured apart from the target's."""
        url = self.settings.url
        return url if url and url != self.target.url else None

    async def collect(self, run: Run) -> None:
        if self.own_url:
            run.client = run.client.sibling(self.own_url)
        await run.part(PING, self._ping)
        if run.parts[PING].outcome in (Outcome.UNSUPPORTED, Outcome.MISCONFIGURED):
            for endpoint in (INFO, DISTRIBUTIONS, RECEIVED):
                run.skip(endpoint, needs=PING)
            return
        await asyncio.gather(run.part(INFO, self._info), run.part(DISTRIBUTIONS, self._distributions),
                             run.part(RECEIVED, self._received))

    def _wrong_url(self, answered: str) -> CollectionError:
        return CollectionError(Outcome.MISCONFIGURED,
                               f"{PING} answered {answered} at collectors.distribution.url {self.own_url}: "
                               "this URL does not lead to JFrog Distribution; configure the URL that serves "
                               "Distribution's /distribution/api, e.g. https://acme.jfrog.io (or leave it unset "
                               "to use the target's URL)")

    async def _ping(self, part: Part) -> None:
        # Without credentials first: Distribution's ping needs none, so a rejected token cannot make it look down.
        result = await part.client.probe(PING, expect="text", accept=_PING_STATUSES)
        if result.unsupported:
            if self.own_url:
                raise self._wrong_url(result.reason.split(" (", 1)[0])
            raise CollectionError(Outcome.UNSUPPORTED, f"{PING}: {result.reason} (no Distribution on this JPD)")
        if result.ok:
            healthy = parse_ping(result.body)
            if healthy is not None:
                part.out.gauge(UP, healthy and result.status == 200)
                return
            if result.status == 200:
                if self.own_url:
                    raise self._wrong_url("something else than Distribution's ping")
                raise CollectionError(Outcome.BAD_RESPONSE, f"{PING}: not Distribution's ping answer")
            # An error page in front of Distribution (a proxy's 503): it does not answer.
            part.out.gauge(UP, False)
            part.current_on_failure = True
            raise CollectionError(Outcome.ERROR, f"{PING}: HTTP {result.status} without Distribution's answer")
        if result.outcome in _SERVICE_FAULTS:
            part.out.gauge(UP, False)
            part.current_on_failure = True
        result.require()

    @staticmethod
    async def _info(part: Part) -> None:
        # Needs no credentials either (5.2.2): a rejected token does not hide the version.
        info_families(parse_result(parse_system_info, await part.client.probe(INFO)), part.out)

    async def _distributions(self, part: Part) -> None:
        distributions = parse_result(parse_distributions, await part.get())
        distribution_families(distributions, self.settings.max_failures, part.out)

    async def _received(self, part: Part) -> None:
        count: float = 0
        for page in range(RECEIVED_MAX_PAGES):
            result = await part.get(params={"limit": RECEIVED_PAGE, "offset": page * RECEIVED_PAGE})
            total, entries = parse_result(parse_received, _checked(result))
            if total is not None:
                count = total  # the answer counts them all: no need to page
                break
            count += entries
            if entries < RECEIVED_PAGE:
                break
        else:
            if not self._paging_warned:
                self._paging_warned = True
                log.warning("%s: no total in the answer and more than %d pages: counted the first %d received "
                            "Release Bundles only", RECEIVED, RECEIVED_MAX_PAGES, int(count))
        part.out.gauge(RECEIVED_FAMILY, count)


def _checked(result: ApiResult) -> ApiResult:
    # Distribution before 2.28.1 has no received Release Bundles v2: nothing to count, not a failure.
    if result.unsupported:
        raise CollectionError(Outcome.UNSUPPORTED, f"{result.endpoint}: {result.reason} (Distribution 2.28.1+)")
    return result


_warned_unknown: set[str] = set()


def info_families(info: SystemInfo, out: Emitter) -> None:
    out.info(INFO_FAMILY, version=info.version)
    out.gauge(STABLE, None if info.status is None else info.status == "STABLE")


def distribution_families(distributions: list[Distribution], max_failures: int, out: Emitter) -> None:
    """Counts per status, current failures (the most recent ``max_failures`` with a series), oldest in progress."""
    counts = dict.fromkeys(STATES, 0)
    unknown = 0
    for d in distributions:
        if d.status in counts:
            counts[d.status] += 1
        else:
            unknown += 1
            if d.status not in _warned_unknown:
                _warned_unknown.add(d.status)
                log.warning("distribution status %r is not documented: counted as status=%r", d.status,
                            UNKNOWN_STATE)
    for status, count in counts.items():
        out.gauge(DISTRIBUTIONS_FAMILY, count, status=status)
    if unknown:
        out.gauge(DISTRIBUTIONS_FAMILY, unknown, status=UNKNOWN_STATE)
    failures = current_failures(distributions)
    out.gauge(FAILED_SITES, len(failures))
    out.touch(SITE_FAILED)
    for failure in failures[:max_failures]:
        out.gauge(SITE_FAILED, failure.when, release_bundle=failure.bundle, version=failure.version,
                  site=failure.site)
    started = [d.started for d in distributions if d.status == "in_progress" and d.started is not None]
    out.gauge(OLDEST_IN_PROGRESS, min(started) if started else None)


@dataclass(frozen=True, slots=True)
class Failure:
    bundle: str
    version: str
    site: str
    when: float | None


def current_failures(distributions: list[Distribution]) -> list[Failure]:
    """Per bundle version and site, the latest distribution's outcome there, kept where it failed; most recent
    first. A distribution without sites counts for its own status, under an empty site."""
    latest: dict[tuple[str, str, str], tuple[tuple[float, float, int], str, float | None]] = {}
    for index, d in enumerate(distributions):
        # Newest by start time, then by distribution id, then by place in the answer.
        order = (d.started if d.started is not None else float("-inf"),
                 d.ident if d.ident is not None else float("-inf"), index)
        sites = d.sites or [Site("", d.status)]
        for site in sites:
            key = (d.bundle, d.version, site.name)
            known = latest.get(key)
            if known is None or order > known[0]:
                latest[key] = (order, site.status, d.finished if d.finished is not None else d.started)
    failures = [Failure(*key, when) for key, (_, status, when) in latest.items() if status == "failed"]
    failures.sort(key=lambda f: (f.when is None, -(f.when or 0.0), f.bundle, f.version, f.site))
    return failures


# -- parsers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SystemInfo:
    version: str
    status: str | None


@dataclass(frozen=True, slots=True)
class Site:
    name: str
    status: str


@dataclass(frozen=True, slots=True)
class Distribution:
    ident: float | None
    bundle: str
    version: str
    status: str
    started: float | None
    finished: float | None
    sites: list[Site]


def parse_ping(body: object) -> bool | None:
    """Whether Distribution's ping says it is healthy; None when the answer is not Distribution's ping.

    It answers {"status_code": 200, "message": "ok"}, or status_code 500 with the services it misses (5.2.1);
    a plain "OK" is read too.
    """
    text = body.strip() if isinstance(body, str) else ""
    if text.upper() == "OK":
        return True
    try:
        data = json.loads(text) if text.startswith("{") else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or ("status_code" not in data and "message" not in data):
        return None
    code = parse_count(data.get("status_code"))
    message = data.get("message")
    return (code == 200 if code is not None else True) and (
        not isinstance(message, str) or message.strip().lower() == "ok")


def parse_system_info(body: object) -> SystemInfo:
    """GET /api/v1/system/info (5.2.2): version and status (STABLE when all is well)."""
    if not isinstance(body, dict) or "version" not in body:
        raise UnexpectedShape("distribution system info", "an object with 'version'", body)
    status = body.get("status")
    return SystemInfo(scalar_text(body["version"]).strip(),
                      status.strip().upper() if isinstance(status, str) and status.strip() else None)


def _state(value: object) -> str:
    """"Not distributed" -> not_distributed; anything else lower case with underscores, for the unknown case."""
    if not isinstance(value, str) or not value.strip():
        return UNKNOWN_STATE
    return "_".join(value.strip().lower().replace("-", " ").replace("_", " ").split())


def _entries(body: object) -> list[Any]:
    if isinstance(body, list):
        return body
    # One distribution alone is an object (by tracker id): jfrog-client-go reads either (tests/field).
    if isinstance(body, dict) and ("release_bundle_name" in body or "distribution_id" in body):
        return [body]
    if isinstance(body, dict) and isinstance(body.get("distributions"), list):
        return list(body["distributions"])
    raise UnexpectedShape("distribution status", "a JSON array of distributions", body)


def parse_distributions(body: object) -> list[Distribution]:
    """GET /api/v1/release_bundle/distribution (5.6.4): every Release Bundle v1 distribution and its sites."""
    out = []
    for entry in _entries(body):
        if not isinstance(entry, dict):
            raise UnexpectedShape("distribution status", "JSON objects", entry)
        sites = entry.get("sites") or []
        if not isinstance(sites, list):
            raise UnexpectedShape("distribution status: sites", "a JSON array", sites)
        parsed_sites = []
        for site in sites:
            if not isinstance(site, dict):
                raise UnexpectedShape("distribution status: sites", "JSON objects", site)
            target = site.get("target_artifactory")
            target = target if isinstance(target, dict) else {}
            name = scalar_text(target.get("name")).strip() or scalar_text(target.get("service_id")).strip()
            parsed_sites.append(Site(name, _state(site.get("status"))))
        out.append(Distribution(
            ident=parse_count(entry.get("distribution_id")),
            bundle=scalar_text(entry.get("release_bundle_name")).strip(),
            version=scalar_text(entry.get("release_bundle_version")).strip(),
            status=_state(entry.get("status")),
            started=parse_iso_timestamp(entry.get("start_time")),
            finished=parse_iso_timestamp(entry.get("finish_time")),
            sites=parsed_sites,
        ))
    return out


def parse_received(body: object) -> tuple[float | None, int]:
    """GET /api/v2/release_bundle/received (5.5.1): the total it reports (a number or a string), if any, and
    the entries of this page."""
    if not isinstance(body, dict):
        raise UnexpectedShape("received release bundles", "a JSON object", body)
    bundles = body.get("release_bundles")
    if bundles is None:
        bundles = []
    if not isinstance(bundles, list):
        raise UnexpectedShape("received release bundles: release_bundles", "a JSON array", bundles)
    total = parse_count(body.get("total"))
    if total is not None and not (math.isfinite(total) and total >= 0 and total == int(total)):
        total = None
    return total, len(bundles)
