"""Record what a JPD answers to one collection round, scrubbed of secrets, for replay.

``jfrog-exporter record`` runs the collectors with a hook on the client that
keeps every answer (the last one per request); :func:`write_recording`
scrubs them and writes ``recording.json`` with one body file per answer;
``jfrog-exporter simulate --replay`` serves them again
(:mod:`exporter.simulator.replay`).

Scrubbing is deterministic and happens before anything touches the disk:
credentials are never recorded (only a few response headers are kept),
values of secret keys become ``<redacted>``, user-info leaves every URL,
JWTs and JFrog reference tokens and API keys are redacted wherever they
appear, and user names and e-mail addresses become placeholders
(``user-1``, ``user-1@example.com``) that stay consistent within the
recording, so a token's subject still names the same user as the users list.
The Event service's answers (webhook subscriptions and deliveries) keep only
the fields the exporter reads: the rest is full of receiver URLs and secrets.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import BaseModel

from exporter import __version__
from exporter.collectors import webhooks
from exporter.collectors.activity import ActivitySettings
from exporter.config import TargetConfig
from exporter.outcomes import SUCCESSFUL_OUTCOMES
from exporter.scheduler import Engine
from exporter.snapshot import RunRecord

FORMAT_VERSION = 1
INDEX = "recording.json"
BODIES = "bodies"
REDACTED = "<redacted>"

#: the only response headers recorded (canonical spelling): what the exporter reads, nothing that may hold a secret
RECORDED_HEADERS = ("Content-Type", "Retry-After", "X-JFrog-Version", "X-Artifactory-Node-Id", "Location")
_HEADER_NAMES = {name.lower(): name for name in RECORDED_HEADERS}

#: rounds per recording: collectors that start from a watermark (activity, workers) read everything in the second
ROUNDS = 2


class RecordingError(Exception):
    """A recording that cannot be read or written; the message says which file and why."""


# -- scrubbing -------------------------------------------------------------------------------------

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s\"'<>@]*(?:@[^/?#\s\"'<>@]*)*@")
#: a JWT (its header is JSON, so base64url "eyJ"), a JFrog reference token ("reftkn:01"), a JFrog API key
_TOKENS = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
                     r"|\bcmVmdGtu[A-Za-z0-9+/_-]{16,}=*"
                     r"|\bAKC[A-Za-z0-9]{40,}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
#: the user in a URI or a token subject: ".../users/NAME", "jfac@.../users/NAME"
_USER_SEGMENT = re.compile(r"(?<=/users/)[^/?#\s\"'<>]+")
#: a "key": "string" pair in a text that only looks like JSON (a truncated answer)
_JSON_PAIR = re.compile(r'"(?P<key>[^"\\]{1,64})"(?P<sep>\s*:\s*)"(?P<value>(?:[^"\\]|\\.)*)"')

#: besides credentials: a token's id (it revokes the token, and a replay never needs it)
_SECRET_KEYS = frozenset({
    "password", "passwd", "pwd", "secret", "token", "accesstoken", "refreshtoken", "idtoken", "apikey", "apitoken",
    "licensekey", "licensehash", "hash", "privatekey", "passphrase", "credential", "credentials", "authorization",
    "cookie", "setcookie", "sessionid", "clientsecret", "tokenid", "jti",
    # lists of named secrets (a worker's, a custom webhook's): [{"key"|"name", "value"}]
    "secrets",
})
_SECRET_SUFFIXES = ("password", "passwd", "secret", "token", "apikey", "passphrase", "privatekey")
#: paging handles end in "token" too, and the next request must send them back unchanged to match the recording
_PAGING_SUFFIXES = ("pagetoken", "nexttoken", "continuationtoken")
_NAME_KEYS = frozenset({
    "username", "usernames", "user", "login", "owner", "createdby", "modifiedby", "lastmodifiedby", "updatedby",
    "deployedby", "triggeredby", "requestedby", "author", "displayname", "fullname", "firstname", "lastname",
})
_EMAIL_KEYS = frozenset({"email", "mail", "emailaddress"})
_LICENSE_KEYS = frozenset({"licensedTo", "validThrough", "licenseHash", "licenseKey"})


def _normal(key: str) -> str:
    return re.sub(r"[-_.\s]", "", key).lower()


def is_secret_key(key: str) -> bool:
    """Whether a JSON key holds a credential or a license secret (case, '_' and '-' ignored)."""
    norm = _normal(key)
    if norm.endswith(_PAGING_SUFFIXES):
        return False
    return norm in _SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)


def strip_userinfo(text: str) -> str:
    """Every URL in ``text`` without its user-info: ``https://user:pass@host`` becomes ``https://host``."""
    return _URL_USERINFO.sub(lambda m: m.group("scheme"), text)


