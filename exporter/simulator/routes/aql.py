"""AQL (POST /artifactory/api/search/aql) over an item list that grows while the simulator runs.

Enough of the language for monitoring queries and the common clients:
``items.find(<criteria>)`` with $and/$or (a key may repeat, as JFrog's CLI
writes it), the comparison operators, $match/$nmatch wildcards and the
relative $last/$before on item, checksum and stat fields, then ``.include``,
``.sort``, ``.offset``, ``.limit``, ``.distinct`` and ``.transitive``.
Items are created and downloaded at the rates of the scenario's activity
area from the moment the simulator starts; tests can add their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from exporter.simulator.core import STATE, SimState
from exporter.simulator.security_data import ACTIVITY_AREA, ActivityArea, now_iso

RUNTIME_KEY = "activity"
#: at most this many generated events per request, so a long idle simulator answers quickly
_MAX_EVENTS_PER_REQUEST = 100_000

#: what an item shows when the query names no item field (the documents' sample, 2.8.1)
_ITEM_FIELDS = ("repo", "path", "name", "type", "size", "created", "created_by", "modified", "modified_by",
                "updated")
#: the further item fields of 9.5, shown only when named (or with "*")
_EXTRA_FIELDS = ("depth", "original_md5", "actual_md5", "original_sha1", "actual_sha1", "sha256")
_ALL_FIELDS = _ITEM_FIELDS + _EXTRA_FIELDS
_STAT_FIELDS = ("downloaded", "downloads", "downloaded_by")
_DATE_FIELDS = {"created", "modified", "updated", "stat.downloaded"}


@dataclass
class Item:
    repo: str
    path: str
    name: str
    created: float
    size: int = 1024
    downloaded: float | None = None
    downloads: int = 0

    def checksum(self, algorithm: str) -> str:
        """A stable stand-in for the content's digest: the simulator stores no content."""
        where = f"{self.repo}/{self.path}/{self.name}".encode()
        return hashlib.new(algorithm, where, usedforsecurity=False).hexdigest()

    def value(self, name: str) -> Any:
        if name in _EXTRA_FIELDS:
            return self._extra(name)
        fields: dict[str, Any] = {
            "created": self.created, "modified": self.created, "updated": self.created,
            "type": "file", "created_by": "deployer", "modified_by": "deployer",
            "repo": self.repo, "path": self.path, "name": self.name, "size": self.size,
            "stat.downloaded": self.downloaded,
            "stat.downloads": self.downloads or None,  # AQL: zero downloads is null
            "stat.downloaded_by": "ci-bot" if self.downloads else None,
        }
        if name not in fields:
            raise AqlError(f"unknown field {name}")
        return fields[name]

    def _extra(self, name: str) -> Any:
        if name == "depth":
            return len([p for p in self.path.split("/") if p and p != "."]) + 1
        digest = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}[name.rsplit("_", 1)[-1]]
        # Nothing is modified after upload here, so the original and actual checksums agree.
        return self.checksum(digest)


@dataclass
class ActivityLog:
    """The simulator's items; grown from the scenario's rates up to the time of each request."""

    started: float
    items: list[Item] = field(default_factory=list)
    created_events: int = 0
    download_events: int = 0
    #: tests switch the steady growth off to add items of their own
    growing: bool = True

    def add(self, repo: str, path: str, name: str, created: float) -> Item:
        item = Item(repo, path, name, created, size=1024 + len(self.items))
        self.items.append(item)
        return item

    def download(self, item: Item, when: float) -> None:
        item.downloaded = when
        item.downloads += 1

    def advance(self, area: ActivityArea, now: float) -> None:
        if not self.growing or not area.repos:
            return
        elapsed = max(0.0, now - self.started)
        if area.created_per_minute > 0:
            step = 60.0 / area.created_per_minute
            due = min(int(elapsed / step), self.created_events + _MAX_EVENTS_PER_REQUEST)
            for k in range(self.created_events, due):
                repo = area.repos[k % len(area.repos)]
                self.add(repo, f"org/acme/app/{k // 100}", f"app-{k}.jar", self.started + (k + 1) * step)
            self.created_events = max(self.created_events, due)
        if area.downloads_per_minute > 0 and self.items:
            step = 60.0 / area.downloads_per_minute
            due = min(int(elapsed / step), self.download_events + _MAX_EVENTS_PER_REQUEST)
            recent = self.items[-500:]
            for k in range(self.download_events, due):
                item = recent[(k * 7919) % len(recent)]
                # Never downloaded before it existed.
                self.download(item, max(self.started + (k + 1) * step, item.created))
            self.download_events = max(self.download_events, due)


def _sort_key(name: str) -> Callable[[Item], tuple[bool, Any]]:
    """Sort key of one field; items without it sort apart from those with it (None never compared)."""
    return lambda item: (item.value(name) is None, item.value(name))


