from __future__ import annotations

# 2027-01-15T08:00:00Z: fixed so that tokens and ids are reproducible between runs.
DEFAULT_START = 1_800_000_000.0


class FakeClock:
    """A manual clock in epoch seconds; FakeQelos reads every timestamp from it."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("FakeClock only moves forward; pass a non-negative number of seconds")
        self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
