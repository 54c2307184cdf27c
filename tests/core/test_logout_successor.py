"""Signing out forgets the successor memory: a spent refresh token signs nobody back in after logout."""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import httpx
import pytest
from fastapi import FastAPI, Request

from qelos_integrator_fastapi import QelosIntegratorMiddleware, TokenPair, create_qelos_auth_router
from qelos_integrator_fastapi._refresh import SuccessorMemory

from ..support import World, client, config_for, cookie_header, cookie_value, make_world

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


def app_for(world: World) -> FastAPI:
    config = config_for(world.fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, mode="token", providers=()))

    @app.get("/me")
    async def me(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        return {"user": qelos.user["username"] if qelos.user else None}

    @app.post("/sdk-logout")
    async def sdk_logout(request: Request) -> Dict[str, int]:
        response = await request.state.qelos.sdk.authentication.logout()
        return {"status": response.status_code}

    return app


async def refreshed(http: httpx.AsyncClient, access: str, refresh: str) -> TokenPair:
    """One request with an expired pair: the middleware refreshes and sets the successor cookies."""
    response = await http.get("/me", headers=cookie_header(q_access_token=access, q_refresh_token=refresh))
    http.cookies.clear()  # each request says which cookies it carries
    assert response.json() == {"user": "alice"}
    pair = TokenPair(cookie_value(response, "q_access_token"), cookie_value(response, "q_refresh_token"))
    assert pair.access_token and pair.refresh_token and pair.refresh_token != refresh
    return pair


async def who(http: httpx.AsyncClient, access: str, refresh: str) -> Optional[str]:
    response = await http.get("/me", headers=cookie_header(q_access_token=access, q_refresh_token=refresh))
    http.cookies.clear()
    assert cookie_value(response, "q_access_token") is None, "a spent token must not earn fresh cookies"
    user: Optional[str] = response.json()["user"]
    return user


@pytest.mark.parametrize("logout", ["/auth/logout", "/sdk-logout"])
async def test_a_spent_refresh_token_signs_nobody_in_after_logout(logout: str) -> None:
    world = make_world()
    first = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    async with client(app_for(world)) as http:
        current = await refreshed(http, first.access_token, first.refresh_token)
        assert await refreshed(http, first.access_token, first.refresh_token) == current  # the memory, before logout
        headers = cookie_header(q_access_token=current.access_token or "", q_refresh_token=current.refresh_token or "")
        out = await http.post(logout, headers=headers)
        http.cookies.clear()
        assert out.status_code == 200, out.text
        assert world.fake.count("POST /api/logout") == 1
        assert await who(http, first.access_token, first.refresh_token) is None


async def test_logout_forgets_a_whole_chain_of_refreshes() -> None:
    world = make_world()
    first = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    async with client(app_for(world)) as http:
        second = await refreshed(http, first.access_token, first.refresh_token)
        world.fake.clock.advance(ACCESS_TTL + 1)
        third = await refreshed(http, second.access_token or "", second.refresh_token or "")
        headers = cookie_header(q_access_token=third.access_token or "", q_refresh_token=third.refresh_token or "")
        assert (await http.post("/auth/logout", headers=headers)).status_code == 200
        http.cookies.clear()
        assert await who(http, first.access_token, first.refresh_token) is None
        assert await who(http, second.access_token or "", second.refresh_token or "") is None


async def test_logout_with_an_expired_access_token_revokes_the_refreshed_pair() -> None:
    world = make_world()
    first = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    async with client(app_for(world)) as http:
        # The middleware refreshes during the logout request itself; the router signs out that new pair.
        headers = cookie_header(q_access_token=first.access_token, q_refresh_token=first.refresh_token)
        out = await http.post("/auth/logout", headers=headers)
        http.cookies.clear()
        assert out.json()["revoked"] is True
        assert await who(http, first.access_token, first.refresh_token) is None


async def test_the_memory_forgets_only_the_chains_it_is_told() -> None:
    memory = SuccessorMemory(ttl=60.0, max_entries=100, clock=time.monotonic)
    await memory.remember("r0", TokenPair("a1", "r1"))
    await memory.remember("r1", TokenPair("a2", "r2"))
    await memory.remember("other", TokenPair("b1", "s1"))
    await memory.forget(["a2"])
    assert await memory.recall("r0") is None
    assert await memory.recall("r1") is None
    assert await memory.recall("other") == TokenPair("b1", "s1")
    await memory.forget(["other"])
    assert await memory.recall("other") is None
    assert len(memory) == 0
