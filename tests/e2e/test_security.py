"""Collector `security`: the simulator over HTTP."""

from __future__ import annotations

import logging
import time
from functools import partial

from exporter.collectors.security import CERTIFICATES, GROUPS, TOKENS, USERS
from exporter.config import AuthConfig
from exporter.scheduler import Engine
from exporter.simulator.core import DEFAULT_READER_TOKEN, Credentials
from exporter.simulator.faults import Fault
from exporter.simulator.scenarios import DAY, today_midnight
from exporter.simulator.security_data import AREA, SimCertificate
from tests.conftest import make_target
from tests.support import endpoint_last_success, endpoint_up, parse_exposition, run_and_scrape, series, value
from tests.tokens import make_jwt

_up = partial(endpoint_up, collector="security")
_last_success = partial(endpoint_last_success, collector="security")
_run = partial(run_and_scrape, collector="security")


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
    assert value(samples, "jfrog_certificate_info", alias="legacy-upstream", issued_to="Cool-Company") == 1
    # A healthy JPD: no certificate expired or close to it, no token expiring within a week.
    assert len(series(samples, "jfrog_certificate_expiry_timestamp_seconds")) == 2
    expected_user_tokens = {"expired": 2, "lt_7d": 0, "7d_to_30d": 2, "gt_30d": 1, "never": 1}
    for bucket, count in expected_user_tokens.items():
        assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry=bucket) == count
    assert value(samples, "jfrog_access_tokens", subject_kind="service", expiry="gt_30d") == 1
    soonest = "jfrog_access_token_soonest_expiry_timestamp_seconds"
    tokens = {t.token_id: t for t in area.tokens}
    assert value(samples, soonest, subject=tokens["tok-ci-2"].subject) == day + 200 * DAY
    assert value(samples, soonest, subject=tokens["tok-release"].subject) == day + 20 * DAY  # sent as a string
    assert not series(samples, soonest, subject=tokens["tok-alice"].subject)  # expired
    # No label carries a token id.
    assert all("tok-" not in v for (_, labels) in samples for _, v in labels)


async def test_degraded_has_an_expired_certificate_and_a_token_about_to_expire(sim, collect_once) -> None:
    url, state = await sim.start("degraded")
    samples, engine = await collect_once([make_target(url)], only=["security"])
    assert engine.store.run("sim", "security").outcome == "success"
    day = today_midnight()
    # The expired certificate is still reported (its past date is the point), in the other date format.
    assert value(samples, "jfrog_certificate_expiry_timestamp_seconds", alias="expired-client") == day - 30 * DAY
    assert value(samples, "jfrog_certificate_info", alias="expired-client", issued_to="JFrog") == 1
    expected_user_tokens = {"expired": 2, "lt_7d": 1, "7d_to_30d": 2, "gt_30d": 1, "never": 1}
    for bucket, count in expected_user_tokens.items():
        assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry=bucket) == count
    # The subject's soonest token, not its later one.
    ci_bot = next(t.subject for t in state.scenario.areas[AREA].tokens if t.token_id == "tok-ci-1")
    assert value(samples, "jfrog_access_token_soonest_expiry_timestamp_seconds", subject=ci_bot) == day + 3 * DAY


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
    # The reason counts the failed parts and names the first by endpoint; each part says how it ended.
    assert run.reason.startswith(f"3 of 4 parts failed; first: {GROUPS}: HTTP 403")
    assert [_up(samples, e) for e in (USERS, GROUPS, CERTIFICATES, TOKENS)] == [0, 0, 0, 1]
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


async def test_a_malformed_part_fails_the_run_without_blanking_the_others(sim) -> None:
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
    # The first failed part by endpoint: /access/api/v1/tokens sorts before /access/api/v2/groups.
    assert run.reason.startswith(f"2 of 4 parts failed; first: {TOKENS}: unexpected shape")
    assert engine.store.payload is not None
    samples = parse_exposition(engine.store.payload.text.decode())
    assert [_up(samples, e) for e in (TOKENS, GROUPS, USERS, CERTIFICATES)] == [0, 0, 1, 1]
    # Users were read again (one fewer); tokens and groups keep their last good values.
    assert sum(v for (n, _), v in samples.items() if n == "jfrog_users") == 16
    assert value(samples, "jfrog_groups") == 5
    assert value(samples, "jfrog_access_tokens", subject_kind="user", expiry="7d_to_30d") == 2


async def test_one_endpoint_fails_the_others_stay_current(sim) -> None:
    exp = int(time.time()) + 3 * 86400
    token = make_jwt({"sub": "jfac@01c3/users/exporter", "exp": exp})
    url, state = await sim.start("healthy", credentials=Credentials(token=token))
    engine = Engine([make_target(url, token=token, retries=0)], ["security"])
    try:
        before = await _run(engine)
        assert value(before, "jfrog_exporter_collector_success", collector="security") == 1
        state.faults.append(Fault.parse(f"{CERTIFICATES}=error_500"))
        area = state.scenario.areas[AREA]
        area.groups.append("late-comers")
        area.certificates.append(SimCertificate("new-one", "Somebody", "Some_CA", "2017", "2031-01-01T00:00:00Z"))
        after = await _run(engine)
    finally:
        await engine.shutdown()
    assert _up(after, CERTIFICATES) == 0
    assert _last_success(after, CERTIFICATES) == _last_success(before, CERTIFICATES)
    for endpoint in (USERS, GROUPS, TOKENS):
        assert _up(after, endpoint) == 1, endpoint
        assert _last_success(after, endpoint) > _last_success(before, endpoint), endpoint
    # The failed part keeps its last good series; the others report the change.
    assert series(after, "jfrog_certificate_info") == series(before, "jfrog_certificate_info") != []
    assert not series(after, "jfrog_certificate_info", alias="new-one")
    assert value(after, "jfrog_groups") == 6
    assert value(after, "jfrog_exporter_token_expiry_timestamp_seconds") == exp
    assert value(after, "jfrog_exporter_collector_success", collector="security") == 0
    run = engine.store.run("sim", "security")
    assert run.outcome == "error"
    assert CERTIFICATES in run.reason
