"""Workers data a simulated JPD serves (``scenario.areas["workers"]``).

Event-driven workers execute on a fixed period from the scenario's origin,
so their history grows while the simulator runs; each execution has a
stable id and deterministic status, duration and resource use. GENERIC_EVENT
workers record an entry each time they are executed through the API. The
history endpoint shows only the newest ``history_limit`` entries, so
successive polls see overlapping windows, like the real one.

Workers created, changed or deleted through the API live in ``SimState.runtime[CHANGES]`` over the
scenario's own (``WorkersArea.current``, ``WorkersArea.lookup``): switching scenarios forgets them. A
changed worker is a copy; the scenario's specs are never modified.

Tests may replace ``WorkersArea.clock`` to move time forward without waiting.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.simulator.scenarios import Scenario

AREA = "workers"
#: key of the runtime dict (SimState.runtime) holding entries recorded by API executions
RUNTIME = "workers"
#: key of the runtime dict holding workers created, changed (a copy) or deleted (None) through the API
CHANGES = "workers.changes"
MINUTE = 60
HOUR = 3600
MB = 1024**2

#: the limits of the rerun sample (workers-rerun-and-history.txt)
LIMITS = {"maxCpuTimeMillis": 1000, "maxMemoryUsageBytes": 125_829_120, "maxExecutionDurationMillis": 6000}
ARTIFACT_ACTIONS = ("BEFORE_DOWNLOAD", "AFTER_DOWNLOAD", "BEFORE_UPLOAD", "AFTER_CREATE", "AFTER_MOVE",
                    "AFTER_COPY", "BEFORE_DELETE")
#: actions that need no repository filter; beyond the OpenAPI enum, servers offer more (tests/field/workers.yaml)
OTHER_ACTIONS = ("AFTER_BUILD_INFO_SAVE", "BEFORE_CREATE_TOKEN", "GENERIC_EVENT", "SCHEDULED_EVENT", "BEFORE_MOVE",
                 "BEFORE_PROPERTY_CREATE", "BEFORE_PROPERTY_DELETE", "AFTER_PROPERTY_CREATE",
                 "AFTER_PROPERTY_DELETE", "BEFORE_REMOTE_INFO", "BEFORE_REVOKE_TOKEN", "BEFORE_CREATE")
KNOWN_ACTIONS = frozenset(ARTIFACT_ACTIONS + OTHER_ACTIONS)
SUCCESS = "STATUS_SUCCESS"
FAIL = "STATUS_FAIL"
#: period of event-driven workers created through the API: as if their event happened once a minute
API_PERIOD = 60.0


@dataclass
class WorkerSpec:
    key: str
    action: str
    enabled: bool = True
    description: str = ""
    #: seconds between executions; None: executes only when called through the API (GENERIC_EVENT)
    period: float | None = 60.0
    offset: float = 0.0
    #: every n-th execution fails (0: never)
    fail_every: int = 0
    duration_ms: int = 120
    #: whether its history entries report executionLimits
    limits: bool = True
    #: GENERIC_EVENT: the execute API answers STATUS_FAIL
    fails_when_executed: bool = False
    shared: bool = False
    project_key: str = ""
    repo_keys: list[str] = field(default_factory=lambda: ["libs-release-local"])
    #: secrets and source code the JPD lists; an exporter must never expose them
    secrets: dict[str, str] = field(default_factory=dict)
    source_code: str = ""
    #: a disabled worker stopped executing at this time
    stopped_at: float | None = None
    #: created through the API at this time: no executions before it
    started_at: float | None = None
    #: (from, to) spans in which the worker was disabled and enabled again
    pauses: tuple[tuple[float, float], ...] = ()
    #: filterCriteria as a client sent it (camelCase); None: derived from repo_keys
    filter_criteria: dict[str, Any] | None = None
    debug: bool = False


@dataclass
class WorkersArea:
    workers: list[WorkerSpec]
    #: executions of periodic workers start here
    origin: float
    history_limit: int = 20
    clock: Callable[[], float] = time.time
    _index: dict[str, WorkerSpec] = field(default_factory=dict, init=False, repr=False, compare=False)

    def find(self, key: str) -> WorkerSpec | None:
        if len(self._index) != len(self.workers):
            self._index = {w.key: w for w in self.workers}
        return self._index.get(key)

    def current(self, changes: Mapping[str, WorkerSpec | None]) -> list[WorkerSpec]:
        """The scenario's workers as changed through the API, then those created through it."""
        out = [changes.get(w.key, w) for w in self.workers]
        out += [spec for key, spec in changes.items() if self.find(key) is None]
        return [w for w in out if w is not None]

    def lookup(self, key: str, changes: Mapping[str, WorkerSpec | None]) -> WorkerSpec | None:
        return changes[key] if key in changes else self.find(key)

    def scheduled(self, spec: WorkerSpec, now: float, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` periodic executions that ended by ``now``, newest first."""
        if spec.period is None:
            return []
        out: list[dict[str, Any]] = []
        for since, until in self._enabled_spans(spec, now):
            k = math.floor((until - self.origin - spec.offset) / spec.period)
            while k >= 0 and len(out) < limit:
                start = self.origin + spec.offset + k * spec.period
                if start < since:
                    break
                entry = execution(spec, k, start)
                if entry["endTimeMillis"] <= until * 1000:
                    out.append(entry)
                k -= 1
        return out

    def _enabled_spans(self, spec: WorkerSpec, now: float) -> list[tuple[float, float]]:
        """The (from, to) spans up to ``now`` in which the worker executed, newest first."""
        since = self.origin if spec.started_at is None else max(self.origin, spec.started_at)
        until = now if spec.stopped_at is None else min(now, spec.stopped_at)
        spans = []
        for paused, resumed in sorted(spec.pauses, reverse=True):
            if resumed < until:
                spans.append((max(resumed, since), until))
            until = min(until, paused)
        spans.append((since, until))
        return [(a, b) for a, b in spans if b > a]


def enable(spec: WorkerSpec, now: float) -> WorkerSpec:
    """The worker enabled at ``now``: it executes again from then on, its old history stays."""
    if spec.enabled:
        return spec
    pauses = spec.pauses if spec.stopped_at is None else (*spec.pauses, (spec.stopped_at, now))
    return replace(spec, enabled=True, stopped_at=None, pauses=pauses)


def disable(spec: WorkerSpec, now: float) -> WorkerSpec:
    return replace(spec, enabled=False, stopped_at=now) if spec.enabled else spec


def area(scenario: Scenario) -> WorkersArea | None:
    found = scenario.areas.get(AREA)
    return found if isinstance(found, WorkersArea) else None


def _duration_ms(spec: WorkerSpec, k: int) -> int:
    # Deterministic spread around the worker's typical duration; every 13th run is slow.
    base = spec.duration_ms + (k * 37) % max(1, spec.duration_ms // 2)
    return base * 6 if k % 13 == 12 else base


def execution(spec: WorkerSpec, k: int, start: float, *, status: str | None = None,
              payload: Any = None, triggered_by: str | None = None) -> dict[str, Any]:
    """One history entry, shaped as the rerun document's response-parameter table describes it."""
    failed = spec.fail_every > 0 and k % spec.fail_every == spec.fail_every - 1
    status = status or (FAIL if failed else SUCCESS)
    duration = _duration_ms(spec, k)
    start_ms = round(start * 1000)
    stats = {
        "cpuTimeMillis": int(duration * 0.6),
        "topMemoryUsageBytes": 18 * MB + (k % 7) * MB,
        "executionDurationMillis": duration,
    }
    if status == SUCCESS:
        result: Any = {"status": 1} if spec.action != "GENERIC_EVENT" else {"data": payload}
        logs = "[info ] - done\n"
    else:
        result = {"error": "Error: upstream check returned 503"}
        logs = "[error] - upstream check returned 503\n"
    execution_result: dict[str, Any] = {"result": result, "logs": logs, "workerStats": stats}
    if spec.limits:
        execution_result["executionLimits"] = dict(LIMITS)
    if payload is None and spec.action in ARTIFACT_ACTIONS:
        payload = {"metadata": {"repoPath": {"key": spec.repo_keys[0] if spec.repo_keys else "generic-local",
                                             "path": f"org/acme/app/{k}/app-{k}.jar"}}}
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"simulator/workers/{spec.key}/{k}")),
        "workerKey": spec.key,
        "workerType": spec.action,
        "workerProjectKey": spec.project_key,
        "executionStatus": status,
        "executionPayload": payload,
        "executionResult": execution_result,
        "startTimeMillis": start_ms,
        "endTimeMillis": start_ms + duration,
        "triggeredBy": triggered_by or ("admin" if spec.action == "GENERIC_EVENT" else "jfrt@01h00nodeart1"),
        "testRun": False,
        "executedVersion": "3",
        "traceId": uuid.uuid5(uuid.NAMESPACE_DNS, f"{spec.key}.{k}").hex,
    }


_SOURCE = """export default async (context: PlatformContext, data: BeforeDownloadRequest) => {
  // token used by the check below: {secret}
  return { status: 'DOWNLOAD_PROCEED', message: 'ok' };
};
"""


def _spec(key: str, action: str, **kwargs: Any) -> WorkerSpec:
    spec = WorkerSpec(key, action, **kwargs)
    if not spec.source_code:
        spec.source_code = _SOURCE.replace("{secret}", "src-Emb3dded-t0ken")
    return spec


def probe_worker() -> WorkerSpec:
    """The minimal GENERIC_EVENT worker of the execute document, deployed as the exporter's probe."""
    return _spec("exporter-probe", "GENERIC_EVENT", period=None, description="jfrog-exporter synthetic probe",
                 source_code="export default async (context: PlatformContext, data: any) => { return data; }")


def healthy_area(now: float | None = None) -> WorkersArea:
    """One download guard running every five minutes and the exporter's probe worker."""
    t = float(int(time.time() if now is None else now))
    return WorkersArea(
        origin=t - 6 * HOUR,
        workers=[
            _spec("block-risky-downloads", "BEFORE_DOWNLOAD", period=300.0, fail_every=25,
                  secrets={"SCANNER_TOKEN": "Wrk-s3cret-value"}),
            probe_worker(),
        ],
    )


def populate_workers(scenario: Scenario, now: float | None = None) -> None:
    """Several actions, two disabled workers, failures, workers with and without limits, a probe worker.

    Periods of a few seconds make the history grow visibly while the simulator runs.
    """
    t = float(int(time.time() if now is None else now))
    scenario.areas[AREA] = WorkersArea(
        origin=t - HOUR,
        workers=[
            _spec("block-risky-downloads", "BEFORE_DOWNLOAD", period=3.0, fail_every=7, duration_ms=180,
                  secrets={"SCANNER_TOKEN": "Wrk-s3cret-value"}, description="blocks downloads of flagged files"),
            _spec("tag-uploads", "BEFORE_UPLOAD", period=5.0, offset=1.0, fail_every=11, duration_ms=60,
                  limits=False),
            _spec("notify-on-create", "AFTER_CREATE", period=7.0, offset=2.0, fail_every=3, duration_ms=900,
                  repo_keys=["docker-local"]),
            _spec("legacy-token-guard", "BEFORE_CREATE_TOKEN", enabled=False, period=11.0, fail_every=2,
                  repo_keys=[], stopped_at=t - 30 * MINUTE),
            probe_worker(),
            _spec("cleanup-trigger", "GENERIC_EVENT", period=None, fails_when_executed=True, shared=True,
                  repo_keys=[]),
            _spec("nightly-report", "GENERIC_EVENT", enabled=False, period=None, repo_keys=[]),
        ],
    )


def populate_large(scenario: Scenario, now: float | None = None, count: int = 200) -> None:
    """``count`` more workers of every artifact action, executing every one to ten minutes."""
    found = area(scenario)
    if found is None:
        t = float(int(time.time() if now is None else now))
        found = WorkersArea(origin=t - 6 * HOUR, workers=[])
        scenario.areas[AREA] = found
    actions = (*ARTIFACT_ACTIONS, "AFTER_BUILD_INFO_SAVE", "BEFORE_CREATE_TOKEN")
    for i in range(count):
        found.workers.append(_spec(
            f"worker-{i:04d}", actions[i % len(actions)], enabled=i % 10 != 9, period=60.0 * (1 + i % 10),
            offset=float(i % 60), fail_every=5 + i % 17, limits=i % 3 != 0,
        ))


def workers_scenario(now: float | None = None) -> Scenario:
    from exporter.simulator import scenarios

    scenario = scenarios.healthy(now)
    scenario.name = "workers"
    scenario.description = "workers of several actions, some disabled, a growing history, a GENERIC_EVENT probe"
    populate_workers(scenario, now)
    return scenario
