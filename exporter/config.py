"""Configuration: one target from the environment or many from a YAML file.

Everything is validated once at start-up; an invalid configuration stops the
program with one line naming the field and the problem. Nothing else in the
exporter reads the environment.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from exporter.collectors.base import CollectorSettings
from exporter.collectors.registry import COLLECTORS
from exporter.sharding import Shard, parse_shard
from exporter.validation import Timeout, base_url, check_patterns

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:9743"


class ConfigError(Exception):
    """An invalid configuration, with a message naming the field."""


def _read_secret_file(path: Path, field: str) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"{field}: cannot read {path}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"{field}: {path} is empty")
    return value


class _SecretSource:
    """A secret read from a file (re-read when the file changes, for rotated tokens) or a value."""

    def __init__(self, value: str | None = None, path: Path | None = None) -> None:
        self._value = value
        self._path = path
        self._mtime: float | None = None
        #: the problem last warned about, so a missing file is said once, not on every call
        self._problem: str | None = None

    def get(self) -> str | None:
        if self._path is None:
            return self._value
        try:
            mtime = self._path.stat().st_mtime
            if mtime != self._mtime:
                self._value = _read_secret_file(self._path, str(self._path))
                self._mtime = mtime
        except (OSError, ValueError) as exc:
            # Keep the last good secret: a rotation in progress must not stop collection.
            problem = str(exc.strerror if isinstance(exc, OSError) and exc.strerror else exc)
            if problem != self._problem:
                self._problem = problem
                log.warning("cannot re-read secret file %s: %s; the last secret read from it stays in use "
                            "until it can be read again", self._path, problem)
            return self._value
        if self._problem is not None:
            self._problem = None
            log.info("secret file %s can be read again", self._path)
        return self._value

    def __repr__(self) -> str:  # never print a secret
        return "<secret>"


class AuthConfig(BaseModel):
    """Credentials by reference: a file or an environment variable, never required inline."""

    model_config = ConfigDict(extra="forbid")

    token_file: Path | None = None
    token_env: str | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None

    _token: _SecretSource | None = PrivateAttr(default=None)
    _password: _SecretSource | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _resolve(self) -> AuthConfig:
        if self.token_file and self.token_env:
            raise ValueError("give token_file or token_env, not both")
        if self.password_file and self.password_env:
            raise ValueError("give password_file or password_env, not both")
        has_token = bool(self.token_file or self.token_env)
        has_password = bool(self.password_file or self.password_env)
        if has_token and (self.username or has_password):
            raise ValueError("use either a token or username + password, not both")
        if has_password and not self.username:
            raise ValueError("username is required with password_file/password_env")
        if self.username and not has_password:
            raise ValueError("password_file or password_env is required with username")
        if self.token_file:
            _read_secret_file(self.token_file, "token_file")
            self._token = _SecretSource(path=self.token_file)
        elif self.token_env:
            self._token = _SecretSource(_from_env(self.token_env, "token_env"))
        if self.password_file:
            _read_secret_file(self.password_file, "password_file")
            self._password = _SecretSource(path=self.password_file)
        elif self.password_env:
            self._password = _SecretSource(_from_env(self.password_env, "password_env"))
        return self

    @classmethod
    def from_values(cls, token: str | None = None, username: str | None = None,
                    password: str | None = None) -> AuthConfig:
        """Credentials given directly (environment variables, flags, tests)."""
        auth = cls()
        if token:
            auth._token = _SecretSource(token)
        elif username:
            auth.username = username
            auth._password = _SecretSource(password or "")
        return auth

    def token(self) -> str | None:
        return self._token.get() if self._token else None

    def basic(self) -> tuple[str, str] | None:
        if self.username and self._password:
            return self.username, self._password.get() or ""
        return None

    @property
    def kind(self) -> str:
        if self._token:
            return "token"
        if self.username:
            return "basic"
        return "anonymous"


def _from_env(name: str, field: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"{field}: environment variable {name} is not set or empty")
    return value


class TlsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    insecure_skip_verify: bool = False
    ca_file: Path | None = None

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} does not exist or is not a file")
        return value


class RepoFilter(BaseModel):
    """Regular expressions on repository keys; exclude wins over include."""

    model_config = ConfigDict(extra="forbid")

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)

    _include: list[re.Pattern[str]] = PrivateAttr(default_factory=list)
    _exclude: list[re.Pattern[str]] = PrivateAttr(default_factory=list)

    @field_validator("include", "exclude")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        return check_patterns(patterns)

    @model_validator(mode="after")
    def _compile(self) -> RepoFilter:
        self._include = [re.compile(p) for p in self.include]
        self._exclude = [re.compile(p) for p in self.exclude]
        return self

    def allows(self, repo: str) -> bool:
        if self._include and not any(p.search(repo) for p in self._include):
            return False
        return not any(p.search(repo) for p in self._exclude)


def _collectors_model() -> type[BaseModel]:
    """Per-collector settings, one field per registered collector."""
    from pydantic import create_model

    fields: dict[str, Any] = {
        name: (cls.settings_model, Field(default_factory=cls.settings_model))
        for name, cls in COLLECTORS.items()
    }
    model: type[BaseModel] = create_model("CollectorsConfig", __config__=ConfigDict(extra="forbid"), **fields)
    return model


CollectorsConfig = _collectors_model()


def normalise_url(url: str) -> str:
    """The platform base URL: no trailing slash, no /artifactory suffix, no user-info."""
    normalised, cut = base_url(url, "/artifactory")
    if cut:
        log.info("target URL ends in /artifactory: using the platform base URL %s", normalised)
    return normalised


class TargetConfig(BaseModel):
    """One JPD to watch."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    url: str
    auth: AuthConfig = Field(default_factory=AuthConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    timeout: Timeout = 10.0
    max_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    retries: Annotated[int, Field(ge=0, le=10)] = 2
    #: calls per second to this JPD, all collectors and retries together (0: unlimited); 35/s is what a JPD
    #: with 10,000 repositories (2,000 replicated, 500 federated) asks at the default intervals
    max_requests_per_second: Annotated[float, Field(ge=0, le=10_000)] = 50.0
    #: an answer larger than this is refused; decoding one as large as this peaks near 200 MiB, under the
    #: chart's 256Mi limit (benchmarks/bench_large_bodies.py), and the largest answers of a JPD with
    #: 100,000 repositories (its storage summary) take about 20 MB
    max_response_bytes: Annotated[int, Field(ge=1024)] = 24 * 1024 * 1024
    #: series this target may expose in all; more are dropped and counted
    max_series: Annotated[int, Field(ge=100)] = 150_000
    #: series one family may expose for this target: a runaway family cannot take the whole budget
    max_series_per_family: Annotated[int, Field(ge=10)] = 110_000
    repos: RepoFilter = Field(default_factory=RepoFilter)
    collectors: CollectorsConfig = Field(default_factory=CollectorsConfig)  # type: ignore[valid-type]

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return normalise_url(value)

    @field_validator("max_requests_per_second")
    @classmethod
    def _rate(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("use 0 (unlimited) or at least 0.1 requests per second")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_.:@/-]+", value):
            raise ValueError(f"{value!r}: use letters, digits and _ . : @ / - only")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> TargetConfig:
        if not self.name:
            self.name = urlsplit(self.url).netloc
        return self

    def collector_settings(self, name: str) -> CollectorSettings:
        return getattr(self.collectors, name)  # type: ignore[no-any-return]

    def enabled_collectors(self, only: list[str] | None = None) -> list[str]:
        """Names of the collectors to run: the defaults and the configured ones, or exactly ``only``."""
        if only:
            return list(only)
        names = []
        for name, cls in COLLECTORS.items():
            enabled = self.collector_settings(name).enabled
            if enabled if enabled is not None else cls.enabled_by_default:
                names.append(name)
        return names


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[TargetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> FileConfig:
        seen: set[str] = set()
        for target in self.targets:
            if target.name in seen:
                raise ValueError(f"two targets are named {target.name!r}; give each a unique name")
            seen.add(target.name)
        return self


class _FromEnvironment(BaseModel):
    """Fields read from the environment variables named ``env_prefix`` + the field's name, in any case;
    values given as arguments (the flags) take precedence.

    A plain model, not pydantic-settings: that library alone cost the process about 5 MB of memory for
    reading a handful of variables.
    """

    model_config = ConfigDict(extra="ignore")
    env_prefix: ClassVar[str] = ""

    def __init__(self, **given: Any) -> None:
        prefix = self.env_prefix.lower()
        names = {prefix + name: name for name in type(self).model_fields}
        found = {names[key.lower()]: value for key, value in os.environ.items() if key.lower() in names}
        super().__init__(**{**found, **given})


class EnvSettings(_FromEnvironment):
    """Settings read from JFROG_* environment variables; command-line flags take precedence."""

    env_prefix = "JFROG_"

    url: str | None = None
    access_token: str | None = None
    access_token_file: Path | None = None
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    exporter_config: Path | None = None
    exporter_listen: str = DEFAULT_LISTEN
    #: INDEX/COUNT or auto/COUNT: watch only this shard's targets (serve only)
    exporter_shard: str | None = None

    @field_validator("exporter_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class LogSettings(_FromEnvironment):
    """How the exporter logs: JFROG_EXPORTER_LOG_LEVEL, _LOG_FORMAT and _DEBUG_LIBRARIES (flags take precedence).

    Read before the rest of the configuration, so that what loading it says is already in the chosen format.
    """

    env_prefix = "JFROG_EXPORTER_"

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    #: other libraries' debug lines (requests, scheduler ticks) too, with log_level debug
    debug_libraries: bool = False


def load_log_settings(level: str | None = None, fmt: str | None = None) -> LogSettings:
    """The logging settings from the flags given (``None``: not given) and the environment."""
    flags: dict[str, Any] = {k: v for k, v in (("log_level", level), ("log_format", fmt)) if v is not None}
    try:
        return LogSettings(**flags)
    except ValidationError as exc:
        message = format_validation_error(exc)
        for field_name in ("log_level", "log_format", "debug_libraries"):
            message = message.replace(field_name, "JFROG_EXPORTER_" + field_name.upper())
        raise ConfigError(message) from None


class ExporterConfig(BaseModel):
    listen: str = DEFAULT_LISTEN
    #: the targets this process watches: those of its shard, when sharded
    targets: list[TargetConfig]
    web_config_file: Path | None = None
    shard: Shard | None = None
    #: how many targets the configuration names, this shard's and the others'
    configured_targets: int = 0


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``targets[0].auth.token_file: cannot read ...``."""
    lines = []
    for err in exc.errors():
        loc = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                loc += f"[{part}]"
            else:
                loc += ("." if loc else "") + str(part)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{loc or 'configuration'}: {msg}")
    return "; ".join(lines)


_FLAG_FIELDS = {"config": "exporter_config", "listen": "exporter_listen", "shard": "exporter_shard"}
_FIELD_NAMES = {"exporter_config": "--config", "exporter_listen": "--listen", "exporter_shard": "--shard"}


def load_config(overrides: dict[str, Any] | None = None) -> ExporterConfig:
    """Build the configuration from flags (``overrides``), the environment and an optional file.

    Sharding applies where ``overrides`` has a ``shard`` key (``serve``), even None: then the flag or
    JFROG_EXPORTER_SHARD; the other commands read every target.
    """
    sharded = "shard" in (overrides or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    web_config_file = overrides.pop("web_config_file", None)
    try:
        env = EnvSettings(**{_FLAG_FIELDS.get(k, k): v for k, v in overrides.items()})
    except ValidationError as exc:
        message = format_validation_error(exc)
        for field_name, flag in _FIELD_NAMES.items():
            message = message.replace(field_name, flag)
        raise ConfigError(message) from None

    targets: list[TargetConfig]
    if env.exporter_config:
        if env.url:
            raise ConfigError("give either --config or --url/JFROG_URL, not both")
        targets = load_targets_file(env.exporter_config)
    elif env.url:
        targets = [target_from_env(env)]
    else:
        raise ConfigError("no target: set JFROG_URL (or --url), or give a configuration file with --config")
    shard = _shard(env.exporter_shard, "--shard" if "shard" in overrides else "JFROG_EXPORTER_SHARD") \
        if sharded and env.exporter_shard else None
    return ExporterConfig(
        listen=env.exporter_listen,
        targets=[t for t in targets if shard.takes(t.name)] if shard else targets,
        web_config_file=web_config_file,
        shard=shard,
        configured_targets=len(targets),
    )


def _shard(text: str, source: str) -> Shard:
    # A StatefulSet's pod has its own name as host name (and in HOSTNAME): auto/COUNT reads its ordinal.
    hostname = os.environ.get("HOSTNAME") or socket.gethostname()
    try:
        return parse_shard(text, hostname)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def target_from_env(env: EnvSettings) -> TargetConfig:
    if env.access_token and env.access_token_file:
        raise ConfigError("JFROG_ACCESS_TOKEN: give the token or JFROG_ACCESS_TOKEN_FILE, not both")
    if env.password and env.password_file:
        raise ConfigError("JFROG_PASSWORD: give the password or JFROG_PASSWORD_FILE, not both")
    auth_fields: dict[str, Any] = {}
    if env.access_token_file:
        auth_fields["token_file"] = env.access_token_file
    if env.password_file:
        auth_fields["password_file"] = env.password_file
        auth_fields["username"] = env.username
    try:
        target = TargetConfig.model_validate({"url": env.url, "auth": auth_fields})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc).replace("url:", "JFROG_URL:", 1)) from None
    if env.access_token:
        target.auth = AuthConfig.from_values(token=env.access_token)
    elif env.username and env.password:
        target.auth = AuthConfig.from_values(username=env.username, password=env.password)
    elif env.username and not env.password_file:
        raise ConfigError("JFROG_USERNAME: JFROG_PASSWORD or JFROG_PASSWORD_FILE is required with it")
    return target


def load_targets_file(path: Path) -> list[TargetConfig]:
    import yaml  # only with a configuration file: a target from the environment does without it

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'targets' list")
    try:
        return FileConfig.model_validate(data).targets
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from None
