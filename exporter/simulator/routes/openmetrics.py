"""Open Metrics routes: /artifactory/api/v1/metrics and the Federation service's /rtfs/api/v1/metrics.

The bodies imitate what the services really send (2.3.34, jfrog-rest-apis.txt
line 4649), quirks included: ``# UPDATED`` lines, a HELP/UPDATED/TYPE block
repeated for every label set of one family, millisecond timestamps on every
sample, a series sent twice, gauges named ``..._total``, untyped families,
escaped characters in HELP and label values. The ``oss`` scenario answers an
empty body (metrics disabled); RTFS answers only where the JPD runs the
standalone Federation service. The ``degraded`` scenario's JPD also sends
lines no parser should trust (broken lines, a NaN counter, a histogram
without +Inf, a family named like the exporter's own) and its Federation
service publishes a counter under a name Artifactory uses for a gauge.

Tests may replace either body with ``scenario.areas["openmetrics"] =
OpenMetricsBodies(...)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from exporter.simulator import federation_data
from exporter.simulator.core import STATE, SimState, admin, jfrog_error
from exporter.simulator.scenarios import GB, MB, Scenario

AREA = "openmetrics"

#: editions whose JPD answers an empty body (metrics are not enabled)
DISABLED_EDITIONS = frozenset({"oss"})


@dataclass
class OpenMetricsBodies:
    """Fixed bodies; ``None`` answers 404 (a JPD without the endpoint)."""

    artifactory: str | None = ""
    rtfs: str | None = None


def _polls(state: SimState, service: str) -> int:
    """How often the body was read: counters grow with it, like on a live JPD."""
    key = f"{AREA}:{service}"
    state.runtime[key] = state.runtime.get(key, 0) + 1
    return int(state.runtime[key])


def _block(name: str, help_text: str, typ: str | None, updated: int) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# UPDATED {name} {updated}"]
    if typ:
        lines.append(f"# TYPE {name} {typ}")
    return lines


def artifactory_body(scenario: Scenario, polls: int, now_ms: int) -> str:
    """Artifactory's metrics in the shape 2.3.34 documents."""
    ts = now_ms
    updated = now_ms - 2
    lines: list[str] = []
    cpu = 1576.388 + polls * 2.5
    lines += _block("sys_cpu_totaltime_seconds", "Total cpu time from the threads in seconds", "gauge", updated)
    # Sent twice with different values, as in the documented sample: the later line is the newer value.
    lines.append(f"sys_cpu_totaltime_seconds {cpu - 1.25} {ts - 1000}")
    disk_total = 1.038806e11
    disk_free = 9.599553e10
    lines += _block("app_disk_total_bytes", "Used bytes for app home directory disk device", "gauge", updated)
    lines.append(f"app_disk_total_bytes {disk_total:.6e} {ts}")
    lines += _block("app_disk_free_bytes", "Free bytes for app home directory disk device", "gauge", updated)
    lines.append(f"app_disk_free_bytes {disk_free:.6e} {ts}")
    lines += _block("app_disk_used_bytes",
                    'Used bytes of the disk holding \\"$JFROG_HOME\\" (C:\\\\ on Windows)',
                    "gauge", updated)
    lines.append(f"app_disk_used_bytes {disk_total - disk_free:.6e} {ts}")
    lines += _block("jfrt_artifacts_gc_duration_seconds", "Time taken for garbage collection", "gauge", updated)
    lines.append('jfrt_artifacts_gc_duration_seconds{end="1595837400008",start="1595837400001",'
                 f'status="COMPLETED",type="TRASH_AND_BINARIES"}} 0.007 {ts}')
    lines += _block("jfrt_artifacts_gc_binaries_total", "Number of binaries removed by the last garbage collection",
                    "gauge", updated)
    lines.append(f'jfrt_artifacts_gc_binaries_total{{type="TRASH_AND_BINARIES"}} 138 {ts}')
    storage = scenario.storage
    if storage is not None:
        lines += _block("jfrt_storage_current_total_size_bytes", "Used storage of the binary store", "gauge",
                        updated)
        lines.append(f"jfrt_storage_current_total_size_bytes {storage.binaries_size} {ts}")
    # Database pool: gauges whose names end in _total (the vendor's naming).
    for name, help_text, value in (
        ("jfrt_db_connections_active_total", "Total Active Connections", 7),
        ("jfrt_db_connections_idle_total", "Total Idle Connections", 13),
        ("jfrt_db_connections_max_active_total", "Total Max Active Connections", 100),
        ("jfrt_db_connections_min_idle_total", "Total Min Idle Connections", 1),
    ):
        lines += _block(name, help_text, "gauge", updated)
        lines.append(f'{name}{{pool="default"}} {value} {ts}')
    # HTTP pools of remote repositories: one HELP/UPDATED/TYPE block per pool, the family repeated.
    remotes = [r.key for r in scenario.repos if r.repo_type == "REMOTE"] or ["insight-remote-1602763529314"]
    for i, pool in enumerate(remotes):
        for name, help_text, value in (
            ("jfrt_http_connections_available_total", "Available Connections", 46 - i),
            ("jfrt_http_connections_leased_total", "Leased Connections", 3 + i),
            ("jfrt_http_connections_pending_total", "Pending Connections", 0),
            ("jfrt_http_connections_max_total", "Max Connections", 50),
        ):
            lines += _block(name, help_text, "gauge", updated)
            lines.append(f'{name}{{max="50",pool="{pool}"}} {value} {ts}')
    # Heap figures come without HELP or TYPE, as in the documented sample (untyped).
    lines += [
        f"# UPDATED jfrt_runtime_heap_freememory_bytes {updated}",
        f"jfrt_runtime_heap_freememory_bytes {9.229538e08 - polls * MB:.6e} {ts}",
        f"# UPDATED jfrt_runtime_heap_maxmemory_bytes {updated}",
        f"jfrt_runtime_heap_maxmemory_bytes {2 * GB} {ts}",
        f"# UPDATED jfrt_runtime_heap_totalmemory_bytes {updated}",
        f"jfrt_runtime_heap_totalmemory_bytes {2 * GB} {ts}",
        f"# UPDATED jfrt_runtime_heap_processors_total {updated}",
        f"jfrt_runtime_heap_processors_total 4 {ts}",
    ]
    # A real counter, and a label value with escaped characters.
    lines += _block("jfrt_artifacts_downloads", "Artifacts downloaded, by repository", "counter", updated)
    for i, repo in enumerate(r.key for r in scenario.repos[:4]):
        lines.append(f'jfrt_artifacts_downloads_total{{repo="{repo}"}} {1000 * (i + 1) + polls} {ts}')
    lines += _block("jfrt_projects_info", "Projects of the platform", "gauge", updated)
    lines.append(f'jfrt_projects_info{{description="the \\"main\\" project\\\\team A",project="main"}} 1 {ts}')
    # The documented sample ends with a second dump of the system figures: the duplicated series.
    lines += [
        f"# UPDATED sys_cpu_totaltime_seconds {ts}",
        f"sys_cpu_totaltime_seconds {cpu} {ts}",
    ]
    if scenario.name == "degraded":
        lines += _hostile_lines(ts)
    return "\n".join(lines) + "\n"