def redact_tokens(text: str) -> str:
    """JWTs, JFrog reference tokens and API keys anywhere in ``text`` replaced by ``<redacted>``, and the
    values of query parameters named like a secret (``?token=...``, ``&password=...``)."""
    return _QUERY_PARAM.sub(_redacted_param, _TOKENS.sub(REDACTED, text))


#: a query parameter of a URL: ``?name=value`` or ``&name=value``
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;](?P<name>[^=&#;\s\"'?]+)=)(?P<value>[^&#;\s\"']*)")


def _redacted_param(match: re.Match[str]) -> str:
    if match.group("value") and is_secret_key(match.group("name")):
        return match.group("lead") + REDACTED
    return match.group(0)


class NameMap:
    """User names and e-mail addresses to placeholders, numbered in the order first seen."""

    def __init__(self, keep: bool = False) -> None:
        #: --keep-names: names and addresses stay as recorded
        self.keep = keep
        self.placeholders: dict[str, str] = {}
        # A placeholder met again (an e-mail renamed before its /users/ path is) stays as it is.
        self._issued: set[str] = set()

    def user(self, name: str) -> str:
        if self.keep or not name or name in self._issued:
            return name
        if _EMAIL.fullmatch(name):
            return self.email(name)
        placeholder = self.placeholders.get(name)
        if placeholder is None:
            placeholder = self.placeholders[name] = f"user-{len(self.placeholders) + 1}"
            self._issued.add(placeholder)
        return placeholder

    def email(self, address: str) -> str:
        # Named after the local part, so alice@acme.example and the user alice share a placeholder.
        local = address.rsplit("@", 1)[0]
        return address if self.keep else f"{self.user(local)}@example.com"

    def in_text(self, text: str) -> str:
        """E-mail addresses and the users of ``/users/NAME`` paths renamed inside a longer string."""
        if self.keep:
            return text
        text = _EMAIL.sub(lambda m: self.email(m.group(0)), text)
        return _USER_SEGMENT.sub(lambda m: self.user(m.group(0)), text)


@dataclass
class Scrubber:
    """What one recording's scrubbing knows: its names and how much it changed."""

    names: NameMap = field(default_factory=NameMap)
    #: values replaced by <redacted> or with user-info removed
    redacted: int = 0

    def string(self, text: str) -> str:
        """Any string value: no user-info, no tokens, names replaced."""
        secret_free = redact_tokens(strip_userinfo(text))
        if secret_free != text:
            self.redacted += 1
        return self.names.in_text(secret_free)

    def secret(self, value: Any) -> Any:
        """The value of a secret key: every string and number in it redacted (null, booleans and "" hide nothing)."""
        if isinstance(value, dict):
            return {key: self.secret(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.secret(item) for item in value]
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "":
            self.redacted += 1
            return REDACTED
        return value

    def json(self, value: Any, context: str = "") -> Any:
        """A decoded JSON value with its secrets redacted and its users renamed; ``context``: the parent key."""
        if isinstance(value, dict):
            return self._object(value, context)
        if isinstance(value, list):
            return [self.json(item, context) for item in value]
        if isinstance(value, str):
            return self.string(value)
        return value

    def _object(self, obj: dict[str, Any], context: str) -> dict[str, Any]:
        license_like = _normal(context) in ("license", "licenses") or not _LICENSE_KEYS.isdisjoint(obj)
        # In a users list (Access, or Artifactory's {"name", "uri": ".../users/NAME", "realm"}) "name" is a user.
        user_like = _normal(context) == "users" or ("realm" in obj and "/users/" in str(obj.get("uri", "")))
        out: dict[str, Any] = {}
        for key, value in obj.items():
            norm = _normal(key)
            if is_secret_key(key) or (license_like and norm == "key"):
                out[key] = self.secret(value)
            elif norm in _NAME_KEYS or (user_like and norm == "name"):
                out[key] = self._names(value, key)
            elif norm in _EMAIL_KEYS and isinstance(value, str) and _EMAIL.fullmatch(value):
                out[key] = self.names.email(value)
            else:
                out[key] = self.json(value, key)
        return out

    def _names(self, value: Any, key: str) -> Any:
        if isinstance(value, str):
            return self.names.user(value)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return [self.names.user(item) for item in value]
        return self.json(value, key)

    def text(self, text: str) -> str:
        """A text answer (Open Metrics, a page, a plain refusal) keeps its content; URLs lose user-info.

        A text that only looks like JSON (cut short) also loses the values of its secret keys.
        """
        clean = redact_tokens(strip_userinfo(text))
        if clean.lstrip()[:1] in ("{", "["):
            clean = _JSON_PAIR.sub(self._pair, clean)
        if clean != text:
            self.redacted += 1
        return clean

    def _pair(self, match: re.Match[str]) -> str:
        key, value = match.group("key"), match.group("value")
        if is_secret_key(key):
            value = REDACTED
        elif _normal(key) in _NAME_KEYS:
            value = self.names.user(value)
        elif _normal(key) in _EMAIL_KEYS:
            value = self.names.email(value)
        else:
            value = self.names.in_text(value)
        return f'"{key}"{match.group("sep")}"{value}"'

    def body(self, raw: bytes, content_type: str) -> bytes:
        """An answer's body, scrubbed; byte for byte as received when there was nothing to scrub."""
        if not raw:
            return raw
        text = raw.decode("utf-8", "replace")
        if "json" in content_type or text.lstrip()[:1] in ("{", "["):
            try:
                decoded = json.loads(text)
            except ValueError:
                pass
            else:
                clean = self.json(decoded)
                return raw if clean == decoded else json.dumps(clean, ensure_ascii=False).encode()
        clean_text = self.text(text)
        return raw if clean_text == text else clean_text.encode()

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The recorded headers only (credentials and cookies never are), URLs without user-info."""
        out = {}
        for name, value in headers.items():
            canonical = _HEADER_NAMES.get(name.lower())
            if canonical is not None:
                out[canonical] = strip_userinfo(value)
        return dict(sorted(out.items()))


# -- recording -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """One answer as the JPD gave it (not scrubbed: it lives in memory only)."""

    method: str
    #: relative to the platform base URL, percent-encoded as sent
    path: str
    query: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def key(self) -> tuple[str, str, str]:
        return self.method, self.path, self.query


class Recorder:
    """The client's exchange hook: keeps the last answer to each request."""

    def __init__(self, base_url: str) -> None:
        # A JPD behind a path prefix: requests are recorded relative to it, so a replay serves them at its root.
        self._prefix = urlsplit(base_url).path.rstrip("/")
        self.exchanges: dict[tuple[str, str, str], Exchange] = {}

    def __call__(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        path, _, query = request.url.raw_path.decode("ascii", "replace").partition("?")
        if self._prefix and path.startswith(self._prefix + "/"):
            path = path[len(self._prefix):]
        exchange = Exchange(request.method, path, query, response.status_code, dict(response.headers), body)
        self.exchanges[exchange.key] = exchange


@dataclass(frozen=True, slots=True)
class CollectorRound:
    """How one collector ended in the recorded round: what a replay is checked against."""

    outcome: str
    #: endpoint -> outcome of each part
    parts: dict[str, str]
    #: families that had samples
    families: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "parts": self.parts, "families": self.families}


@dataclass
class RecordedRound:
    target: TargetConfig
    exchanges: dict[tuple[str, str, str], Exchange]
    collectors: dict[str, CollectorRound]
    #: how each collector's last run ended, with the reasons of its failed parts
    runs: dict[str, RunRecord]
    #: the exposition after the last round, as the JPD's answers made it (not scrubbed: never written)
    exposition: str

    @property
    def failed_entirely(self) -> bool:
        """Not one part of any collector succeeded: nothing worth replaying was seen."""
        return not any(o in SUCCESSFUL_OUTCOMES for c in self.collectors.values() for o in c.parts.values())


def recording_target(target: TargetConfig) -> TargetConfig:
    """The target as recorded: activity searches at once (settle 0), so the second round makes them."""
    activity = target.collector_settings("activity")
    if not isinstance(activity, ActivitySettings) or activity.settle == 0:
        return target
    configured: BaseModel = target.collectors
    collectors = configured.model_copy(update={"activity": activity.model_copy(update={"settle": 0.0})})
    return target.model_copy(update={"collectors": collectors})


async def record_round(target: TargetConfig, only: list[str] | None = None) -> RecordedRound:
    """Run the target's collectors (or exactly ``only``) for :data:`ROUNDS` rounds and keep every answer."""
    target = recording_target(target)
    engine = Engine([target], only)
    recorder = Recorder(target.url)
    runtime = engine.targets[target.name]
    runtime.client.recorder = recorder
    try:
        for _ in range(ROUNDS):
            await engine.run_all_once()
    finally:
        await engine.shutdown()
    collectors = {}
    runs = {}
    for name in runtime.collectors:
        run = runs[name] = engine.store.run(target.name, name)
        families = sorted({f.name for f in engine.store.families(target.name, name) if f.samples})
        collectors[name] = CollectorRound(str(run.outcome), {p.endpoint: str(p.outcome) for p in run.parts},
                                          families)
    payload = engine.store.payload
    exposition = payload.text.decode() if payload is not None else ""
    return RecordedRound(target, recorder.exchanges, collectors, runs, exposition)


@dataclass(frozen=True, slots=True)
class Written:
    index: Path
    answers: int
    body_files: int
    body_bytes: int
    redacted: int
    #: the placeholders given, which rename the same users in what the recorded round exposed
    names: NameMap

    @property
    def renamed(self) -> int:
        return len(self.names.placeholders)


def _extension(content_type: str, body: bytes) -> str:
    if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "html" if "html" in content_type else "txt"


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _settings(target: TargetConfig, collectors: Iterable[str]) -> dict[str, Any]:
    """What a replay needs to send the same requests: the repository filter and the collectors' settings."""
    return {
        "repos": target.repos.model_dump(mode="json"),
        "collectors": {name: target.collector_settings(name).model_dump(mode="json", exclude={"enabled", "interval"})
                       for name in collectors},
    }


def write_recording(out: Path, recorded: RecordedRound, *, keep_names: bool = False,
                    now: datetime | None = None) -> Written:
    """Scrub the recorded answers and write ``out/recording.json`` and ``out/bodies/``."""
    scrubber = Scrubber(NameMap(keep=keep_names))
    bodies = out / BODIES
    try:
        if bodies.is_dir():
            shutil.rmtree(bodies)  # a recording is written whole: no body of an earlier one stays behind
        bodies.mkdir(parents=True)
    except OSError as exc:
        raise RecordingError(f"{out}: cannot write: {exc.strerror or exc}") from None
    entries = []
    files = size = 0
    # Sorted, so numbering (of files and of placeholders) is the same for the same answers.
    for number, key in enumerate(sorted(recorded.exchanges), start=1):
        exchange = recorded.exchanges[key]
        headers = scrubber.headers(exchange.headers)
        reduced = webhooks.for_recording(exchange.path, exchange.body) if 200 <= exchange.status < 300 else None
        if reduced is not None and reduced != exchange.body:
            scrubber.redacted += 1
        body = scrubber.body(exchange.body if reduced is None else reduced, headers.get("Content-Type", ""))
        name = None
        if body:
            name = f"{BODIES}/{number:04d}.{_extension(headers.get('Content-Type', ''), body)}"
            _write(out / name, body)
            files, size = files + 1, size + len(body)
        entries.append({"method": exchange.method, "path": exchange.path, "query": exchange.query,
                        "status": exchange.status, "headers": headers, "body": name})
    index = {
        "format": FORMAT_VERSION,
        "exporter_version": __version__,
        "recorded_at": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url": _base_url(recorded.target.url),
        "target": recorded.target.name,
        "names_kept": keep_names,
        "settings": _settings(recorded.target, recorded.collectors),
        "round": {name: c.to_json() for name, c in recorded.collectors.items()},
        "entries": entries,
    }
    _write(out / INDEX, (json.dumps(index, indent=2, ensure_ascii=False) + "\n").encode())
    return Written(out / INDEX, len(entries), files, size, scrubber.redacted, scrubber.names)


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise RecordingError(f"{path}: cannot write: {exc.strerror or exc}") from None


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One recorded answer, as a replay serves it."""

    method: str
    path: str
    query: str
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Recording:
    directory: Path
    url: str
    recorded_at: str
    target: str
    settings: dict[str, Any]
    round: dict[str, CollectorRound]
    answers: list[Answer]


def load_recording(directory: Path) -> Recording:
    """Read a recording written by :func:`write_recording`; :class:`RecordingError` says what is wrong."""
    index_path = directory / INDEX
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecordingError(f"{index_path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RecordingError(f"{index_path}: not JSON: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT_VERSION:
        found = index.get("format") if isinstance(index, dict) else None
        raise RecordingError(f"{index_path}: format {found!r} is not {FORMAT_VERSION}: not a recording this "
                             "version reads")
    try:
        answers = [_answer(directory, entry) for entry in index["entries"]]
        rounds = {name: CollectorRound(str(c["outcome"]), dict(c["parts"]), list(c["families"]))
                  for name, c in (index.get("round") or {}).items()}
        return Recording(directory, str(index["url"]), str(index["recorded_at"]), str(index.get("target", "")),
                         dict(index.get("settings") or {}), rounds, answers)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordingError(f"{index_path}: malformed entry ({type(exc).__name__}: {exc})") from None


def _answer(directory: Path, entry: dict[str, Any]) -> Answer:
    body = b""
    if entry.get("body"):
        body_path = (directory / str(entry["body"])).resolve()
        # A recording is data from elsewhere: its body names stay inside its directory.
        if not body_path.is_relative_to(directory.resolve()):
            raise ValueError(f"body {entry['body']!r} lies outside the recording")
        try:
            body = body_path.read_bytes()
        except OSError as exc:
            raise ValueError(f"{entry['body']}: {exc.strerror or exc}") from None
    return Answer(str(entry["method"]).upper(), str(entry["path"]), str(entry.get("query") or ""),
                  int(entry["status"]), {str(k): str(v) for k, v in dict(entry.get("headers") or {}).items()}, body)
