"""The one rule that combines outcomes."""

from __future__ import annotations

from exporter.outcomes import Outcome, combine, worst


def test_the_exporters_own_faults_outrank_the_jpds() -> None:
    assert worst([Outcome.TIMEOUT, Outcome.UNAUTHORIZED, Outcome.ERROR]) is Outcome.UNAUTHORIZED
    assert worst([Outcome.ERROR, Outcome.MISCONFIGURED, Outcome.FORBIDDEN]) is Outcome.MISCONFIGURED
    assert worst([Outcome.BAD_RESPONSE, Outcome.UNREACHABLE]) is Outcome.UNREACHABLE


def test_something_collected_is_success_nothing_at_all_is_unsupported() -> None:
    assert worst([Outcome.SUCCESS, Outcome.UNSUPPORTED]) is Outcome.SUCCESS
    assert worst([Outcome.UNSUPPORTED, Outcome.UNSUPPORTED]) is Outcome.UNSUPPORTED
    assert worst([]) is Outcome.SUCCESS


def test_combine_names_the_first_item_with_the_worst_outcome() -> None:
    failures = [
        ("/api/replication/{repo} for a", Outcome.TIMEOUT, "no answer within 10s"),
        ("/api/replication/{repo} for b", Outcome.FORBIDDEN, "HTTP 403: no"),
        ("/api/replication/{repo} for c", Outcome.FORBIDDEN, "HTTP 403: no either"),
    ]
    error = combine(failures, 2000)
    assert error is not None
    assert error.outcome is Outcome.FORBIDDEN
    assert error.reason == "3 of 2000 calls failed; first: /api/replication/{repo} for b: HTTP 403: no"
    assert combine([], 10) is None


def test_a_lone_call_keeps_its_own_reason_once() -> None:
    error = combine([("/api/storageinfo", Outcome.ERROR, "/api/storageinfo: HTTP 500: boom")], 1)
    assert error is not None and error.reason == "/api/storageinfo: HTTP 500: boom"