def _hostile_lines(ts: int) -> list[str]:
    """What a misbehaving JPD (or a proxy in front of it) adds; none of it may break /metrics."""
    return [
        "this line is not a metric",
        'jfrt_broken_line{pool="x" 1',
        "jfrt_bad_value 12,5",
        # A family named like one of the exporter's own: the exporter's contract wins.
        "# TYPE jfrog_up gauge",
        f"jfrog_up 0 {ts}",
        # The vendor's own target label must not replace the exporter's.
        f'jfrt_replication_queue_size{{target="dr-site"}} 12 {ts}',
        # A counter that went NaN cannot stay a counter.
        "# TYPE jfrt_cache_misses counter",
        "jfrt_cache_misses_total NaN",
        # A histogram without its +Inf bucket, one bucket sent twice (as in Distribution's documented body).
        "# TYPE jfrt_upload_size_bytes histogram",
        'jfrt_upload_size_bytes_bucket{le="1024.0"} 5',
        'jfrt_upload_size_bytes_bucket{le="1048576.0"} 7',
        'jfrt_upload_size_bytes_bucket{le="1024.0"} 6',
        "jfrt_upload_size_bytes_count 9",
        "jfrt_upload_size_bytes_sum 4096",
        # An empty label value is the same series as no label at all.
        'jfrt_http_connections_max_total{max="50",pool=""} 50',
        'jfrt_http_connections_max_total{max="50"} 50',
        "# EOF",
    ]


