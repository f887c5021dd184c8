"""The request budget's pacing and AIMD on a clock the test moves: no sleeping."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.budget import (
    CALM_SECONDS,
    HOLD_SECONDS,
    LATENCY_WINDOW,
    MAX_PAUSE,
    LoopLag,
    Reason,
    RequestBudget,
    _median,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def budget(rate: float) -> tuple[RequestBudget, Clock]:
    clock = Clock()
    return RequestBudget("t", rate, clock=clock), clock


def go_times(b: RequestBudget, clock: Clock, calls: int) -> list[float]:
    """When each of ``calls`` asked at once may go, relative to now."""
    return [b.reserve()[0] for _ in range(calls)]


def test_a_burst_of_one_second_then_calls_evenly_spread() -> None:
    b, clock = budget(10)
    waits = go_times(b, clock, 40)
    assert waits[:10] == [0.0] * 10
    assert waits[10:] == pytest.approx([0.1 * i for i in range(1, 31)])
    # Whatever the arrivals, no window of T seconds lets more than the burst and T x rate through.
    b, clock = budget(10)
    gone = []
    for step in range(300):
        clock.now = 1000.0 + step * 0.013
        for _ in range(step % 4):
            gone.append(clock.now + b.reserve()[0])
    gone.sort()
    for i, start in enumerate(gone):
        within = sum(1 for t in gone[i:] if t < start + 2.0)
        assert within <= 10 + 2.0 * 10


def test_quiet_time_refills_the_burst_but_no_more() -> None:
    b, clock = budget(5)
    go_times(b, clock, 20)
    clock.now += 60
    waits = go_times(b, clock, 7)
    assert waits[:5] == [0.0] * 5 and waits[5] > 0


def test_unlimited_never_waits_and_never_slows_down() -> None:
    b, clock = budget(0)
    assert set(go_times(b, clock, 1000)) == {0.0}
    assert b.answered(429, 0.01, retry_after=5) is None
    assert b.slowdowns[Reason.RATE_LIMITED] == 0


def test_429_halves_once_per_hold_down_to_the_floor_then_climbs_back(caplog: pytest.LogCaptureFixture) -> None:
    b, clock = budget(8)
    with caplog.at_level(logging.DEBUG, logger="exporter.budget"):
        assert b.answered(429, 0.01) is Reason.RATE_LIMITED
        assert b.rate() == 4
        # The answers to calls already in flight do not halve it again.
        assert b.answered(429, 0.01) is None
        clock.now += HOLD_SECONDS / 2
        assert b.answered(503, 0.01) is None and b.rate() == 4
        rates = []
        for _ in range(8):
            clock.now += HOLD_SECONDS
            b.answered(503, 0.01)
            rates.append(b.rate())
        assert rates == [2, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
        assert b.slowdowns == {Reason.RATE_LIMITED: 1, Reason.UNAVAILABLE: 3, Reason.LATENCY: 0}
        # Healthy answers: nothing for the calm spell, then a linear climb to the configured rate, not beyond.
        clock.now += CALM_SECONDS - 0.1
        assert b.answered(200, 0.01) is None and b.rate() == 0.5
        clock.now += 1.1
        assert b.rate() == pytest.approx(0.5 + 8 * 0.05 * 1.0)
        clock.now += 100
        b.answered(200, 0.01)
        assert b.rate() == 8
        clock.now += 100
        b.answered(200, 0.01)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    slowed = [m for level, m in lines if level == "WARNING"]
    back = [m for level, m in lines if level == "INFO"]
    assert slowed == ["slowing down requests to t from 8/s to 4/s: the JPD answered 429 Too Many Requests"]
    assert back == ["requests to t are back to the configured 8/s"]


def test_a_slow_down_voids_the_slots_reserved_at_the_former_pace() -> None:
    b, clock = budget(10)
    go_times(b, clock, 20)
    epoch = b.reserve()[1]
    b.answered(429, 0.01)
    assert b.epoch != epoch  # the waiting calls take new slots
    waits = go_times(b, clock, 5)
    assert waits == pytest.approx([0.2 * i for i in range(1, 6)])  # 5/s, no burst right after


def test_retry_after_holds_every_call_bounded() -> None:
    b, clock = budget(10)
    b.answered(429, 0.01, retry_after=3)
    waits = go_times(b, clock, 40)  # slots reserved up to 11 s ahead
    assert waits[0] == pytest.approx(3.0) and waits[1] == pytest.approx(3.2)
    # Within the hold no halving, but a Retry-After still voids every slot reserved before it ends.
    clock.now += 0.5
    epoch = b.epoch
    b.answered(503, 0.01, retry_after=4)
    assert b.epoch != epoch and b.rate() == 5
    assert b.reserve()[0] == pytest.approx(4.0)
    b, clock = budget(10)
    b.answered(503, 0.01, retry_after=86_400)
    assert b.reserve()[0] == pytest.approx(MAX_PAUSE)


def answers(b: RequestBudget, clock: Clock, seconds: list[float]) -> list[Reason | None]:
    out = []
    for s in seconds:
        clock.now += 0.05
        out.append(b.answered(200, s))
    return out


def test_latency_well_above_the_baseline_slows_down_one_slow_answer_does_not() -> None:
    b, clock = budget(20)
    assert answers(b, clock, [0.05] * (2 * LATENCY_WINDOW)) == [None] * (2 * LATENCY_WINDOW)
    # A large answer that takes seconds is no trouble, nor a slower JPD under the absolute floor.
    assert set(answers(b, clock, [0.05] * 8 + [9.0] + [0.05] * 8)) == {None}
    assert set(answers(b, clock, [0.4] * (2 * LATENCY_WINDOW))) == {None}
    b, clock = budget(20)
    answers(b, clock, [0.05] * (2 * LATENCY_WINDOW))
    got = answers(b, clock, [1.0] * LATENCY_WINDOW)
    assert got[-1] is None and got.count(Reason.LATENCY) == 1 and b.rate() == 10
    first = got.index(Reason.LATENCY)
    assert first == LATENCY_WINDOW // 2 - 1  # once half the window is slow
    # The next verdict waits for a full window of answers to calls sent at the lower rate.
    answers(b, clock, [1.0] * (LATENCY_WINDOW - first - 1))
    clock.now += HOLD_SECONDS
    assert answers(b, clock, [1.0] * (LATENCY_WINDOW - 1)) == [None] * (LATENCY_WINDOW - 1)
    assert answers(b, clock, [1.0]) == [Reason.LATENCY] and b.rate() == 5


def test_a_budget_below_the_floor_is_kept() -> None:
    b, _ = budget(0.2)
    b.answered(429, 0.01)
    assert b.rate() == 0.2 and b.slowdowns[Reason.RATE_LIMITED] == 0


async def test_time_the_event_loop_was_stalled_is_not_held_against_the_jpd() -> None:
    lag = LoopLag()
    started = time.perf_counter()
    busy = lag.enter()
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # noqa: ASYNC251  (the point: the exporter busy decoding while the answer arrives)
    await asyncio.sleep(0.05)
    assert lag.exclude(started, busy) < 0.2 < time.perf_counter() - started
    # Also when the call resumes before the loop's own check has run.
    started, busy = time.perf_counter(), lag.enter()
    time.sleep(0.3)  # noqa: ASYNC251
    assert lag.exclude(started, busy) < 0.1
    lag.leave()
    lag.leave()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=40))
def test_median_latency_is_the_statistics_median(latencies: list[float]) -> None:
    assert _median(deque(latencies)) == statistics.median(latencies)
