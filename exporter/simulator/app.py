"""The simulator's aiohttp application: auth like the real server, latency, control API."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from exporter.simulator import faults, scenarios
from exporter.simulator.core import STATE, Handler, SimState, jfrog_error, serve
from exporter.simulator.routes import ROUTE_MODULES


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if request.path.startswith("/-/simulator"):
        return await handler(request)
    state.requests += 1
    state.arrivals.append(time.monotonic())
    if state.latency_ms > 0:
        await asyncio.sleep(state.latency_ms / 1000.0)
    route_handler = getattr(request.match_info, "handler", handler)
    if not getattr(route_handler, "public", False):
        role = state.credentials.role(request.headers.get("Authorization", ""))
        if role is None:
            refusal = jfrog_error(401, "Bad credentials")
            refusal.headers["WWW-Authenticate"] = 'Basic realm="Artifactory Realm"'
            return refusal
        if role != "admin" and getattr(route_handler, "admin_only", False):
            return jfrog_error(403, "You are not permitted to perform this action: admin privileges required")
    fault = faults.take(state.faults, request.path) if state.faults else None
    try:
        response: web.StreamResponse = await (faults.apply(fault, request, handler) if fault else handler(request))
    except web.HTTPNotFound:
        response = jfrog_error(404, "File not found.")
    except web.HTTPMethodNotAllowed:
        response = jfrog_error(405, "Method Not Allowed")
    response.headers.setdefault("X-Artifactory-Node-Id", state.scenario.node_id())
    return response


async def _control_get(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({
        "scenario": state.scenario.name,
        "latency_ms": state.latency_ms,
        "requests": state.requests,
        "faults": [{"route": f.route, "kind": f.kind, "times": f.times} for f in state.faults],
        "scenarios": list(scenarios.SCENARIOS),
    })


async def _control_post(request: web.Request) -> web.Response:
    """Change the running simulator.

    {"scenario": NAME, "latency_ms": N, "faults": [{"route": GLOB, "kind": KIND, "times": N}],
    "clear_faults": true}
    """
    state = request.app[STATE]
    try:
        body = await request.json()
        if "scenario" in body:
            state.switch(str(body["scenario"]))
        if "latency_ms" in body:
            state.latency_ms = max(0.0, float(body["latency_ms"]))
        if body.get("clear_faults"):
            state.faults.clear()
        state.faults.extend(faults.Fault.from_dict(f) for f in body.get("faults") or [])
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return await _control_get(request)


def build_app(state: SimState) -> web.Application:
    app = web.Application(middlewares=[_middleware])
    app[STATE] = state
    app.router.add_get("/-/simulator", _control_get)
    app.router.add_post("/-/simulator", _control_post)
    for module in ROUTE_MODULES:
        module.add_routes(app.router)
    return app


async def start(state: SimState, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, int]:
    """Start on host:port (0 picks a free port); returns the runner and the bound port."""
    return await serve(build_app(state), host, port)