def activity_log(state: SimState) -> ActivityLog:
    """The running simulator's item list, seeded with the scenario's history on first use."""
    log = state.runtime.get(RUNTIME_KEY)
    if isinstance(log, ActivityLog):
        return log
    area = state.scenario.areas.get(ACTIVITY_AREA)
    log = ActivityLog(started=area.started if isinstance(area, ActivityArea) else time.time())
    if isinstance(area, ActivityArea) and area.repos:
        # History before the start: created over the previous day, some of it downloaded since.
        for k in range(area.history):
            created = log.started - 86400 + k * (86000 / max(1, area.history))
            item = log.add(area.repos[k % len(area.repos)], f"org/acme/lib/{k // 50}", f"lib-{k}.jar", created)
            if k % 3 == 0:
                log.download(item, created + 300)
    state.runtime[RUNTIME_KEY] = log
    return log


# -- the query language --------------------------------------------------------

class AqlError(ValueError):
    pass


class Pairs(list[tuple[str, Any]]):
    """A JSON object with its keys in order and repeats kept: JFrog's CLI sends {"$or": [...], "$or": [...]}
    and means both (jfrog-client-go, artifactory/services/utils/aqlquerybuilder.go)."""


def _criteria(text: str) -> Any:
    return json.loads(text, object_pairs_hook=Pairs) if text else Pairs()


@dataclass
class Query:
    criteria: Any
    include: list[str] = field(default_factory=list)
    sort: tuple[str, list[str]] | None = None
    offset: int = 0
    limit: int | None = None


def _balanced(text: str, start: int) -> int:
    """Index just past the parenthesis closing the one at ``start``, skipping JSON strings."""
    depth = 0
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise AqlError("unbalanced parentheses")


def parse_query(text: str) -> Query:
    text = text.strip()
    if not text.startswith("items.find("):
        raise AqlError("only the items domain is simulated")
    pos = len("items.find")
    end = _balanced(text, pos)
    inner = text[pos + 1:end - 1].strip()
    try:
        criteria = _criteria(inner)
    except ValueError as exc:
        raise AqlError(f"criteria are not valid JSON: {exc}") from None
    query = Query(criteria)
    while end < len(text):
        rest = text[end:].lstrip()
        if not rest.startswith("."):
            raise AqlError(f"unexpected {rest[:20]!r}")
        name_end = rest.index("(") if "(" in rest else -1
        if name_end < 0:
            raise AqlError(f"unexpected {rest[:20]!r}")
        name = rest[1:name_end].strip()
        offset = len(text) - len(rest)
        close = _balanced(text, offset + name_end)
        args = text[offset + name_end + 1:close - 1]
        end = close
        try:
            value = json.loads(f"[{args}]")
        except ValueError as exc:
            raise AqlError(f".{name}: {exc}") from None
        if name == "include":
            query.include = [str(v) for v in value]
        elif name == "sort" and len(value) == 1 and isinstance(value[0], dict) and len(value[0]) == 1:
            [(direction, fields)] = list(value[0].items())
            if direction not in ("$asc", "$desc"):
                raise AqlError(".sort takes $asc or $desc")
            query.sort = (direction, [str(f) for f in fields])
        elif name in ("limit", "offset") and len(value) == 1 and isinstance(value[0], int):
            setattr(query, name, value[0])
        elif name in ("distinct", "transitive"):
            pass  # unique results are all the simulator has; it has no remote content to fetch
        else:
            raise AqlError(f"unsupported element .{name}")
    return query


#: partial precision the documents allow (9.6.7): just a year, or a year and a month
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
#: relative time periods of $last and $before (9.6.8), in seconds; a month and a year taken as 30 and 365 days
_PERIODS = {"mills": 0.001, "ms": 0.001, "seconds": 1, "s": 1, "minutes": 60, "days": 86400, "d": 86400,
            "weeks": 7 * 86400, "w": 7 * 86400, "months": 30 * 86400, "mo": 30 * 86400,
            "years": 365 * 86400, "y": 365 * 86400}
_PERIOD = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


def _date(value: Any) -> float:
    if not isinstance(value, str):
        raise AqlError(f"expected a date, got {value!r}")
    text = value.strip()
    partial = _PARTIAL_DATE.match(text)
    if partial:
        return datetime(int(partial[1]), int(partial[2] or 1), 1, tzinfo=UTC).timestamp()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AqlError(f"cannot parse date {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _period(value: Any) -> float:
    """Seconds of a relative period such as "3d" or "2w"."""
    found = _PERIOD.match(value) if isinstance(value, str) else None
    if found is None or found[2] not in _PERIODS:
        raise AqlError(f"cannot parse relative time {value!r}")
    return int(found[1]) * _PERIODS[found[2]]


def _wildcard(pattern: Any) -> re.Pattern[str]:
    """AQL's wildcards: "*" any string, "?" one character; everything else, brackets too, is literal."""
    if not isinstance(pattern, str):
        raise AqlError(f"$match takes a string, got {pattern!r}")
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def _match(a: Any, b: Any) -> bool:
    return isinstance(a, str) and _wildcard(b).fullmatch(a) is not None


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a is not None and b is not None and a > b,
    "$gte": lambda a, b: a is not None and b is not None and a >= b,
    "$lt": lambda a, b: a is not None and b is not None and a < b,
    "$lte": lambda a, b: a is not None and b is not None and a <= b,
    "$match": _match,
    "$nmatch": lambda a, b: isinstance(a, str) and not _match(a, b),
}
#: relative operators, as the absolute ones they stand for at the time of the query
_RELATIVE = {"$last": "$gte", "$before": "$lte"}


