"""Collector `security`: documented payloads, each date format, then the simulator over HTTP."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.collectors.security import (
    Token,
    expiry_bucket,
    jwt_expiry,
    parse_certificate_date,
    parse_certificates,
    parse_groups_page,
    parse_tokens,
    parse_users_page,
    subject_kind,
    summarise_tokens,
)
from exporter.config import AuthConfig
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_READER_TOKEN, Credentials
from exporter.simulator.scenarios import DAY, today_midnight
from exporter.simulator.security_data import AREA, SimCertificate
from tests.conftest import make_target
from tests.support import REPO, parse_exposition, series, value

PAYLOADS = REPO / "tests" / "payloads" / "security"


def _load(name: str) -> object:
    return json.loads((PAYLOADS / name).read_text())


def make_jwt(claims: dict[str, object]) -> str:
    """A token shaped like the JPD's access tokens: base64url header.payload.signature, no padding."""
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"typ": "JWT", "alg": "RS256", "kid": "k1"}).encode())
    return f"{header}.{part(json.dumps(claims).encode())}.{part(secrets.token_bytes(64))}"


# -- parsers on the documented samples ------------------------------------------

def test_certificates_sample_in_the_javascript_date_format() -> None:
    # 2.9.55 Get Certificates sample (jfrog-rest-apis.txt line 13262), braces repaired.
    certs = parse_certificates(_load("certificates.json"))
    assert [c.alias for c in certs] == ["example1", "example2"]
    assert (certs[1].issued_to, certs[1].issued_by) == ("Cool-Company", "Some_Other_CA")
    # 10:00 at +02:00 is 08:00 UTC; the "(UTC)" after the offset is only a zone name.
    expected = datetime(2019, 5, 1, 8, 0, tzinfo=UTC).timestamp()
    assert all(c.expires == expected for c in certs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The documented ISO 8601 pattern yyyy-MM-dd'T'HH:mm:ss.SSSZ (line 13247) and its variants.
        ("2019-05-01T10:00:00.000+0200", datetime(2019, 5, 1, 8, 0, tzinfo=UTC)),
        ("2019-05-01T10:00:00.000+02:00", datetime(2019, 5, 1, 8, 0, tzinfo=UTC)),
        ("2019-05-01T08:00:00Z", datetime(2019, 5, 1, 8, 0, tzinfo=UTC)),
        # The sample's format, and what the same renderer gives west of Greenwich or without the zone name.
        ("Sun May 01 2019 10:00:00 GMT +02:00 (UTC)", datetime(2019, 5, 1, 8, 0, tzinfo=UTC)),
        ("Wed Jan 15 2031 23:30:00 GMT -05:00 (UTC)", datetime(2031, 1, 16, 4, 30, tzinfo=UTC)),
        ("Sun May 01 2019 10:00:00 GMT+0200", datetime(2019, 5, 1, 8, 0, tzinfo=UTC)),
        ("Sun May 01 2019 10:00:00 GMT", datetime(2019, 5, 1, 10, 0, tzinfo=UTC)),
    ],
)
def test_certificate_dates_in_both_documented_formats(text: str, expected: datetime) -> None:
    assert parse_certificate_date(text) == expected.timestamp()


@pytest.mark.parametrize("text", ["", "N/A", "next spring", "Sun Foo 01 2019 10:00:00 GMT", "Sun Feb 30 2019 10:00:00",
                                  None])
def test_unreadable_certificate_dates_give_nothing(text: str | None) -> None:
    assert parse_certificate_date(text) is None


def test_user_and_group_list_samples() -> None:
    # 4.4.2 Get User List (line 19946) and 4.5.2 Get a List of Groups (line 20283), made well-formed.
    users, cursor = parse_users_page(_load("users.json"))
    assert [(u.realm, u.status) for u in users] == [("string", "string")]
    assert cursor == "string"
    count, cursor = parse_groups_page(_load("groups.json"))
    assert (count, cursor) == (1, "string")
    # The last page carries no cursor; Access realms come back lower-cased.
    users, cursor = parse_users_page({"users": [{"username": "a", "realm": "LDAP", "status": "enabled"}]})
    assert (users[0].realm, cursor) == ("ldap", None)
    with pytest.raises(ValueError):
        parse_users_page([{"username": "a"}])
    with pytest.raises(ValueError):
        parse_groups_page({"cursor": "x"})


