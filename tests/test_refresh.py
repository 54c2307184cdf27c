from __future__ import annotations

import time
from typing import List

import anyio
import pytest

from qelos_integrator_fastapi import QelosUnauthorized, QelosUnavailable, TokenPair
from qelos_integrator_fastapi._refresh import Refresher, SuccessorMemory

pytestmark = pytest.mark.anyio


class Upstream:
    def __init__(self) -> None:
        self.calls: List[str] = []
        self.release = anyio.Event()
        self.fail_with: Exception | None = None

    async def refresh(self, token: str) -> TokenPair:
        self.calls.append(token)
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return TokenPair(f"access-after-{token}", f"refresh-after-{token}")


async def test_concurrent_callers_share_one_upstream_refresh() -> None:
    upstream = Upstream()
    refresher = Refresher(upstream.refresh)
    results: List[TokenPair] = []

    async def one() -> None:
        results.append(await refresher.refresh("r1"))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        upstream.release.set()
    assert upstream.calls == ["r1"]
    assert len(results) == 50
    assert {(r.access_token, r.refresh_token) for r in results} == {("access-after-r1", "refresh-after-r1")}
    results[0].access_token = "mutated"  # each caller has its own pair
    assert {r.access_token for r in results[1:]} == {"access-after-r1"}


async def test_successor_memory_answers_a_late_replay_of_the_old_token() -> None:
    upstream = Upstream()
    upstream.release.set()
    now = [0.0]
    refresher = Refresher(upstream.refresh, successor_ttl=30.0, clock=lambda: now[0])
    first = await refresher.refresh("r1")
    now[0] = 29.0
    again = await refresher.refresh("r1")
    assert (again.access_token, again.refresh_token) == (first.access_token, first.refresh_token)
    assert upstream.calls == ["r1"]
    now[0] = 31.0
    await refresher.refresh("r1")
    assert upstream.calls == ["r1", "r1"]


async def test_results_are_copies_callers_cannot_corrupt() -> None:
    upstream = Upstream()
    upstream.release.set()
    refresher = Refresher(upstream.refresh)
    first = await refresher.refresh("r1")
    first.access_token = "mutated"
    remembered = await refresher.refresh("r1")
    assert remembered.access_token == "access-after-r1"
    remembered.access_token = remembered.refresh_token = "mutated"
    again = await refresher.refresh("r1")
    assert (again.access_token, again.refresh_token) == ("access-after-r1", "refresh-after-r1")
    assert upstream.calls == ["r1"]


async def test_by_default_a_replay_within_a_minute_is_answered_from_memory() -> None:
    upstream = Upstream()
    upstream.release.set()
    now = [0.0]
    refresher = Refresher(upstream.refresh, clock=lambda: now[0])
    first = await refresher.refresh("r1")
    now[0] = 59.9
    assert (await refresher.refresh("r1")).access_token == first.access_token
    assert upstream.calls == ["r1"]
    now[0] = 60.0
    await refresher.refresh("r1")
    assert upstream.calls == ["r1", "r1"]


async def test_rejection_reaches_every_waiter_and_is_not_remembered() -> None:
    upstream = Upstream()
    upstream.fail_with = QelosUnauthorized("rejected")
    refresher = Refresher(upstream.refresh)
    errors: List[Exception] = []

    async def one() -> None:
        try:
            await refresher.refresh("r1")
        except QelosUnauthorized as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        upstream.release.set()
    assert len(errors) == 5
    assert upstream.calls == ["r1"]
    with pytest.raises(QelosUnauthorized):
        await refresher.refresh("r1")
    assert upstream.calls == ["r1", "r1"]


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("bad json"), KeyError("payload")])
async def test_unexpected_errors_become_unavailable(error: Exception) -> None:
    upstream = Upstream()
    upstream.release.set()
    upstream.fail_with = error
    refresher = Refresher(upstream.refresh)
    with pytest.raises(QelosUnavailable, match=f"token refresh failed: {type(error).__name__}"):
        await refresher.refresh("r1")


async def test_cancelled_leader_still_completes_for_waiters() -> None:
    upstream = Upstream()
    refresher = Refresher(upstream.refresh)
    results: List[str] = []
    leader_scope = anyio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            await refresher.refresh("r1")
            await anyio.sleep_forever()

    async def waiter() -> None:
        results.append((await refresher.refresh("r1")).access_token or "")

    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        leader_scope.cancel()
        await anyio.wait_all_tasks_blocked()
        upstream.release.set()
    assert upstream.calls == ["r1"]
    assert results == ["access-after-r1"]
    assert leader_scope.cancelled_caught


async def test_each_refreshed_token_is_remembered_not_only_the_first() -> None:
    upstream = Upstream()
    upstream.release.set()
    refresher = Refresher(upstream.refresh)
    await refresher.refresh("r1")
    second = await refresher.refresh("r2")
    again = await refresher.refresh("r2")
    assert (again.access_token, again.refresh_token) == (second.access_token, second.refresh_token)
    assert upstream.calls == ["r1", "r2"]


async def test_successor_memory_is_bounded() -> None:
    upstream = Upstream()
    upstream.release.set()
    memory = SuccessorMemory(ttl=60.0, max_entries=3, clock=time.monotonic)
    refresher = Refresher(upstream.refresh, store=memory)
    for i in range(10):
        await refresher.refresh(f"r{i}")
    assert len(memory) <= 3


# 31 s: long expired; 30 s: a successor is dropped exactly `ttl` seconds after it was remembered.
@pytest.mark.parametrize("later", [31.0, 30.0], ids=["expired", "exactly-ttl"])
async def test_expired_successors_are_dropped_when_the_next_is_remembered(later: float) -> None:
    upstream = Upstream()
    upstream.release.set()
    now = [0.0]
    memory = SuccessorMemory(ttl=30.0, max_entries=10_000, clock=lambda: now[0])
    refresher = Refresher(upstream.refresh, store=memory)
    for i in range(3):
        await refresher.refresh(f"r{i}")
    now[0] = later
    await refresher.refresh("r3")
    assert len(memory) == 1


# Equivalent mutant: remembering the upstream's pair without a copy. Nothing else holds that object:
# the flight hands out copies only, and QelosClient.refresh builds a new pair per call.
