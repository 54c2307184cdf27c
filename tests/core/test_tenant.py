"""The configured tenant on every upstream call, and a session cookie of another tenant."""

from __future__ import annotations

import logging
from typing import Any, Dict

import httpx
import pytest
from fastapi import FastAPI
from qelos_sdk import QelosAPIError
from starlette.requests import Request

from qelos_integrator_fastapi import QelosIntegratorMiddleware, create_qelos_auth_router

from ..support import (
    World,
    bearer,
    client,
    config_for,
    cookie_header,
    make_world,
)

pytestmark = pytest.mark.anyio

TENANT = "5f0a1b2c3d4e5f60"
COOKIE = "qlt_5f0a1b2c"
ACCESS_TTL = 18000


def sdk_app(world: World, **config_options: Any) -> FastAPI:
    """An app whose handlers use the request SDK: entities, the SDK's own /api/me, workspaces."""
    config_options.setdefault("tenant", world.fake.tenant)
    config = config_for(world.fake, **config_options)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, secret_key="tenant-test-secret-key", providers=["github"]))

    @app.post("/products")
    async def add_product(request: Request) -> Dict[str, Any]:
        sdk = request.state.qelos.sdk
        try:
            created = await sdk.entities("products").create({"name": "Lamp", "price": 12})
            listed = await sdk.entities("products").get_list()
        except QelosAPIError as exc:
            return {"error": str(exc)}
        return {"created": created["name"], "listed": [entity["name"] for entity in listed]}

    @app.get("/sdk-me")
    async def sdk_me(request: Request) -> Dict[str, Any]:
        sdk = request.state.qelos.sdk
        me = await sdk.authentication.get_logged_in_user()
        workspaces = await sdk.workspaces.get_list()
        return {"username": me["username"], "workspaces": [w["name"] for w in workspaces]}

    @app.get("/who")
    async def who(request: Request) -> Dict[str, Any]:
        return {"user": request.user.display_name if request.user.is_authenticated else None}

    return app


@pytest.mark.parametrize("mode", ["session", "token"])
async def test_sdk_entity_calls_reach_the_configured_tenant(mode: str) -> None:
    world = make_world(tenant=TENANT)
    if mode == "session":
        headers = cookie_header(**{COOKIE: world.fake.issue_session_cookie(world.alice, workspace=world.acme)})
    else:
        headers = bearer(world.fake.issue_tokens(world.alice, workspace=world.acme).access_token)
    async with client(sdk_app(world)) as http:
        response = await http.post("/products", headers=headers)
    # Without the tenant header the gateway answers for tenant "0": `blueprint not found`.
    assert response.json() == {"created": "Lamp", "listed": ["Lamp"]}
    entity_calls = [r for r in world.fake.requests if r.path.startswith("/api/blueprints/")]
    assert len(entity_calls) == 2
    assert all(r.headers["tenant"] == TENANT for r in entity_calls)


async def test_the_sdks_own_me_and_workspaces_see_the_session_of_the_configured_tenant() -> None:
    world = make_world(tenant=TENANT)
    session = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(sdk_app(world)) as http:
        response = await http.get("/sdk-me", headers=cookie_header(**{COOKIE: session}))
    assert response.json() == {"username": "alice", "workspaces": ["Acme & Co", "Globex"]}


async def test_every_upstream_call_carries_the_configured_tenant_and_never_the_clients() -> None:
    world = make_world(tenant=TENANT, website_urls=["http://app.test"])
    world.fake.set_social_user(world.alice)
    forged = {"tenant": "0"}
    app = sdk_app(world)
    async with client(app) as http:
        # Session mode: sign-in, the middleware, the SDK, sign-out.
        login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"}, headers=forged)
        assert login.status_code == 200, login.text
        assert (await http.post("/products", headers=forged)).json()["created"] == "Lamp"
        assert (await http.get("/sdk-me", headers=forged)).json()["username"] == "alice"
        assert (await http.post("/auth/logout", headers=forged)).json()["revoked"] is True
        # Token mode: an expired access token is refreshed before the middleware and the SDK run.
        pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
        world.fake.clock.advance(ACCESS_TTL + 60)
        expired = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        assert (await http.post("/products", headers={**forged, **expired})).json()["created"] == "Lamp"
    # Social login: the browser's own trip to Qelos is not ours; the exchange that follows is.
    async with client(app) as http:
        start = await http.get("/auth/github", params={"next": "/who"})
        location = start.headers["location"]
        async with httpx.AsyncClient(transport=world.fake.transport) as qelos:
            back = await qelos.get(location, headers={"tenant": TENANT})
        callback = back.headers["location"].split("app.test", 1)[1]
        done = await http.get(callback, headers=forged)
        assert done.status_code in (302, 303), done.text
        assert (await http.get("/who")).json()["user"] == "Alice Liddell"
    ours = [r for r in world.fake.requests if not r.path.startswith("/api/auth/github")]
    assert {f"{r.method} {r.path}" for r in ours} >= {
        "POST /api/signin",
        "GET /api/me",
        "GET /api/workspaces",
        "POST /api/blueprints/products/entities",
        "GET /api/blueprints/products/entities",
        "POST /api/logout",
        "POST /api/token/refresh",
        "POST /api/auth/callback",
    }
    assert {r.headers.get("tenant") for r in ours} == {TENANT}


async def test_the_legacy_token_cookie_works_for_sdk_calls() -> None:
    world = make_world()
    legacy = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(sdk_app(world)) as http:
        response = await http.post("/products", headers=cookie_header(token=legacy))
    # Qelos's gateway resolves the caller of no-code routes only for a qlt_ cookie.
    assert response.json() == {"created": "Lamp", "listed": ["Lamp"]}
    entity_calls = [r for r in world.fake.requests if r.path.startswith("/api/blueprints/")]
    assert all(r.headers["cookie"] == f"qlt_0={legacy}" for r in entity_calls)


async def test_a_session_cookie_of_another_tenant_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "qelos_integrator_fastapi")
    world = make_world(tenant=TENANT)
    session = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(sdk_app(world, tenant="0")) as http:
        for _ in range(3):
            assert (await http.get("/who", headers=cookie_header(**{COOKIE: session}))).json() == {"user": None}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    # The whole line, as an operator reads it: the cookie, the setting, the cookie it expects, and the fix.
    assert warnings[0].getMessage() == (
        f"ignored the Qelos session cookie {COOKIE}: it belongs to another tenant than QelosConfig.tenant='0' "
        "(whose cookie is qlt_0), so the request is anonymous; if this app serves that tenant, set "
        "QelosConfig(tenant=...) to the tenant id that starts with '5f0a1b2c'"
    )
    assert session not in caplog.text
    assert world.fake.requests == []


async def test_a_short_tenant_is_named_in_full_and_a_signed_in_request_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "qelos_integrator_fastapi")
    world = make_world()
    session = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(sdk_app(world)) as http:
        both = await http.get("/who", headers=cookie_header(qlt_0=session, qlt_acme="x.y.z"))
        assert both.json() == {"user": "Alice Liddell"}
        assert not caplog.records
        await http.get("/who", headers=cookie_header(qlt_acme="x.y.z"))
    (warning,) = caplog.records
    assert "qlt_acme" in warning.getMessage() and "to 'acme'" in warning.getMessage()
