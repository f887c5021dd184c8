"""The exporter's own families: how each collector, part and HTTP call to the JPD fared.

Declared here once, emitted from the run records (collection thread, at render
time) and from the clients' request counters.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric

from exporter import __version__
from exporter.families import Declarations, Emitter
from exporter.outcomes import Outcome

if TYPE_CHECKING:
    from exporter.snapshot import RunRecord

F = Declarations("exporter")
BUILD_INFO = F.info("jfrog_exporter_build_info", "Exporter version and Python version.", "version",
                    "python_version", per_target=False)
SUCCESS = F.gauge("jfrog_exporter_collector_success",
                  "1 if every part of the collector's last run succeeded or was unsupported by the edition; "
                  "0 if any part failed (the parts that worked are still current).", "collector")
DURATION = F.gauge("jfrog_exporter_collector_duration_seconds", "Wall time of the collector's last run.", "collector")
LAST_SUCCESS = F.gauge("jfrog_exporter_collector_last_success_timestamp_seconds",
                       "When the collector last succeeded in every part.", "collector")
INTERVAL = F.gauge("jfrog_exporter_collector_interval_seconds",
                   "Current polling interval (grows while no part of the collector answers).", "collector")
FAILURES = F.gauge("jfrog_exporter_collector_consecutive_failures",
                   "Runs that failed in a row since the last success.", "collector")
RUNS = F.counter("jfrog_exporter_collector_runs", "Collector runs by outcome (the worst of their parts').",
                 "collector", "outcome")
ENDPOINT_UP = F.gauge("jfrog_exporter_endpoint_up",
                      "1 if every call to this route template in the collector's last run succeeded (or the "
                      "edition lacks it), 0 if any failed.", "collector", "endpoint")
ENDPOINT_LAST_SUCCESS = F.gauge("jfrog_exporter_endpoint_last_success_timestamp_seconds",
                                "When this part last succeeded: the age of the series it feeds.",
                                "collector", "endpoint")
OLDEST_READ = F.gauge("jfrog_exporter_endpoint_oldest_read_timestamp_seconds",
                      "Change-driven parts (one call per item, read where a change is due and in a sweep): when "
                      "the least recently read item whose series the part reports was read.", "collector", "endpoint")
TARGET_INFO = F.info("jfrog_exporter_target_info", "A JPD this exporter watches; the URL without user-info.",
                     "url", "auth")
SERIES_DROPPED = F.counter("jfrog_exporter_series_dropped",
                           "Series dropped because the target exceeded its max_series cap.", "collector")
RUNS_SKIPPED = F.counter("jfrog_exporter_runs_skipped",
                         "Runs not started because the previous run of the collector was still going when the next "
                         "was due.", "collector")
MISCONFIGURED = F.gauge("jfrog_exporter_target_misconfigured",
                        "1 while the configured URL does not lead to a JFrog Platform (its ping answered not found, "
                        "a web page or another text than OK).")
CREDENTIALS_ACCEPTED = F.gauge("jfrog_exporter_credentials_accepted",
                               "0 while the JPD rejects the configured credential (401); 1 otherwise.")
API_REQUESTS = F.counter("jfrog_exporter_api_requests",
                         "HTTP calls made to the JPD, by route template and status code.", "endpoint", "code")
TOKEN_EXPIRY = F.gauge("jfrog_exporter_token_expiry_timestamp_seconds",
                       "Expiry of the access token the exporter itself uses, from its JWT exp claim (decoded "
                       "locally); absent for reference tokens and basic auth.")
API_DURATION = F.histogram("jfrog_exporter_api_request_duration_seconds", "Latency of HTTP calls to the JPD.",
                           "endpoint")
REQUEST_BUDGET = F.gauge("jfrog_exporter_request_budget_per_second",
                         "Calls per second the exporter currently allows itself to this JPD: the configured "
                         "max_requests_per_second, lower while slowed down; absent when unlimited.")
REQUESTS_DELAYED = F.counter("jfrog_exporter_requests_delayed",
                             "HTTP calls to the JPD (retries included) that waited for the request budget.")
REQUEST_BUDGET_WAIT = F.counter("jfrog_exporter_request_budget_wait_seconds",
                                "Time HTTP calls to the JPD spent waiting for the request budget (not counted "
                                "against their timeout).")
REQUEST_SLOWDOWNS = F.counter("jfrog_exporter_request_slowdowns",
                              "Times the request budget was halved: the JPD answered 429 (rate_limited) or 503 "
                              "(unavailable), or well above its usual latency (latency).", "reason")
SCRAPES_ABORTED = F.counter("jfrog_exporter_scrapes_aborted",
                            "Responses to /metrics abandoned, and their connection closed, because the client had not "
                            "read them within the send deadline.", per_target=False)
SERVING_PROCESS_MEMORY = F.gauge("jfrog_exporter_serving_process_resident_memory_bytes",
                                 "Resident memory of the process that answers HTTP when it is one of its own "
                                 "(serve --web.serving-process); absent when a thread of the collecting process "
                                 "answers. With process_resident_memory_bytes, what the exporter holds (pages both "
                                 "map, such as the interpreter's library, counted in each).", per_target=False)


def build_families() -> list[Metric]:
    """What the process is: the same for its whole life."""
    out = Emitter(None)
    out.info(BUILD_INFO, version=__version__, python_version=platform.python_version())
    return out.families()


def run_families(records: Iterable[tuple[tuple[str, str], RunRecord]]) -> list[Metric]:
    """Per target × collector, its outcome, timing and parts."""
    out = Emitter(None)
    for (target, collector), run in records:
        labels = {"target": target, "collector": collector}
        out.gauge(SUCCESS, run.succeeded, **labels)
        out.gauge(DURATION, run.duration if run.last_run is not None else None, **labels)
        out.gauge(LAST_SUCCESS, run.last_success, **labels)
        out.gauge(INTERVAL, run.interval, **labels)
        out.gauge(FAILURES, run.consecutive_failures, **labels)
        for outcome in Outcome:
            out.counter(RUNS, run.runs.get(outcome, 0), outcome=outcome.value, **labels)
        for part in run.parts:
            out.gauge(ENDPOINT_UP, part.succeeded, endpoint=part.endpoint, **labels)
            out.gauge(ENDPOINT_LAST_SUCCESS, part.last_success, endpoint=part.endpoint, **labels)
            if part.oldest_read is not None:
                out.gauge(OLDEST_READ, part.oldest_read, endpoint=part.endpoint, **labels)
    return out.families()


def runtime_source() -> Callable[[], Iterable[Metric]]:
    """prometheus_client's process, platform and GC families (``process_resident_memory_bytes``, ``python_info``,
    ``python_gc_*``), under the library's names, read afresh at each rendering.

    On a registry of their own, not the library's global one: nothing else in the process adds to it.
    """
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry.collect
