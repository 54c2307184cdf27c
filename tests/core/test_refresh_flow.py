"""Expired access tokens, refresh through /api/token/refresh, and the q_* cookies it writes."""

from __future__ import annotations

from typing import Any, Dict, List

import anyio
import pytest
from fastapi import FastAPI
from starlette.requests import Request

from qelos_integrator_fastapi import QelosIntegratorMiddleware, TokenRefreshContext, write_token_cookies

from ..support import client, config_for, cookie_header, cookie_names, fastapi_app, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


async def test_expired_access_token_is_refreshed_once_and_cookies_set_once() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 60)
    async with client(fastapi_app(config_for(world.fake))) as http:
        http.cookies.set("q_access_token", pair.access_token)
        http.cookies.set("q_refresh_token", pair.refresh_token)
        response = await http.get("/me")
    assert response.json()["user"]["_id"] == world.alice.id
    assert world.fake.count("POST /api/token/refresh") == 1
    assert sorted(cookie_names(response)) == ["q_access_token", "q_refresh_token"]
    headers = set_cookie_headers(response)
    for header in headers:
        assert "HttpOnly" in header
        assert "SameSite=lax" in header
        assert "Path=/" in header
        assert "Secure" in header  # app_url is https://
        assert "Max-Age=" in header  # sized from the token's exp claim
    new_access = next(h for h in headers if h.startswith("q_access_token=")).split(";")[0].split("=", 1)[1]
    assert new_access != pair.access_token


async def test_only_refresh_token_present_refreshes_before_asking_who_it_is() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with client(fastapi_app(config_for(world.fake))) as http:
        http.cookies.set("q_refresh_token", pair.refresh_token)
        response = await http.get("/me")
    assert response.json()["user"]["_id"] == world.bob.id
    calls = [f"{r.method} {r.path}" for r in world.fake.requests]
    assert calls[0] == "POST /api/token/refresh"
    assert sorted(calls[1:]) == ["GET /api/me", "GET /api/workspaces"]


async def test_secure_cookies_when_app_url_is_https() -> None:
    world = make_world(url="https://qelos.test")
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    async with client(fastapi_app(config_for(world.fake))) as http:
        response = await http.get(
            "/me", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        )
    assert response.json()["user"] is not None
    assert all("Secure" in h for h in set_cookie_headers(response))


async def test_rejected_refresh_token_is_anonymous_and_clears_nothing() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    async with client(fastapi_app(config_for(world.fake))) as http:
        cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token="forged.refresh.token")
        response = await http.get("/me", headers=cookies)
    assert response.json()["user"] is None
    assert response.json()["error"] is None
    assert set_cookie_headers(response) == []


async def test_rejected_refresh_with_require_auth_is_401_without_cookies() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    app = fastapi_app(config_for(world.fake, require_auth=True))
    async with client(app) as http:
        used = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
        assert used.status_code == 200
        # The same refresh token is single-use upstream; but a replay inside the successor window
        # is answered from memory, so use a token Qelos never issued to see the rejection.
        replay = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token + "x"))
    assert replay.status_code == 401
    assert replay.json() == {"code": "UNAUTHORIZED"}
    assert set_cookie_headers(replay) == []


async def test_custom_on_token_refresh_receives_the_cookie_buffer_and_its_cookies_land() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    seen: List[TokenRefreshContext] = []

    async def my_refresh_hook(ctx: TokenRefreshContext) -> None:
        seen.append(ctx)
        ctx.response.set_cookie("q_access_token", ctx.new_tokens.access_token or "", httponly=True, samesite="lax")
        if ctx.new_tokens.refresh_token:
            ctx.response.set_cookie("q_refresh_token", ctx.new_tokens.refresh_token, httponly=True, samesite="lax")
        ctx.response.set_cookie("refreshed", "1")

    app = fastapi_app(config_for(world.fake), on_token_refresh=my_refresh_hook)
    async with client(app) as http:
        response = await http.get(
            "/me", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        )
    assert response.json()["user"]["_id"] == world.alice.id
    assert sorted(cookie_names(response)) == ["q_access_token", "q_refresh_token", "refreshed"]
    (ctx,) = seen
    assert ctx.old_tokens.access_token == pair.access_token
    assert ctx.old_tokens.refresh_token == pair.refresh_token
    assert ctx.new_tokens.refresh_token != pair.refresh_token
    assert ctx.config.app_url == world.fake.url
    assert ctx.request.url.path == "/me"
    assert type(ctx.response).__name__ == "CookieBuffer"
    assert "access_token" not in repr(ctx).replace("access_token=", "")  # no token in the repr
    assert pair.refresh_token not in repr(ctx)


async def test_the_hooks_sdk_already_calls_qelos_with_the_new_tokens() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    seen: List[str] = []

    async def greet(ctx: TokenRefreshContext) -> None:
        seen.append((await ctx.sdk.authentication.get_logged_in_user())["_id"])
        await write_token_cookies(ctx)

    app = fastapi_app(config_for(world.fake), on_token_refresh=greet)
    async with client(app) as http:
        response = await http.get(
            "/me", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        )
    assert seen == [world.alice.id]
    paths = [request.path for request in world.fake.requests]
    hook_call = world.fake.requests[paths.index("/api/token/refresh") + 1]
    assert hook_call.headers["authorization"] == f"Bearer {response.cookies['q_access_token']}"


async def test_context_tokens_are_mutated_in_place_and_sdk_uses_the_new_token() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 1)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/tokens")
    async def tokens(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        me = await qelos.sdk.authentication.get_logged_in_user()
        return {"me": me["_id"], "access": qelos.tokens.access_token, "refresh": qelos.tokens.refresh_token}

    async with client(app) as http:
        response = await http.get(
            "/tokens", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        )
    assert response.status_code == 200, response.text
    assert response.json()["me"] == world.alice.id
    assert response.json()["access"] != pair.access_token
    sdk_call_auth = world.fake.requests[-1].headers["authorization"]
    assert sdk_call_auth == f"Bearer {response.json()['access']}"
    # The context holds the pair the browser now has, never the spent refresh token.
    assert response.cookies["q_refresh_token"] == response.json()["refresh"] != pair.refresh_token
    assert response.cookies["q_access_token"] == response.json()["access"]


async def test_a_second_tab_replaying_the_spent_pair_gets_the_same_new_pair() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    old_cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    async with client(fastapi_app(config_for(world.fake, require_auth=True))) as http:
        first = await http.get("/me", headers=old_cookies)
        second = await http.get("/me", headers=old_cookies)
    assert [r.json()["user"]["_id"] for r in (first, second)] == [world.alice.id] * 2
    assert sorted(set_cookie_headers(second)) == sorted(set_cookie_headers(first))
    assert world.fake.count("POST /api/token/refresh") == 1


async def test_concurrent_requests_with_the_same_expired_pair_share_one_refresh() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    world.fake.inject("POST /api/token/refresh", latency=0.05)
    app = fastapi_app(config_for(world.fake))
    results: List[Any] = []

    async with client(app) as http:

        async def one() -> None:
            results.append(
                await http.get(
                    "/me", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
                )
            )

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    assert world.fake.count("POST /api/token/refresh") == 1
    assert all(r.json()["user"]["_id"] == world.alice.id for r in results)
    cookie_sets = {tuple(sorted(set_cookie_headers(r))) for r in results}
    assert len(cookie_sets) == 1
