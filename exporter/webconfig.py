"""TLS and basic auth for the exporter's own endpoints.

Reads the exporter-toolkit web configuration file (``--web.config.file``) that
Prometheus and its exporters use, so operators can reuse theirs.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import ssl
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.config import ConfigError, format_validation_error
from exporter.httpserver import Handler, Request, Response

#: Threads that run bcrypt: a flood of wrong passwords queues behind them instead of taking the event loop.
BCRYPT_THREADS = 2
#: Checks waiting for those threads; beyond, a request is refused at once (503) without running bcrypt.
MAX_PENDING_CHECKS = 32
#: Credentials remembered after bcrypt accepted them (a handful of scrapers in practice).
VERIFIED_CACHE_SIZE = 64

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


class TlsServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None
    client_auth_type: Literal[
        "NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
    ] = "NoClientCert"
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"


class WebConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext | None:
        tls = self.tls_server_config
        if tls is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
        try:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
            if tls.client_ca_file:
                context.load_verify_locations(cafile=str(tls.client_ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--web.config.file: tls_server_config: {exc}") from None
        if tls.client_auth_type in ("RequireAndVerifyClientCert", "RequireAnyClientCert"):
            context.verify_mode = ssl.CERT_REQUIRED
        elif tls.client_auth_type in ("VerifyClientCertIfGiven", "RequestClientCert"):
            context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def basic_auth(self) -> BasicAuth | None:
        """The middleware that checks ``basic_auth_users``; None when there are none."""
        if not self.basic_auth_users:
            return None
        return BasicAuth({user: hashed.encode() for user, hashed in self.basic_auth_users.items()})


class BasicAuth:
    """Basic auth against bcrypt hashes, without letting bcrypt slow the scrapes down.

    bcrypt is deliberately slow (tens of ms a check), so it runs on threads of
    its own, never on the serving event loop, and credentials it accepted are
    remembered under a keyed hash of user and password (never the password):
    an authorised scrape costs one HMAC. An unknown user costs the same bcrypt
    work as a wrong password, so timing does not tell which users exist.
    """

    def __init__(self, users: dict[str, bytes]) -> None:
        self._users = users
        # Of the highest cost among the configured hashes, so no user answers faster than an unknown one.
        self._dummy = bcrypt.hashpw(b"unknown user", bcrypt.gensalt(rounds=max(_cost(h) for h in users.values())))
        self._key = os.urandom(32)  # per process: a remembered digest is useless outside it
        self._verified: OrderedDict[bytes, None] = OrderedDict()
        self._executor = ThreadPoolExecutor(BCRYPT_THREADS, thread_name_prefix="basic-auth")
        self._pending = 0

    async def middleware(self, request: Request, handler: Handler) -> Response:
        if self._pending >= MAX_PENDING_CHECKS and not self._remembered(request):
            return Response.text("Too many authentication attempts in progress\n", 503,
                                 headers={"Retry-After": "1"})
        if not await self.authorized(request.header("Authorization")):
            return Response.text("Unauthorized\n", 401, headers={"WWW-Authenticate": 'Basic realm="jfrog-exporter"'})
        return await handler(request)

    async def authorized(self, header: str) -> bool:
        credentials = _credentials(header)
        if credentials is None:
            return False
        digest = self._digest(*credentials)
        if digest in self._verified:
            self._verified.move_to_end(digest)
            return True
        self._pending += 1
        try:
            ok = await asyncio.get_running_loop().run_in_executor(self._executor, self._check, *credentials)
        finally:
            self._pending -= 1
        if ok:
            self._remember(digest)
        return ok

    def _remembered(self, request: Request) -> bool:
        credentials = _credentials(request.header("Authorization"))
        return credentials is not None and self._digest(*credentials) in self._verified

    def _check(self, user: str, password: str) -> bool:
        """bcrypt against the user's hash, or against a dummy one for an unknown user (on an executor thread)."""
        hashed = self._users.get(user)
        try:
            ok = bcrypt.checkpw(password.encode(), hashed if hashed is not None else self._dummy)
        except ValueError:  # a password longer than bcrypt takes: refused before any work, whatever the user
            return False
        return ok and hashed is not None

    def _digest(self, user: str, password: str) -> bytes:
        # A user name has no colon (basic auth splits at the first one): user and password cannot run together.
        return hmac.digest(self._key, f"{user}:{password}".encode(), hashlib.sha256)

    def _remember(self, digest: bytes) -> None:
        self._verified[digest] = None
        while len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)

    async def close(self) -> None:
        """Drop the checks still queued (at shutdown; the server no longer answers them)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _cost(hashed: bytes) -> int:
    """The cost factor of a bcrypt hash ("$2b$12$..." is 12), within what bcrypt accepts."""
    try:
        return min(max(int(hashed.split(b"$")[2]), 4), 31)
    except (IndexError, ValueError):
        return 12


def _credentials(header: str) -> tuple[str, str] | None:
    """User and password of a basic ``Authorization`` header; None when it is not one."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def load_web_config(path: Path | str) -> WebConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"--web.config.file: cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--web.config.file: {path}: invalid YAML: {exc}") from None
    try:
        config = WebConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"--web.config.file: {path}: {format_validation_error(exc)}") from None
    for user, hashed in config.basic_auth_users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"--web.config.file: basic_auth_users.{user}: expected a bcrypt hash")
    config.ssl_context()  # fail at start-up, not at the first request
    return config
