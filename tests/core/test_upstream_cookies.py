"""No Qelos client of ours keeps a cookie: each upstream request carries only what this request computed.

FakeQelos is served at https://qelos.test, and its session cookie carries ``Domain`` and ``Secure`` as
Qelos's does, so a client with an ordinary cookie jar would store it and send it on later calls.
"""

from __future__ import annotations

from typing import Any, Dict

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qelos_integrator_fastapi import QelosIntegratorMiddleware, create_qelos_auth_routes
from qelos_integrator_fastapi.testing import FakeQelos

from ..support import Rewriting, config_for, make_world

pytestmark = pytest.mark.anyio


def _bearer(fake: FakeQelos, username: str) -> Dict[str, str]:
    return {"authorization": f"Bearer {fake.issue_tokens(fake.user(username)).access_token}"}


async def test_a_cookie_qelos_sets_during_an_sdk_call_never_rides_on_the_next_one() -> None:
    world = make_world()
    assert world.fake.url.startswith("https://")

    async def check_then_whoami(request: Request) -> JSONResponse:
        sdk = request.state.qelos.sdk
        # Qelos answers a password check with alice's Secure session cookie for its own domain.
        await sdk.authentication.signin({"username": "alice", "password": "alice-pass"})
        me = await sdk.authentication.get_logged_in_user()
        return JSONResponse({"sdk_user": me["username"]})

    app = Starlette(routes=[Route("/check", check_then_whoami)])
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://app.test") as http:
        reply = await http.get("/check", headers=_bearer(world.fake, "bob"))
    assert reply.json() == {"sdk_user": "bob"}
    after_signin = [r for r in world.fake.requests if r.path == "/api/me"]
    assert after_signin and all("cookie" not in r.headers for r in after_signin)


async def test_the_auth_router_sends_no_earlier_callers_cookie() -> None:
    # The router builds a client per call today; this guards the day it shares one long-lived client.
    world = make_world()
    config = config_for(world.fake)
    app = Starlette(routes=create_qelos_auth_routes(config, secret_key="s" * 32))
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    users: Dict[str, Any] = {}
    for name in ("alice", "bob"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://app.test") as http:
            login = await http.post("/auth/login", json={"username": name, "password": f"{name}-pass"})
            users[name] = login.json()["user"]["username"]
    assert users == {"alice": "alice", "bob": "bob"}
    assert world.fake.count("POST /api/signin") == 2
    assert all("cookie" not in r.headers for r in world.fake.requests if r.path == "/api/signin")


@pytest.mark.parametrize("mode", ["token", "session", "api_token"])
async def test_a_custom_header_on_the_request_sdk_replaces_the_credential_of_its_name(mode: str) -> None:
    # qelos-sdk's contract: a header set with set_custom_header wins over the one it would send itself.
    world = make_world()
    fake, alice, bob = world.fake, world.alice, world.bob
    config_options: Dict[str, Any] = {}
    browser_headers: Dict[str, str] = {}
    if mode == "token":
        browser_headers["authorization"] = f"Bearer {fake.issue_tokens(alice).access_token}"
        name, value = "authorization", f"Bearer {fake.issue_tokens(bob).access_token}"
    elif mode == "session":
        browser_headers["cookie"] = f"qlt_0={fake.issue_session_cookie(alice)}"
        name, value = "cookie", f"qlt_0={fake.issue_session_cookie(bob)}"
    else:
        config_options["api_token"] = fake.add_api_token(alice)
        name, value = "x-api-key", fake.add_api_token(bob)

    async def as_bob(request: Request) -> JSONResponse:
        sdk = request.state.qelos.sdk
        sdk.set_custom_header(name, value)
        me = await sdk.authentication.get_logged_in_user()
        return JSONResponse({"sdk_user": me["username"]})

    app = Starlette(routes=[Route("/as-bob", as_bob)])
    transport = Rewriting(fake, lambda request, response: _same(response))
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(fake, transport=transport, **config_options))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://app.test") as http:
        reply = await http.get("/as-bob", headers=browser_headers)
    assert reply.json() == {"sdk_user": "bob"}
    assert transport.sent[-1].headers.get_list(name) == [value]


async def _same(response: httpx.Response) -> httpx.Response:
    return response
