"""Scrubbing, the recording format and replay matching, on crafted payloads (no JPD, no simulator)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.client import JfrogClient
from exporter.collectors.activity import ActivitySettings
from exporter.recording import (
    FORMAT_VERSION,
    INDEX,
    REDACTED,
    CollectorRound,
    Exchange,
    NameMap,
    RecordedRound,
    Recorder,
    RecordingError,
    Scrubber,
    is_secret_key,
    load_recording,
    recording_target,
    redact_tokens,
    strip_userinfo,
    write_recording,
)
from exporter.simulator.replay import ReplayState, respond
from tests.conftest import make_target
from tests.support import jfrog_platform

JWT = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqZmFjQDAxaC91c2Vycy9hbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."
       "c2lnbmF0dXJl")
REFERENCE_TOKEN = "cmVmdGtuOjAxOjE3MzA0NTQ0MDA6dGVzdHRva2VuZm9ydW5pdHRlc3Rz"
API_KEY = "AKC" + "a1B2c3D4e5" * 7


# -- pure string rules --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "clean"), [
    ("https://user:pass@host.example/artifactory", "https://host.example/artifactory"),
    ("http://deployer:S3cret@dr.example:8082/x?y=1", "http://dr.example:8082/x?y=1"),
    ("ldap://cn=svc:p@ss@ldap.example:389", "ldap://ldap.example:389"),
    ("push to https://a:b@one.example and https://c@two.example/", "push to https://one.example and https://two.example/"),
    ("https://host.example/path@version", "https://host.example/path@version"),
    ("alice@acme.example", "alice@acme.example"),
    ("no url here", "no url here"),
])
def test_user_info_leaves_every_url(text: str, clean: str) -> None:
    assert strip_userinfo(text) == clean


@pytest.mark.parametrize(("text", "clean"), [
    (JWT, REDACTED),
    (f"Bearer {JWT} was used", f"Bearer {REDACTED} was used"),
    (f"token={REFERENCE_TOKEN}", f"token={REDACTED}"),
    (API_KEY, REDACTED),
    ("7.104.3", "7.104.3"),
    ("host-01.example.com", "host-01.example.com"),
    ("jfrt@01hsim7k4n5r2q7w9", "jfrt@01hsim7k4n5r2q7w9"),
    # Secrets in the query of a URL the JPD echoes (an Access Federation target, a webhook receiver).
    ("https://dr.example/access?token=s3cret&page=2", f"https://dr.example/access?token={REDACTED}&page=2"),
    ("https://h/hook?x=1&api_key=k3y#f", f"https://h/hook?x=1&api_key={REDACTED}#f"),
    ("/api/failures/list?repoKey=a&limit=1000", "/api/failures/list?repoKey=a&limit=1000"),
])
def test_tokens_are_redacted_wherever_they_appear(text: str, clean: str) -> None:
    assert redact_tokens(text) == clean


@pytest.mark.parametrize("key", ["password", "Password", "proxyPassword", "token", "access_token", "refresh_token",
                                 "id_token", "secret", "clientSecret", "apiKey", "api-key", "licenseKey",
                                 "licenseHash", "hash", "token_id", "passphrase", "privateKey"])
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["tokens", "key", "name", "sha1", "sha256", "username", "expiry", "nextPageToken",
                                 "token_subjects", "refreshable", "passwordExpired"])
def test_keys_that_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


# -- JSON bodies --------------------------------------------------------------------------------------------------

def scrub(value: Any, keep_names: bool = False) -> tuple[Any, Scrubber]:
    scrubber = Scrubber(NameMap(keep=keep_names))
    return scrubber.json(value), scrubber


def test_credentials_of_replication_configs_are_redacted() -> None:
    config = [{"repoKey": "libs-release-local", "url": "https://deployer:Sup3rS3cret@dr.example/artifactory/libs",
               "username": "replicator", "password": "Repl1cat0r-s3cret", "enabled": True, "cronExp": "0 0 * * * ?"}]
    clean, scrubber = scrub(config)
    assert clean == [{"repoKey": "libs-release-local", "url": "https://dr.example/artifactory/libs",
                      "username": "user-1", "password": REDACTED, "enabled": True, "cronExp": "0 0 * * * ?"}]
    assert scrubber.redacted == 2


def test_license_secrets_go_and_repository_keys_stay() -> None:
    body = {
        "licenses": [{"type": "Enterprise", "validThrough": "May 15, 2030", "licensedTo": "Acme Corp",
                      "licenseHash": "179b7ea384d0c4655a00dfac7285a21d986a17923", "key": "LICENSE-KEY-TEXT",
                      "nodeId": "art1"}],
        "license": {"key": "OTHER-LICENSE-KEY", "type": "Pro"},
        "repositories": [{"key": "libs-release-local", "type": "LOCAL"}],
    }
    clean, _ = scrub(body)
    assert clean["licenses"][0] == {"type": "Enterprise", "validThrough": "May 15, 2030", "licensedTo": "Acme Corp",
                                    "licenseHash": REDACTED, "key": REDACTED, "nodeId": "art1"}
    assert clean["license"] == {"key": REDACTED, "type": "Pro"}
    assert clean["repositories"] == [{"key": "libs-release-local", "type": "LOCAL"}]


def test_tokens_in_bodies_are_redacted_and_their_subjects_renamed() -> None:
    body = {"access_token": JWT, "refresh_token": "r-e-f-r-e-s-h", "token_type": "Bearer", "expires_in": 3600,
            "tokens": [{"token_id": "a1b2", "subject": "jfac@01h/users/alice", "description": f"made by {JWT}"},
                       {"token_id": "c3d4", "subject": "jfrt@01h", "expiry": 1700000000}]}
    clean, _ = scrub(body)
    assert clean == {"access_token": REDACTED, "refresh_token": REDACTED, "token_type": "Bearer", "expires_in": 3600,
                     "tokens": [{"token_id": REDACTED, "subject": "jfac@01h/users/user-1",
                                 "description": f"made by {REDACTED}"},
                                {"token_id": REDACTED, "subject": "jfrt@01h", "expiry": 1700000000}]}


def test_user_names_and_emails_become_consistent_placeholders() -> None:
    body = {
        "users": [{"username": "alice", "email": "alice@acme.example", "realm": "internal",
                   "uri": "https://jpd.example/access/api/v2/users/alice"},
                  {"username": "bob", "email": "robert@acme.example", "realm": "ldap"}],
        "tokens": [{"subject": "jfac@01h/users/bob"}, {"subject": "jfac@01h/users/alice"}],
        "group": {"name": "deployers", "usernames": ["bob", "carol"]},
        "notify": "write to alice@acme.example or carol@acme.example",
        "artifacts": [{"repo": "libs", "created_by": "alice", "modifiedBy": "dave"}],
    }
    clean, scrubber = scrub(body)
    assert clean["users"] == [
        {"username": "user-1", "email": "user-1@example.com", "realm": "internal",
         "uri": "https://jpd.example/access/api/v2/users/user-1"},
        {"username": "user-2", "email": "user-3@example.com", "realm": "ldap"},
    ]
    assert clean["tokens"] == [{"subject": "jfac@01h/users/user-2"}, {"subject": "jfac@01h/users/user-1"}]
    assert clean["group"] == {"name": "deployers", "usernames": ["user-2", "user-4"]}
    assert clean["notify"] == "write to user-1@example.com or user-4@example.com"
    assert clean["artifacts"] == [{"repo": "libs", "created_by": "user-1", "modifiedBy": "user-5"}]
    assert scrubber.names.placeholders == {"alice": "user-1", "bob": "user-2", "robert": "user-3", "carol": "user-4",
                                           "dave": "user-5"}


def test_artifactory_users_list_names_users_in_name() -> None:
    body = [{"name": "alice", "uri": "https://jpd.example/artifactory/api/security/users/alice", "realm": "internal"},
            {"name": "readers", "uri": "https://jpd.example/artifactory/api/security/groups/readers"}]
    clean, _ = scrub(body)
    assert clean == [
        {"name": "user-1", "uri": "https://jpd.example/artifactory/api/security/users/user-1", "realm": "internal"},
        {"name": "readers", "uri": "https://jpd.example/artifactory/api/security/groups/readers"},
    ]


def test_everything_under_a_secret_key_is_redacted() -> None:
    body = {"credentials": {"user": "svc", "value": "abc", "expires": 1700000000, "rotated": True},
            "apiKeys": None, "secret": ["one", "two"]}
    clean, _ = scrub(body)
    assert clean == {"credentials": {"user": REDACTED, "value": REDACTED, "expires": REDACTED, "rotated": True},
                     "apiKeys": None, "secret": [REDACTED, REDACTED]}


def test_keep_names_keeps_names_but_not_secrets() -> None:
    body = {"username": "alice", "email": "alice@acme.example", "password": "pw", "subject": "jfac@01h/users/alice"}
    clean, scrubber = scrub(body, keep_names=True)
    assert clean == {"username": "alice", "email": "alice@acme.example", "password": REDACTED,
                     "subject": "jfac@01h/users/alice"}
    assert scrubber.names.placeholders == {}


def test_scrubbing_is_deterministic_and_leaves_other_values_alone() -> None:
    body = {"users": [{"username": f"user{i}", "status": "enabled"} for i in range(5)], "count": 5, "ratio": 0.5,
            "flag": True, "nothing": None, "empty": "", "password": ""}
    first, _ = scrub(body)
    second, _ = scrub(json.loads(json.dumps(body)))
    assert first == second
    assert (first["count"], first["ratio"], first["flag"], first["nothing"], first["empty"]) == (5, 0.5, True, None, "")
    assert first["password"] == "", "an empty secret hides nothing"


# -- bodies and headers -------------------------------------------------------------------------------------------

def test_a_body_with_nothing_to_scrub_is_kept_byte_for_byte() -> None:
    raw = b'{ "binariesSummary" : {"binariesCount": "125,726"},\n  "x": 1.50 }'
    assert Scrubber().body(raw, "application/json") == raw


def test_a_json_body_with_secrets_is_rewritten() -> None:
    raw = b'{"username": "alice", "password": "pw"}'
    assert json.loads(Scrubber().body(raw, "application/json")) == {"username": "user-1", "password": REDACTED}


def test_text_bodies_keep_their_content_but_urls_lose_user_info() -> None:
    text = ('# HELP jfrt_http_connections_max_total Max connections\n'
            'jfrt_http_connections_max_total{remote="https://svc:pw@upstream.example/api"} 50\n'
            'app_info{user="alice"} 1\n')
    clean = Scrubber().body(text.encode(), "text/plain; version=0.0.4").decode()
    assert clean == text.replace("svc:pw@", "")
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    assert Scrubber().body(page, "text/html") == page


def test_a_truncated_json_body_still_loses_its_secrets() -> None:
    raw = b'[{"repoKey": "libs", "username": "replicator", "password": "Repl1cat0r-s3cret", "url": "https://a:b@h.ex'
    clean = Scrubber().body(raw, "application/json").decode()
    assert "Repl1cat0r" not in clean and "replicator" not in clean
    assert clean.startswith('[{"repoKey": "libs", "username": "user-1", "password": "<redacted>"')


def test_only_the_headers_that_matter_are_recorded() -> None:
    headers = {"content-type": "application/json", "authorization": "Bearer x", "set-cookie": "SESSION=1",
               "cookie": "a=b", "x-jfrog-version": "Artifactory/7.104.3 80403900", "retry-after": "5",
               "x-artifactory-node-id": "art1", "location": "https://u:p@jpd.example/ui/", "server": "nginx"}
    assert Scrubber().headers(headers) == {
        "Content-Type": "application/json", "Location": "https://jpd.example/ui/", "Retry-After": "5",
        "X-Artifactory-Node-Id": "art1", "X-JFrog-Version": "Artifactory/7.104.3 80403900",
    }


# -- recording and reading back ------------------------------------------------------------------------------------

async def test_the_client_tells_the_recorder_every_answer() -> None:
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(200, json={"ok": True})])
    target = make_target("http://jpd.example/prefix", retries=1)
    client = JfrogClient(target, transport=jfrog_platform(lambda request: next(answers)))
    recorder = Recorder(target.url)
    client.recorder = recorder
    try:
        result = await client.get("/artifactory/api/{repo}", path={"repo": "a b"}, params={"x": "1"})
    finally:
        await client.aclose()
    assert result.ok
    [exchange] = recorder.exchanges.values()
    assert (exchange.method, exchange.path, exchange.query) == ("GET", "/artifactory/api/a%20b", "x=1")
    assert (exchange.status, json.loads(exchange.body)) == (200, {"ok": True}), "the last answer is kept"


def _round(exchanges: list[Exchange]) -> RecordedRound:
    target = make_target("http://jpd.example", name="prod")
    collectors = {"health": CollectorRound("success", {"/artifactory/api/system/ping": "success"}, ["jfrog_up"])}
    return RecordedRound(target, {e.key: e for e in exchanges}, collectors, {}, "")


def test_a_recording_is_written_and_read_back(tmp_path: Path) -> None:
    exchanges = [
        Exchange("GET", "/artifactory/api/system/ping", "", 200, {"content-type": "text/plain"}, b"OK"),
        Exchange("GET", "/access/api/v2/users", "limit=1000", 200,
                 {"content-type": "application/json", "authorization": "Bearer x"},
                 b'{"users": [{"username": "alice", "realm": "internal", "status": "enabled"}]}'),
        Exchange("GET", "/artifactory/api/storageinfo", "", 204, {}, b""),
    ]
    written = write_recording(tmp_path, _round(exchanges))
    index = json.loads((tmp_path / INDEX).read_text())
    assert index["format"] == FORMAT_VERSION and index["url"] == "http://jpd.example" and index["target"] == "prod"
    assert [(e["path"], e["body"]) for e in index["entries"]] == [
        ("/access/api/v2/users", "bodies/0001.json"),
        ("/artifactory/api/storageinfo", None),
        ("/artifactory/api/system/ping", "bodies/0003.txt"),
    ]
    assert "authorization" not in json.dumps(index).lower()
    assert (written.answers, written.body_files, written.renamed) == (3, 2, 1)

    recording = load_recording(tmp_path)
    assert recording.round["health"].families == ["jfrog_up"]
    by_path = {a.path: a for a in recording.answers}
    assert json.loads(by_path["/access/api/v2/users"].body)["users"][0]["username"] == "user-1"
    assert by_path["/artifactory/api/system/ping"].headers == {"Content-Type": "text/plain"}
    assert by_path["/artifactory/api/storageinfo"].body == b""


def test_a_second_recording_replaces_the_bodies_of_the_first(tmp_path: Path) -> None:
    ping = Exchange("GET", "/artifactory/api/system/ping", "", 200, {"content-type": "text/plain"}, b"OK")
    write_recording(tmp_path, _round([ping, Exchange("GET", "/a", "", 200, {}, b"x")]))
    write_recording(tmp_path, _round([ping]))
    assert sorted(p.name for p in (tmp_path / "bodies").iterdir()) == ["0001.txt"]


@pytest.mark.parametrize(("index", "message"), [
    ({"format": 99, "entries": []}, "format 99"),
    ({"format": FORMAT_VERSION, "url": "u", "recorded_at": "t", "entries": [{"path": "/x"}]}, "malformed"),
    ({"format": FORMAT_VERSION, "url": "u", "recorded_at": "t",
      "entries": [{"method": "GET", "path": "/x", "status": 200, "body": "../../etc/passwd"}]}, "outside"),
])
def test_a_bad_recording_says_what_is_wrong(tmp_path: Path, index: dict[str, Any], message: str) -> None:
    (tmp_path / INDEX).write_text(json.dumps(index))
    with pytest.raises(RecordingError, match=message):
        load_recording(tmp_path)


def test_no_recording_at_all(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read"):
        load_recording(tmp_path)


def test_recording_reads_activity_at_once() -> None:
    target = make_target("http://jpd.example", collectors={"activity": {"settle": "2m", "max_results": 5}})
    recorded = recording_target(target).collector_settings("activity")
    assert isinstance(recorded, ActivitySettings)
    assert (recorded.settle, recorded.max_results) == (0.0, 5)
    assert target.collector_settings("activity").settle == 120.0, "the configuration itself is left alone"  # type: ignore[attr-defined]


# -- replay matching -----------------------------------------------------------------------------------------------

def test_replay_matches_exactly_then_in_any_query_order(tmp_path: Path) -> None:
    exchanges = [
        Exchange("GET", "/fed/list", "repoKey=a&limit=10&page=1", 200, {"content-type": "application/json"}, b"[1]"),
        Exchange("GET", "/fed/list", "repoKey=a&limit=10&page=2", 200, {"content-type": "application/json"}, b"[2]"),
        Exchange("POST", "/artifactory/api/search/aql", "", 200, {"content-type": "application/json"}, b"{}"),
    ]
    write_recording(tmp_path, _round(exchanges))
    state = ReplayState(load_recording(tmp_path))
    assert state.find("GET", "/fed/list", "repoKey=a&limit=10&page=2")
    answer = state.find("GET", "/fed/list", "page=1&limit=10&repoKey=a")
    assert answer is not None and answer.body == b"[1]"
    assert state.find("POST", "/artifactory/api/search/aql", "") is not None
    assert state.find("GET", "/artifactory/api/search/aql", "") is None
    assert state.find("GET", "/fed/list", "repoKey=b&limit=10&page=1") is None
    assert state.unmatched == ["GET /artifactory/api/search/aql", "GET /fed/list?repoKey=b&limit=10&page=1"]
    response = respond(answer)
    assert (response.status, response.body, response.content_type) == (200, b"[1]", "application/json")