def test_tokens_sample() -> None:
    # The token entry as the documents show it with values (2.9.58.15, line 13830): same fields as 4.7.1.3.
    [token] = parse_tokens(_load("tokens.json"))
    assert token == Token("jf-artifactory@123123/users/theusername", "user", 145154545.0)
    # 4.7.1.3 marks expiry optional and shows it as a string of epoch seconds.
    tokens = parse_tokens({"tokens": [{"subject": "jfac@x/users/ci", "expiry": "1700000000"},
                                      {"subject": "jfac@x/users/ui"}, {"subject": "jfrt@x", "expiry": 0}]})
    assert [t.expires for t in tokens] == [1700000000.0, None, None]
    with pytest.raises(ValueError):
        parse_tokens({"tokens": "none"})


@pytest.mark.parametrize(
    ("subject", "kind"),
    [
        ("jfrt@01c3/users/admin", "user"),  # <service-id>/users/<username>, line 20982
        ("jf-artifactory@123123/users/theusername", "user"),
        ("jfac@01c3/groups/readers", "group"),
        ("jfrt@01c3/nodes/art1", "node"),
        ("jfrt@01c3", "service"),
        ("somebody", "other"),
    ],
)
def test_subject_kinds(subject: str, kind: str) -> None:
    assert subject_kind(subject) == kind


def test_token_summary_buckets_do_not_overlap_and_soonest_is_bounded() -> None:
    now = 1_000_000_000.0
    tokens = [
        Token("s/users/gone", "user", now - 1),
        Token("s/users/ci", "user", now + 6 * DAY),
        Token("s/users/ci", "user", now + 40 * DAY),
        Token("s/users/rel", "user", now + 8 * DAY),
        Token("s/users/ui", "user", None),
        Token("svc@1", "service", now + 30 * DAY),
        *(Token(f"s/users/u{i}", "user", now + (100 + i) * DAY) for i in range(50)),
    ]
    summary = summarise_tokens(tokens, now, soonest=3)
    assert summary.counts[("user", "expired")] == 1
    assert summary.counts[("user", "lt_7d")] == 1
    assert summary.counts[("user", "7d_to_30d")] == 1
    assert summary.counts[("user", "gt_30d")] == 51
    assert summary.counts[("user", "never")] == 1
    assert summary.counts[("service", "7d_to_30d")] == 1
    assert summary.counts[("service", "never")] == 0
    assert sum(summary.counts.values()) == len(tokens)
    # One series per subject, its soonest token; expired tokens are not "next to expire".
    assert summary.soonest == [("s/users/ci", "user", now + 6 * DAY), ("s/users/rel", "user", now + 8 * DAY),
                               ("svc@1", "service", now + 30 * DAY)]
    assert summarise_tokens(tokens, now, soonest=0).soonest == []
    assert expiry_bucket(now + 7 * DAY, now) == "lt_7d"
    assert expiry_bucket(now, now) == "expired"


def test_jwt_expiry_is_read_from_a_generated_token() -> None:
    exp = int(time.time()) + 12 * 3600
    assert jwt_expiry(make_jwt({"sub": "jfac@01c3/users/exporter", "exp": exp, "iat": exp - 86400})) == exp
    # Reference tokens (no dots), broken payloads and tokens without exp give no expiry.
    assert jwt_expiry("cmVmdGtuOjAxOjE3MzA0NTY3ODk6WW91ckFjY2Vzc1Rva2Vu") is None
    assert jwt_expiry("a.!!!.c") is None
    assert jwt_expiry(make_jwt({"sub": "x"})) is None
    assert jwt_expiry(make_jwt({"exp": "soon"})) is None
    assert jwt_expiry(None) is None


# -- over HTTP against the simulator -------------------------------------------------

