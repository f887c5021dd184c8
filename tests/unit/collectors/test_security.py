"""Collector `security`: documented payloads, each date format, and the families built from them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client.core import Metric

from exporter.collectors.security import (
    DAY,
    USER_STATUSES,
    Certificate,
    Token,
    TokenSummary,
    User,
    certificate_families,
    expiry_bucket,
    parse_certificate_date,
    parse_certificates,
    parse_groups_page,
    parse_tokens,
    parse_users_page,
    subject_kind,
    summarise_tokens,
    token_families,
    users_families,
)
from exporter.families import Emitter
from exporter.simulator.security_data import iso_java, js_date
from exporter.values import jwt_expiry
from tests.support import documented
from tests.tokens import make_jwt


def _load(name: str) -> Any:
    return documented("security", name)


def samples(families: list[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def labelled(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({"target": "t", **labels}.items())


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


def test_js_date_rendering_of_the_simulator_round_trips() -> None:
    # The simulator renders the second documented format; the parser must read back the same instant.
    ts = datetime(2030, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=3))).timestamp()
    assert parse_certificate_date(js_date(ts)) == ts
    assert parse_certificate_date(js_date(ts, offset_hours=-7)) == ts
    assert parse_certificate_date(iso_java(ts, offset_hours=2)) == ts


# -- families ------------------------------------------------------------------------------------


def test_users_every_documented_status_per_realm() -> None:
    out = Emitter("t")
    users_families([User("internal", "enabled"), User("internal", "enabled"), User("ldap", "locked"),
                    User("ldap", "")], out)
    got = samples(out.families())
    assert got[("jfrog_users", labelled(realm="internal", status="enabled"))] == 2
    # Realms that have users report every documented status, 0 when none; a missing status is "unknown".
    for status in USER_STATUSES:
        assert ("jfrog_users", labelled(realm="ldap", status=status)) in got
    assert got[("jfrog_users", labelled(realm="ldap", status="invited"))] == 0
    assert got[("jfrog_users", labelled(realm="ldap", status="unknown"))] == 1
    assert sum(got.values()) == 4
    empty = Emitter("t")
    users_families([], empty)
    assert [f.name for f in empty.families()] == ["jfrog_users"]


def test_certificates_without_a_readable_date_keep_their_info() -> None:
    out = Emitter("t")
    certificate_families([Certificate("a", "Me", "CA", "2030-01-01T00:00:00Z", 1893456000.0),
                          Certificate("b", "You", "CA", "someday", None)], out)
    got = samples(out.families())
    assert got[("jfrog_certificate_expiry_timestamp_seconds", labelled(alias="a"))] == 1893456000.0
    assert ("jfrog_certificate_expiry_timestamp_seconds", labelled(alias="b")) not in got
    assert got[("jfrog_certificate_info", labelled(alias="b", issued_to="You", issued_by="CA"))] == 1


def test_token_families_carry_counts_and_the_soonest_subjects() -> None:
    summary = TokenSummary({("user", "lt_7d"): 2, ("user", "never"): 0},
                           [("s/users/ci", "user", 1000.0)])
    out = Emitter("t")
    token_families(summary, out)
    got = samples(out.families())
    assert got == {
        ("jfrog_access_tokens", labelled(subject_kind="user", expiry="lt_7d")): 2,
        ("jfrog_access_tokens", labelled(subject_kind="user", expiry="never")): 0,
        ("jfrog_access_token_soonest_expiry_timestamp_seconds", labelled(subject="s/users/ci",
                                                                         subject_kind="user")): 1000.0,
    }
