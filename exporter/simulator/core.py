"""What the simulator's app and route modules share: state, credentials, error bodies."""

from __future__ import annotations

import base64
import json
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exporter.simulator import scenarios
from exporter.simulator.faults import Fault

DEFAULT_TOKEN = "simulator-token"
DEFAULT_READER_TOKEN = "simulator-reader-token"
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "password"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Credentials:
    """Who may call: admin credentials, and a token without admin rights (403 on admin APIs)."""

    token: str | None = DEFAULT_TOKEN
    user: str | None = DEFAULT_USER
    password: str | None = DEFAULT_PASSWORD
    reader_token: str | None = DEFAULT_READER_TOKEN

    def role(self, authorization: str) -> str | None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if self.token and secrets.compare_digest(value, self.token):
                return "admin"
            if self.reader_token and secrets.compare_digest(value, self.reader_token):
                return "reader"
        elif scheme.lower() == "basic" and self.user:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            if user == self.user and secrets.compare_digest(password, self.password or ""):
                return "admin"
        return None


def jwt_token(subject: str, expires: float) -> str:
    """A token shaped like the JPD's access tokens (base64url header.claims.signature): the exporter reads its
    expiry as it reads a real one's. Its signature is random; the simulator compares tokens, it verifies none."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"typ": "JWT", "alg": "RS256"}).encode())
    claims = part(json.dumps({"sub": subject, "exp": int(expires), "scp": "applied-permissions/admin"}).encode())
    return f"{header}.{claims}.{part(secrets.token_bytes(64))}"


@dataclass
class SimState:
    scenario: scenarios.Scenario
    credentials: Credentials = field(default_factory=Credentials)
    latency_ms: float = 0.0
    requests: int = 0
    #: when the latest requests arrived (monotonic seconds), to show how a client spreads its calls
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    #: per-area mutable state (histories that grow, counters), owned by the route modules
    runtime: dict[str, Any] = field(default_factory=dict)
    #: faults injected per route (see exporter.simulator.faults)
    faults: list[Fault] = field(default_factory=list)

    def switch(self, name: str) -> None:
        self.scenario = scenarios.build(name)
        self.runtime.clear()


STATE = web.AppKey("state", SimState)


#: how Artifactory OSS and JCR refuse a Pro feature: 400, not 404 (tests/field/editions.yaml)
PRO_ONLY = ("This REST API is available only in Artifactory Pro (see: jfrog.com/artifactory/features). If you are "
            "already running Artifactory Pro please make sure your server is activated with a valid license key.")
#: how JFrog Cloud refuses the license endpoints (tests/field/editions.yaml)
CLOUD_NO_LICENSE = ("Artifactory Online does not require license, Please contact support@jfrog.com for further "
                    "assistance if required.")


def edition_refusal(scenario_edition: str) -> web.Response | None:
    """The answer of a free edition to an endpoint of a Pro feature, if the edition is free."""
    return jfrog_error(400, PRO_ONLY) if scenario_edition in ("oss", "jcr") else None


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on host:port (0 picks a free port); returns the runner and the bound port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port


def jfrog_error(status: int, message: str) -> web.Response:
    """Artifactory's error body: {"errors":[{"status","message"}]}."""
    return web.json_response({"errors": [{"status": status, "message": message}]}, status=status)


def public(handler: Handler) -> Handler:
    """Mark a route that needs no credentials (the router's health check)."""
    handler.public = True  # type: ignore[attr-defined]
    return handler


def admin(handler: Handler) -> Handler:
    """Mark a route that needs an admin user, like the real server."""
    handler.admin_only = True  # type: ignore[attr-defined]
    return handler
