"""A JPD replayed from a recording (``jfrog-exporter simulate --replay DIR``).

Each request gets the recorded answer to the same method, path and query;
failing that, to the same method and path with the same query parameters in
another order; failing that, with the same parameters but a time window
(``start``, ``end``: the webhook deliveries since the last poll) of another
time, since a replay runs later than its recording. Anything else was never
recorded and answers 404 in JFrog's error JSON. Any credentials are accepted:
a recording holds none.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from aiohttp import web

from exporter.recording import Answer, Recording
from exporter.simulator import faults
from exporter.simulator.core import jfrog_error, serve

#: requests without a recorded answer listed by the control endpoint, at most
MAX_UNMATCHED = 100

Key = tuple[str, str, str]


#: query parameters that bound a time window: they name the moment of the request, not what is asked
WINDOW_PARAMETERS = frozenset({"start", "end"})


def _unordered(method: str, path: str, query: str, without: frozenset[str] = frozenset()) -> Key:
    pairs = sorted((k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k not in without)
    return method, path, "&".join(f"{k}={v}" for k, v in pairs)


@dataclass
class ReplayState:
    recording: Recording
    latency_ms: float = 0.0
    faults: list[faults.Fault] = field(default_factory=list)
    requests: int = 0
    #: requests that had no recorded answer (method, path?query), first seen first
    unmatched: list[str] = field(default_factory=list)
    _exact: dict[Key, Answer] = field(default_factory=dict, init=False, repr=False)
    _unordered: dict[Key, Answer] = field(default_factory=dict, init=False, repr=False)
    _windowless: dict[Key, Answer] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        for answer in self.recording.answers:
            self._exact[(answer.method, answer.path, answer.query)] = answer
            self._unordered[_unordered(answer.method, answer.path, answer.query)] = answer
            self._windowless[_unordered(answer.method, answer.path, answer.query, WINDOW_PARAMETERS)] = answer

    def find(self, method: str, path: str, query: str) -> Answer | None:
        answer = (self._exact.get((method, path, query)) or self._unordered.get(_unordered(method, path, query))
                  or self._windowless.get(_unordered(method, path, query, WINDOW_PARAMETERS)))
        if answer is None:
            missed = f"{method} {path}" + (f"?{query}" if query else "")
            if missed not in self.unmatched and len(self.unmatched) < MAX_UNMATCHED:
                self.unmatched.append(missed)
        return answer


REPLAY = web.AppKey("replay", ReplayState)


def respond(answer: Answer) -> web.Response:
    headers = dict(answer.headers)
    content_type = headers.pop("Content-Type", None)
    # aiohttp refuses a body on statuses that cannot have one.
    body = None if answer.status in (204, 304) or answer.status < 200 else answer.body
    response = web.Response(status=answer.status, body=body, headers=headers)
    if content_type is not None and body is not None:
        response.headers["Content-Type"] = content_type
    return response


async def _answer(request: web.Request) -> web.StreamResponse:
    state = request.app[REPLAY]
    path, _, query = request.raw_path.partition("?")
    answer = state.find(request.method, path, query)
    if answer is None:
        return jfrog_error(404, "Not Found")
    return respond(answer)


async def _control(request: web.Request) -> web.Response:
    state = request.app[REPLAY]
    recording = state.recording
    return web.json_response({
        "replay": str(recording.directory),
        "recorded_from": recording.url,
        "recorded_at": recording.recorded_at,
        "answers": len(recording.answers),
        "requests": state.requests,
        "latency_ms": state.latency_ms,
        "unmatched": state.unmatched,
    })


@web.middleware
async def _middleware(request: web.Request, handler: faults.Handler) -> web.StreamResponse:
    if request.path.startswith("/-/simulator"):
        return await handler(request)
    state = request.app[REPLAY]
    state.requests += 1
    if state.latency_ms > 0:
        await asyncio.sleep(state.latency_ms / 1000.0)
    fault = faults.take(state.faults, request.path) if state.faults else None
    return await (faults.apply(fault, request, handler) if fault else handler(request))


def build_app(state: ReplayState) -> web.Application:
    app = web.Application(middlewares=[_middleware])
    app[REPLAY] = state
    app.router.add_get("/-/simulator", _control)
    app.router.add_route("*", "/{tail:.*}", _answer)
    return app


async def start(state: ReplayState, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Serve the recording on host:port (0 picks a free port); returns the runner and the bound port."""
    return await serve(build_app(state), host, port)