async def test_healthy_users_groups_certificates_and_tokens(sim, collect_once) -> None:
    url, state = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url)], only=["security"])
    assert engine.store.run("sim", "security").outcome == "success"
    area = state.scenario.areas[AREA]
    for realm in ("internal", "ldap", "saml"):
        for status in ("enabled", "disabled", "locked", "invited"):
            expected = sum(1 for u in area.users if u.realm == realm and u.status == status)
            assert value(samples, "jfrog_users", realm=realm, status=status) == expected
    assert value(samples, "jfrog_users", realm="internal", status="locked") == 1
    assert value(samples, "jfrog_groups") == 5
    assert value(samples, "jfrog_users_truncated") == 0
    day = today_midnight()
    # Both date formats, and the expired certificate still reported (its past date is the point).
    assert value(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="partner-mtls") == \
        day + 90 * DAY + 10 * 3600
    assert value(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="legacy-upstream") == \
        day + 200 * DAY + 10 * 3600
    assert value(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="expired-client") == day - 30 * DAY
    assert value(samples, "jfrog_certificate_info", alias="legacy-upstream", issued_to="Cool-Company") == 1
    expected_user_tokens = {"expired": 2, "lt_7d": 1, "7d_to_30d": 2, "gt_30d": 1, "never": 1}
    for bucket, count in expected_user_tokens.items():
        assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry=bucket) == count
    assert value(samples, "jfrog_access_tokens", subject_kind="service", expiry="gt_30d") == 1
    soonest = "jfrog_access_token_soonest_expiry_timestamp_seconds"
    assert value(samples, soonest, subject=area.tokens[1].subject) == day + 3 * DAY
    assert value(samples, soonest, subject=area.tokens[3].subject) == day + 20 * DAY  # sent as a string
    assert not series(samples, soonest, subject=area.tokens[4].subject)  # expired
    # No label carries a token id.
    assert all("tok-" not in v for (_, labels) in samples for _, v in labels)


