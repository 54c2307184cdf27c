from __future__ import annotations

import time

# 2027-01-15T08:00:00Z: fixed so that tokens and ids are reproducible between runs.
DEFAULT_START = 1_800_000_000.0


class FakeClock:
    """A clock in epoch seconds; FakeQelos reads every timestamp from it.

    ``FakeClock()`` stands still at ``start`` until ``advance`` moves it (tests: reproducible tokens).
    ``FakeClock.wall()`` follows the real time, plus whatever ``advance`` added (demos and manual
    sessions: real dates, tokens that expire, and an "expire my token now" button that still works).
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)
        self._wall = False

    @classmethod
    def wall(cls) -> FakeClock:
        clock = cls(0.0)
        clock._wall = True
        return clock

    def now(self) -> float:
        return time.time() + self._now if self._wall else self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("FakeClock only moves forward; pass a non-negative number of seconds")
        self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now()!r}{', wall' if self._wall else ''})"
