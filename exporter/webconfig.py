"""TLS and basic auth for the exporter's own endpoints.

Reads the exporter-toolkit web configuration file (``--web.config.file``) that
Prometheus and its exporters use, so operators can reuse theirs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import bcrypt
import yaml
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.config import ConfigError, format_validation_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

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

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        users = {user: hashed.encode() for user, hashed in self.basic_auth_users.items()}
        # bcrypt is deliberately slow; remember good pairs so scrapes stay cheap.
        verified: set[tuple[str, bytes]] = set()

        @web.middleware
        async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if users and not _authorized(request.headers.get("Authorization", ""), users, verified):
                return web.Response(status=401, text="Unauthorized\n",
                                    headers={"WWW-Authenticate": 'Basic realm="jfrog-exporter"'})
            return await handler(request)

        return basic_auth


def _authorized(header: str, users: dict[str, bytes], verified: set[tuple[str, bytes]]) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    hashed = users.get(user)
    if not sep or hashed is None:
        return False
    key = (user, hashlib.sha256(password.encode()).digest())
    if key in verified:
        return True
    try:
        ok = bcrypt.checkpw(password.encode(), hashed)
    except ValueError:
        return False
    if ok:
        verified.add(key)
    return ok


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