async def test_user_pages_are_followed_and_bounded(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, _ = await collect_once(
        [make_target(url, collectors={"security": {"users_page_size": 4}})], only=["security"])
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_users") == 17
    assert value(samples, "jfrog_groups") == 5
    assert value(samples, "jfrog_users_truncated") == 0

    samples, _ = await collect_once(
        [make_target(url, collectors={"security": {"users_page_size": 4, "max_pages": 2}})], only=["security"])
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_users") == 8
    assert value(samples, "jfrog_users_truncated") == 1


async def test_large_instance_stays_cheap_in_series(sim, collect_once) -> None:
    url, state = await sim.start("large")
    samples, engine = await collect_once([make_target(url)], only=["security"])
    assert engine.store.run("sim", "security").outcome == "success"
    area = state.scenario.areas[AREA]
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_users") == len(area.users) == 5000
    assert value(samples, "jfrog_groups") == 400
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_access_tokens") == len(area.tokens)
    # Thousands of tokens, 1,500 subjects: only the 20 soonest get a series of their own.
    soonest = series(samples, "jfrog_access_token_soonest_expiry_timestamp_seconds")
    assert len(soonest) == 20
    now = time.time()
    future = [t.expiry for t in area.tokens if t.expiry is not None and int(t.expiry) > now]
    values = sorted(v for (n, _), v in samples.items() if n == "jfrog_access_token_soonest_expiry_timestamp_seconds")
    assert values[0] == min(int(e) for e in future)


async def test_oss_has_no_certificates_and_that_is_not_a_failure(sim, collect_once) -> None:
    url, _ = await sim.start("oss")
    samples, engine = await collect_once([make_target(url)], only=["security"])
    assert engine.store.run("sim", "security").outcome == "success"
    assert not series(samples, "jfrog_certificate_expiry_timestamp_seconds")
    assert value(samples, "jfrog_groups") == 5


async def test_reader_token_fails_the_run_but_keeps_what_it_could_read(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, engine = await collect_once([make_target(url, token=DEFAULT_READER_TOKEN)], only=["security"])
    run = engine.store.run("sim", "security")
    assert run.outcome == "forbidden"
    assert "/access/api/v2/users" in run.reason
    assert value(samples, "jfrog_exporter_collector_success", collector="security") == 0
    # The token list (a non-admin sees its own tokens) still replaced its part of the snapshot.
    assert not series(samples, "jfrog_users")
    assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry="7d_to_30d") == 1
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_access_tokens") == 1


async def test_the_exporters_own_jwt_expiry_is_reported_and_never_shown(sim, caplog) -> None:
    exp = int(time.time()) + 5 * 86400
    token = make_jwt({"sub": "jfac@01c3/users/exporter", "exp": exp, "scp": "applied-permissions/admin"})
    url, _ = await sim.start("healthy", credentials=Credentials(token=token))
    caplog.set_level(logging.DEBUG)
    engine = Engine([make_target(url, token=token)], only=["security"])
    try:
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    assert engine.store.payload is not None
    text = engine.store.payload.text.decode()
    samples = parse_exposition(text)
    assert value(samples, "jfrog_exporter_token_expiry_timestamp_seconds", target="sim") == exp
    assert engine.store.run("sim", "security").outcome == "success"
    payload_part = token.split(".")[1]
    assert payload_part not in text and payload_part not in caplog.text


async def test_reference_tokens_and_basic_auth_give_no_expiry(sim, collect_once) -> None:
    url, _ = await sim.start("healthy")
    samples, _ = await collect_once([make_target(url)], only=["security"])  # "simulator-token": not a JWT
    assert not series(samples, "jfrog_exporter_token_expiry_timestamp_seconds")
    target = make_target(url)
    target.auth = AuthConfig.from_values(username="admin", password="password")
    samples, engine = await collect_once([target], only=["security"])
    assert engine.store.run("sim", "security").outcome == "success"
    assert not series(samples, "jfrog_exporter_token_expiry_timestamp_seconds")


async def test_unreadable_certificate_date_gives_no_series_and_one_log_line(sim, caplog) -> None:
    url, state = await sim.start("healthy")
    state.scenario.areas[AREA].certificates.append(
        SimCertificate("odd-date", "Somebody", "Some_CA", "2017", "the day after tomorrow"))
    caplog.set_level(logging.WARNING, logger="exporter.collectors.security")
    engine = Engine([make_target(url)], only=["security"])
    try:
        await engine.run_all_once()
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    assert engine.store.run("sim", "security").outcome == "success"
    assert not series(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="odd-date")
    assert value(samples, "jfrog_certificate_info", alias="odd-date") == 1
    assert value(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="partner-mtls") is not None
    lines = [r for r in caplog.records if "odd-date" in r.getMessage()]
    assert len(lines) == 1


def test_js_date_rendering_of_the_simulator_round_trips() -> None:
    # The simulator renders the second documented format; the parser must read back the same instant.
    from exporter.simulator.security_data import iso_java, js_date

    ts = datetime(2030, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=3))).timestamp()
    assert parse_certificate_date(js_date(ts)) == ts
    assert parse_certificate_date(js_date(ts, offset_hours=-7)) == ts
    assert parse_certificate_date(iso_java(ts, offset_hours=2)) == ts


async def test_a_malformed_part_fails_the_run_without_blanking_the_others(sim) -> None:
    from exporter.simulator.faults import Fault

    url, state = await sim.start("healthy")
    engine = Engine([make_target(url)], only=["security"])
    try:
        await engine.run_all_once()
        state.faults.append(Fault("/access/api/v1/tokens", "wrong_type"))
        state.faults.append(Fault("/access/api/v2/groups", "truncated_json"))
        state.scenario.areas[AREA].groups.append("late-comers")
        state.scenario.areas[AREA].users.pop()
        await engine.run_all_once()
    finally:
        await engine.shutdown()
    run = engine.store.run("sim", "security")
    assert run.outcome == "bad_response"
    assert "/access/api/v1/tokens" in run.reason and "/access/api/v2/groups" in run.reason
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    # Users were read again (one fewer); tokens and groups keep their last good values.
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_users") == 16
    assert value(samples, "jfrog_groups") == 5
    assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry="lt_7d") == 1
