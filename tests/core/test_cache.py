"""Upstream call counts, with and without the opt-in identity cache."""

from __future__ import annotations

from typing import Any, List

import anyio
import pytest

from qelos_integrator_fastapi import QelosEvent, QelosIntegratorMiddleware
from qelos_integrator_fastapi.cache import IdentityCache

from .helpers import client, config_for, cookie_header, fastapi_app, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio


async def test_uncached_requests_make_two_calls_and_anonymous_none() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with client(fastapi_app(config_for(world.fake))) as http:
        for _ in range(3):
            await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
        for _ in range(3):
            await http.get("/me")
    assert world.fake.count("GET /api/me") == 3
    assert world.fake.count("GET /api/workspaces") == 3
    assert len(world.fake.requests) == 6


async def test_cache_hits_make_no_upstream_call_and_emit_events() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    events: List[QelosEvent] = []
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=60), on_event=events.append)
    async with client(app) as http:
        bodies = [
            (await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})).json() for _ in range(5)
        ]
    assert len(world.fake.requests) == 2
    assert all(body == bodies[0] for body in bodies)
    assert [e.name for e in events if e.name.startswith("cache")] == ["cache_miss"] + ["cache_hit"] * 4
    assert all(e.user_id == world.alice.id for e in events if e.name == "identity_resolved")


async def test_cache_entries_expire_and_failures_are_not_cached() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    now = [0.0]
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=30))
    async with client(app) as http:
        await http.get("/me")  # builds the middleware stack
        cache = IdentityCache[Any](30, 100, clock=lambda: now[0])
        find_middleware(app).backend.cache = cache
        world.fake.inject("GET /api/me", status=500, times=1)
        auth = {"Authorization": f"Bearer {pair.access_token}"}
        assert (await http.get("/me", headers=auth)).json()["error"] == "QELOS_UNAVAILABLE"
        assert (await http.get("/me", headers=auth)).json()["user"]["_id"] == world.alice.id
        assert (await http.get("/me", headers=auth)).json()["user"]["_id"] == world.alice.id
        assert world.fake.count("GET /api/me") == 2
        now[0] = 31.0
        await http.get("/me", headers=auth)
        assert world.fake.count("GET /api/me") == 3


async def test_cache_lifetime_is_capped_by_the_token_exp() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    from qelos_integrator_fastapi.credentials import unverified_claims

    exp = unverified_claims(pair.access_token)["exp"]
    now = [0.0]
    cache = IdentityCache[str](3600, 10, clock=lambda: now[0], wall_clock=lambda: exp - 10)

    async def fetch() -> str:
        return "identity"

    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", False)
    now[0] = 9.0
    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", True)
    now[0] = 11.0
    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", False)


async def test_cache_is_lru_bounded_and_single_flight() -> None:
    calls: List[str] = []
    release = anyio.Event()
    cache = IdentityCache[str](60, 2)

    async def fetch_for(key: str) -> str:
        calls.append(key)
        await release.wait()
        return key

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(cache.get_or_fetch, "same", lambda: fetch_for("same"))
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == ["same"]
    for key in ("a", "b", "c"):
        await cache.get_or_fetch(key, lambda key=key: fetch_for(key))  # type: ignore[misc]
    assert len(cache) == 2


async def test_cached_identities_are_copies() -> None:
    cache = IdentityCache[dict[str, Any]](60, 10)

    async def fetch() -> dict[str, Any]:
        return {"roles": ["user"]}

    first, _ = await cache.get_or_fetch("k", fetch)
    first["roles"].append("admin")
    again, hit = await cache.get_or_fetch("k", fetch)
    assert hit
    assert again == {"roles": ["user"]}


async def test_fifty_concurrent_requests_with_one_expired_pair_refresh_once() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(18001)
    world.fake.inject("POST /api/token/refresh", latency=0.05)
    app = fastapi_app(config_for(world.fake))
    responses: List[Any] = []
    async with client(app) as http:

        async def one() -> None:
            headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
            responses.append(await http.get("/me", headers=headers))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
    assert world.fake.count("POST /api/token/refresh") == 1
    assert [r.json()["user"]["_id"] for r in responses] == [world.alice.id] * 50
    assert len({tuple(sorted(set_cookie_headers(r))) for r in responses}) == 1


def find_middleware(app: Any) -> QelosIntegratorMiddleware:
    layer = app.middleware_stack
    while not isinstance(layer, QelosIntegratorMiddleware):
        layer = layer.app
    return layer
