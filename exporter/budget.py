"""A target's request budget: its calls paced to a rate, lowered while the JPD struggles.

Pure logic on an injected clock; the client asks it how long a call must wait and tells it how
each answer went. Pacing is a token bucket kept as the time the next call is due (GCRA): a call
reserves its slot in O(1) and waiting calls go in the order they asked, with a burst of one
second's worth after a quiet spell.

The rate follows AIMD: a 429, a 503 or answers well above their usual latency halve it (down to a
floor), a Retry-After holds every call of the target until it has passed, and after a calm spell
the rate climbs back linearly to the configured one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)

#: the lowest rate a slow-down goes to, per second (or the configured rate, if lower)
FLOOR = 0.5
#: a quiet target may send this many seconds' worth of its rate at once
BURST_SECONDS = 1.0
#: one halving per this many seconds: the answers to calls already sent must not halve it again and again
HOLD_SECONDS = 2.0
#: seconds without a sign of trouble before the rate climbs back
CALM_SECONDS = 5.0
#: the climb, in configured rate per second: from the floor back to the full rate in about 20 s
RECOVERY_PER_SECOND = 0.05
#: a Retry-After longer than this is taken as this long
MAX_PAUSE = 30.0
#: latency is judged on the median of this many answers: one slow large answer is no trouble
LATENCY_WINDOW = 16
#: the median must exceed this many times the baseline ...
LATENCY_FACTOR = 3.0
#: ... and this many seconds
LATENCY_FLOOR = 0.5
#: time constant of the baseline: it follows a JPD that became slower for good within minutes
BASELINE_SECONDS = 300.0


class Reason(StrEnum):
    """Why the rate was lowered (the ``reason`` label)."""

    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    LATENCY = "latency"


_SAID = {
    Reason.RATE_LIMITED: "the JPD answered 429 Too Many Requests",
    Reason.UNAVAILABLE: "the JPD answered 503 Service Unavailable",
    Reason.LATENCY: "the JPD answers well above its usual latency",
}


class RequestBudget:
    """One per target. ``rate`` 0 means unlimited: no pacing and no slow-down."""

    def __init__(self, target: str, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.configured = rate
        self._rate = rate
        self._floor = min(FLOOR, rate)
        self._clock = clock
        #: when the next call is due, once the burst is spent
        self._due = -math.inf
        #: changes whenever reservations already made stop being valid (a slow-down, a pause)
        self.epoch = 0
        self._last_trouble = -math.inf
        self._last_decrease = -math.inf
        self._climbed_at = -math.inf
        self._recent: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._baseline: float | None = None
        self._baseline_at = 0.0
        #: self-metrics: calls that waited, seconds they waited, slow-downs by reason
        self.delayed = 0
        self.waited = 0.0
        self.slowdowns: dict[Reason, int] = dict.fromkeys(Reason, 0)

    @property
    def limited(self) -> bool:
        return self.configured > 0

    def rate(self) -> float:
        """The effective rate now, recovery included (reads only: safe from another thread)."""
        return self._climbed(self._clock())

    def reserve(self) -> tuple[float, int]:
        """Reserve the next slot: the seconds to wait before going (0: go now) and the epoch it is valid in."""
        if not self.limited:
            return 0.0, self.epoch
        now = self._clock()
        self._climb(now)
        go = max(now, self._due - self._tolerance())
        self._due = max(self._due, go) + 1.0 / self._rate
        wait = go - now
        return (wait if wait > 1e-9 else 0.0), self.epoch  # rounding must not make the burst's last call wait

    def waited_for(self, seconds: float) -> None:
        self.delayed += 1
        self.waited += seconds

    def answered(self, status: int | None, seconds: float | None, retry_after: float | None = None) -> Reason | None:
        """Take an answer into account: its status (None: no answer) unless the caller reads it as data, the
        seconds until its headers came (None: not a sign of load), and its Retry-After. Returns the reason
        when this answer lowered the rate."""
        if not self.limited:
            return None
        now = self._clock()
        reason = {429: Reason.RATE_LIMITED, 503: Reason.UNAVAILABLE}.get(status or 0)
        if reason is None and seconds is not None and self._slow(now, seconds):
            reason = Reason.LATENCY
        if reason is None:
            self._climb(now)
            return None
        lowered = self._trouble(now, reason)
        if retry_after:
            self._pause(now, min(retry_after, MAX_PAUSE))
        return reason if lowered else None

    # -- pacing ------------------------------------------------------------
    def _tolerance(self) -> float:
        burst = max(1.0, self._rate * BURST_SECONDS)
        return (burst - 1.0) / self._rate

    def _pause(self, now: float, seconds: float) -> None:
        """No call before ``now + seconds`` (nor before the next interval), and no burst right after: the
        slots reserved so far are void, however far ahead they were."""
        self._due = now + self._tolerance() + max(seconds, 1.0 / self._rate)
        self.epoch += 1

    # -- AIMD --------------------------------------------------------------
    def _trouble(self, now: float, reason: Reason) -> bool:
        self._climb(now)
        self._last_trouble = now
        if now - self._last_decrease < HOLD_SECONDS or self._rate <= self._floor:
            return False
        was = self._rate
        self._rate = max(self._floor, self._rate / 2)
        self._last_decrease = now
        self.slowdowns[reason] += 1
        # Reservations made at the former rate are void; the next call waits one interval at the new one.
        self._due = now + self._tolerance() + 1.0 / self._rate
        self.epoch += 1
        if was >= self.configured:
            log.warning("slowing down requests to %s from %g/s to %g/s: %s", self.target, was, self._rate,
                        _SAID[reason], extra={"target": self.target})
        else:
            log.debug("slowing down requests to %s further, to %g/s: %s", self.target, self._rate, _SAID[reason],
                      extra={"target": self.target})
        return True

    def _climbed(self, now: float) -> float:
        if self._rate >= self.configured:
            return self._rate
        start = max(self._climbed_at, self._last_trouble + CALM_SECONDS)
        if now <= start:
            return self._rate
        return min(self.configured, self._rate + self.configured * RECOVERY_PER_SECOND * (now - start))

    def _climb(self, now: float) -> None:
        if self._rate >= self.configured:
            return
        rate = self._climbed(now)
        self._climbed_at = now
        # A higher rate applies to reservations from now on; those already made stay valid (they are slower).
        self._rate = rate
        if rate >= self.configured:
            log.info("requests to %s are back to the configured %g/s", self.target, self.configured,
                     extra={"target": self.target})

    def _slow(self, now: float, seconds: float) -> bool:
        """Whether the median latency of the last answers is well above the baseline."""
        self._recent.append(seconds)
        if len(self._recent) < LATENCY_WINDOW:
            return False
        median = _median(self._recent)
        if self._baseline is None:
            self._baseline, self._baseline_at = median, now
            return False
        weight = 1.0 - math.exp(-(now - self._baseline_at) / BASELINE_SECONDS)
        self._baseline += weight * (median - self._baseline)
        self._baseline_at = now
        if median > LATENCY_FACTOR * self._baseline and median > LATENCY_FLOOR:
            # Judge the next slow-down on answers to calls sent at the lower rate only.
            self._recent.clear()
            return True
        return False


class LoopLag:
    """How long the event loop was too busy to run anything, while calls are in flight.

    Answers that arrive while the exporter parses a large body wait for the loop: timed from the
    exporter, they look slower than the JPD was. That time is taken out of the latency the budget
    judges, so that the exporter's own load is never held against the JPD.
    """

    #: how often the loop is checked while calls are in flight
    PERIOD = 0.02

    def __init__(self) -> None:
        self._total = 0.0
        self._due = 0.0
        self._calls = 0
        self._handle: asyncio.TimerHandle | None = None

    def enter(self) -> float:
        """A call starts; returns the lag so far, to give :meth:`exclude`."""
        self._calls += 1
        loop = asyncio.get_running_loop()
        if self._handle is None:
            self._due = loop.time() + self.PERIOD
            self._handle = loop.call_at(self._due, self._tick)
        return self._lag(loop.time())

    def leave(self) -> None:
        self._calls -= 1
        if self._calls == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def exclude(self, started: float, lag_then: float) -> float:
        """Seconds since ``started`` (perf_counter) without the time the loop was stalled meanwhile."""
        stalled = self._lag(asyncio.get_running_loop().time()) - lag_then
        return max(0.0, time.perf_counter() - started - stalled)

    def _lag(self, now: float) -> float:
        # A check overdue right now counts too: the call may resume before the check runs.
        return self._total + max(0.0, now - self._due)

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._total += max(0.0, now - self._due)
        self._due = now + self.PERIOD
        self._handle = loop.call_at(self._due, self._tick)


def _median(values: deque[float]) -> float:
    """The median, as statistics.median gives it; that module (and what it imports) is not worth its memory
    for this one call."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