def _compare(item: Item, fieldname: str, op: str, operand: Any) -> bool:
    if fieldname == "type" and op == "$eq" and operand in ("any", "file", "folder"):
        # Every simulated item is a file; "any" takes files and folders alike.
        return operand in ("any", "file")
    if op in _RELATIVE:
        if fieldname not in _DATE_FIELDS:
            raise AqlError(f"{op} applies to dates, not {fieldname}")
        when = datetime.fromtimestamp(time.time() - _period(operand), UTC).isoformat()
        op, operand = _RELATIVE[op], when
    if op not in _OPS:
        raise AqlError(f"unsupported operator {op}")
    actual = item.value(fieldname)
    if fieldname in _DATE_FIELDS and operand is not None:
        # Artifactory stores milliseconds: compare at that precision, like the database does.
        operand = round(_date(operand) * 1000)
        actual = None if actual is None else round(actual * 1000)
    elif fieldname in ("size", "depth", "stat.downloads") and operand is not None:
        operand = int(operand)
    return _OPS[op](actual, operand)


def _entries(criteria: Any) -> list[tuple[str, Any]]:
    """The key/value pairs of a JSON object, repeated keys included."""
    if isinstance(criteria, Pairs):
        return list(criteria)
    if isinstance(criteria, dict):
        return list(criteria.items())
    raise AqlError("criteria must be JSON objects")


def _is_object(value: Any) -> bool:
    return isinstance(value, (Pairs, dict))


def _holds(item: Item, key: str, value: Any) -> bool:
    if key == "$and":
        return all(matches(item, c) for c in value)
    if key == "$or":
        return any(matches(item, c) for c in value)
    if _is_object(value):
        return all(_compare(item, key, op, operand) for op, operand in _entries(value))
    return _compare(item, key, "$eq", value)


def matches(item: Item, criteria: Any) -> bool:
    if isinstance(criteria, list) and not isinstance(criteria, Pairs):
        return all(matches(item, c) for c in criteria)
    return all(_holds(item, key, value) for key, value in _entries(criteria))


def _render(item: Item, include: list[str]) -> dict[str, Any]:
    item_fields = [f for f in include if not f.startswith("stat")]
    stat_fields = [f[5:] for f in include if f.startswith("stat.")] + (list(_STAT_FIELDS) if "stat" in include else [])
    out: dict[str, Any] = {}
    for name in item_fields or _ITEM_FIELDS:
        if name == "*":
            for each in _ALL_FIELDS:
                out[each] = _output(item, each)
        elif name in _ALL_FIELDS:
            out[name] = _output(item, name)
        else:
            raise AqlError(f"unknown field {name}")
    if stat_fields:
        stats = {}
        for name in stat_fields:
            if name not in _STAT_FIELDS:
                raise AqlError(f"unknown field stat.{name}")
            stats[name] = _output(item, f"stat.{name}")
        out["stats"] = [stats]
    return out


def _output(item: Item, name: str) -> Any:
    value = item.value(name)
    if value is not None and (name in _DATE_FIELDS):
        return now_iso(value)
    if name == "stat.downloads":
        return value or 0
    return value


def run(query: Query, items: list[Item], oss: bool) -> dict[str, Any]:
    if query.sort is not None:
        if oss:
            raise AqlError("Sorting is not supported by AQL in the open source version")
        direction, fields = query.sort
        for name in reversed(fields):
            items = sorted(items, key=_sort_key(name), reverse=direction == "$desc")
    found = [i for i in items if matches(i, query.criteria)]
    page = found[query.offset:][: query.limit] if query.limit is not None else found[query.offset:]
    rng: dict[str, Any] = {"start_pos": query.offset, "end_pos": query.offset + len(page), "total": len(page)}
    if query.limit is not None:
        rng["limit"] = query.limit
    return {"results": [_render(i, query.include) for i in page], "range": rng}


async def search(request: web.Request) -> web.Response:
    """2.8.1: text/plain query in, JSON out; a query the parser refuses is a 400 with a plain-text reason."""
    state = request.app[STATE]
    text = await request.text()
    log = activity_log(state)
    area = state.scenario.areas.get(ACTIVITY_AREA)
    if isinstance(area, ActivityArea):
        log.advance(area, time.time())
    try:
        query = parse_query(text)
        role = state.credentials.role(request.headers.get("Authorization", ""))
        if role != "admin" and not {"repo", "path", "name"} <= set(query.include):
            raise AqlError("For permissions reasons AQL demands the following fields: repo, path and name.")
        body = run(query, log.items, oss=state.scenario.edition in ("oss", "jcr"))
    except AqlError as exc:
        return web.Response(status=400, text=f"Failed to parse query: {exc}", content_type="text/plain")
    return web.json_response(body)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/artifactory/api/search/aql", search)