def rtfs_body(scenario: Scenario, polls: int, now_ms: int) -> str:
    """The Federation service's metrics: jfrtfs_* figures and Spring Boot's JVM and HTTP series."""
    ts = now_ms
    data = federation_data.area(scenario)
    repos = data.repos if data is not None else []
    lags = [m.lag_ms for r in repos for m in r.members if m.supported]
    lines = [
        "# HELP jfrtfs_worker_lag_seconds The lag time when transferring events to the remote member.",
        "# TYPE jfrtfs_worker_lag_seconds gauge",
        f'jfrtfs_worker_lag_seconds{{tenant="default"}} {max(lags, default=0) / 1000.0} {ts}',
        "# HELP jfrtfs_worker_repo_lag Per-repository lag (ms) for top lagging repositories",
        "# TYPE jfrtfs_worker_repo_lag gauge",
    ]
    for repo in repos:
        for member in repo.members:
            if member.supported and member.lag_ms:
                lines.append(f'jfrtfs_worker_repo_lag{{remote_member_jpd_url="{member.url}",'
                             f'source_and_remote_repo_keys="{repo.key}->{member.repo_key}",tenant="default"}} '
                             f"{member.lag_ms} {ts}")
    states: dict[str, int] = {}
    for repo in repos:
        for member in repo.members:
            states[member.state] = states.get(member.state, 0) + 1
    lines += [
        "# HELP jfrtfs_members_in_status Number of federation members in a specific status",
        "# TYPE jfrtfs_members_in_status gauge",
    ]
    lines += [f'jfrtfs_members_in_status{{member_status="{s}",tenant="default"}} {n} {ts}'
              for s, n in sorted(states.items())]
    queued = sum(m.queued_events for r in repos for m in r.members)
    lines += [
        '# HELP pq_queue_lag The lag of the Artifactory Federation queue (in milliseconds).',
        "# TYPE pq_queue_lag gauge",
        f'pq_queue_lag{{queue_name="jfrog_federation_service_queue"}} {max(lags, default=0)} {ts}',
        # Documented as a counter although it goes down: typed counter, sample without _total.
        "# HELP pq_queue_events_left The number of events that remain to be handled to overcome the lag.",
        "# TYPE pq_queue_events_left counter",
        f'pq_queue_events_left{{queue_name="jfrog_federation_service_queue"}} {queued} {ts}',
        "# HELP jfrtfs_events_received_from_artifactory_total The total number of events received by the "
        "Federation service from Artifactory.",
        "# TYPE jfrtfs_events_received_from_artifactory_total counter",
        f'jfrtfs_events_received_from_artifactory_total{{tenant="default"}} {15_234 + 3 * polls} {ts}',
        "# HELP jfrtfs_event_processing_seconds Time to process one federation event.",
        "# TYPE jfrtfs_event_processing_seconds histogram",
    ]
    count = 120 + polls
    for bound, part in (("0.005", 0.25), ("0.05", 0.75), ("0.5", 0.95), ("+Inf", 1.0)):
        lines.append(f'jfrtfs_event_processing_seconds_bucket{{tenant="default",le="{bound}"}} '
                     f"{int(count * part)} {ts}")
    lines += [
        f'jfrtfs_event_processing_seconds_count{{tenant="default"}} {count} {ts}',
        f'jfrtfs_event_processing_seconds_sum{{tenant="default"}} {count * 0.021:.3f} {ts}',
        "# HELP jvm_gc_pause_seconds Time spent in GC pause",
        "# TYPE jvm_gc_pause_seconds summary",
        f'jvm_gc_pause_seconds_count{{action="end of minor GC",cause="G1 Evacuation Pause"}} {40 + polls} {ts}',
        f'jvm_gc_pause_seconds_sum{{action="end of minor GC",cause="G1 Evacuation Pause"}} 0.412 {ts}',
        "# HELP jvm_gc_pause_seconds_max Time spent in GC pause",
        "# TYPE jvm_gc_pause_seconds_max gauge",
        f'jvm_gc_pause_seconds_max{{action="end of minor GC",cause="G1 Evacuation Pause"}} 0.018 {ts}',
        "# HELP jvm_memory_used_bytes The amount of used memory",
        "# TYPE jvm_memory_used_bytes gauge",
        f'jvm_memory_used_bytes{{area="heap",id="G1 Eden Space"}} {48 * MB} {ts}',
        f'jvm_memory_used_bytes{{area="heap",id="G1 Old Gen"}} {212 * MB} {ts}',
        # The shared system figures, under the same name as Artifactory's.
        "# HELP app_disk_free_bytes Free bytes for app home directory disk device",
        "# TYPE app_disk_free_bytes gauge",
        f"app_disk_free_bytes 9.599553e+10 {ts}",
    ]
    if scenario.name == "degraded":
        # This Federation service publishes CPU time as a counter, a name Artifactory uses for a gauge.
        lines += [
            "# HELP sys_cpu_totaltime_seconds Total cpu time from the threads in seconds",
            "# TYPE sys_cpu_totaltime_seconds counter",
            f"sys_cpu_totaltime_seconds_total {12.5 + polls} {ts}",
        ]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _fixed(scenario: Scenario) -> OpenMetricsBodies | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, OpenMetricsBodies) else None


def _text(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/plain")


@admin
async def artifactory_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    scenario = state.scenario
    fixed = _fixed(scenario)
    if fixed is not None:
        return jfrog_error(404, "File not found.") if fixed.artifactory is None else _text(fixed.artifactory)
    if scenario.edition in DISABLED_EDITIONS:
        return _text("")
    return _text(artifactory_body(scenario, _polls(state, "artifactory"), int(time.time() * 1000)))


@admin
async def rtfs_metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    scenario = state.scenario
    fixed = _fixed(scenario)
    if fixed is not None:
        return jfrog_error(404, "File not found.") if fixed.rtfs is None else _text(fixed.rtfs)
    data = federation_data.area(scenario)
    if data is None or data.mode != federation_data.RTFS:
        return jfrog_error(404, "File not found.")
    return _text(rtfs_body(scenario, _polls(state, "rtfs"), int(time.time() * 1000)))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/artifactory/api/v1/metrics", artifactory_metrics)
    router.add_get("/rtfs/api/v1/metrics", rtfs_metrics)
