"""The request SDK in handlers: refresh after a 401, timeouts, and the pool's lifecycle."""

from __future__ import annotations

from typing import Any, Dict, List

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, TokenRefreshContext, write_token_cookies

from ..support import Rewriting, client, config_for, cookie_header, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


def app_with(config: QelosConfig) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    return app


async def test_an_access_token_expiring_mid_request_is_refreshed_once_for_concurrent_sdk_calls() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    hook_calls: List[str] = []
    rejected: List[int] = []
    all_rejected = anyio.Event()

    async def hook(ctx: TokenRefreshContext) -> None:
        hook_calls.append(ctx.new_tokens.access_token or "")
        await write_token_cookies(ctx)

    async def refresh_after_every_401(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        # The refresh answers only once all five calls met their 401: each call then asks for a refresh.
        if request.url.path == "/api/workspaces" and response.status_code == 401:
            rejected.append(401)
            if len(rejected) == 5:
                all_rejected.set()
        elif request.url.path == "/api/token/refresh":
            await all_rejected.wait()
        return response

    app = FastAPI()
    transport = Rewriting(world.fake, refresh_after_every_401)
    app.add_middleware(
        QelosIntegratorMiddleware, config=config_for(world.fake, transport=transport), on_token_refresh=hook
    )

    @app.get("/slow")
    async def slow(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        world.fake.clock.advance(ACCESS_TTL + 1)  # the token expires while the handler runs
        results: List[Any] = []

        async def call() -> None:
            results.append(await qelos.sdk.workspaces.get_list())

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(call)
        return {"lists": len(results), "access": qelos.tokens.access_token}

    async with client(app) as http:
        headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        response = await http.get("/slow", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["lists"] == 5
    assert response.json()["access"] != pair.access_token
    assert world.fake.count("POST /api/token/refresh") == 1
    assert hook_calls == [response.json()["access"]]
    names = sorted(h.split("=", 1)[0] for h in set_cookie_headers(response))
    assert names == ["q_access_token", "q_refresh_token"]


async def test_a_401_without_a_refresh_token_reaches_the_handler() -> None:
    from qelos_sdk import QelosAPIError

    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    app = app_with(config_for(world.fake))

    @app.get("/expire")
    async def expire(request: Request) -> Dict[str, str]:
        world.fake.clock.advance(ACCESS_TTL + 1)
        try:
            await request.state.qelos.sdk.workspaces.get_list()
        except QelosAPIError as exc:
            return {"error": str(exc)}
        return {"error": ""}

    async with client(app) as http:
        response = await http.get("/expire", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.json() == {"error": "authorization token is not valid."}
    assert world.fake.count("POST /api/token/refresh") == 0


async def test_sdk_calls_from_handlers_time_out() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    app = app_with(config_for(world.fake, timeout=0.2))

    @app.get("/hang")
    async def hang(request: Request) -> Dict[str, str]:
        world.fake.inject("GET /api/blueprints/*", latency=5.0)
        try:
            await request.state.qelos.sdk.entities("products").get_list()
        except httpx.ReadTimeout as exc:
            return {"error": str(exc)}
        return {"error": ""}

    async with client(app) as http:
        response = await http.get("/hang", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.json() == {"error": "Qelos did not answer within 0.2s"}


def test_lifespan_shutdown_closes_the_pool() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    app = app_with(config_for(world.fake))

    @app.get("/ping")
    async def ping(request: Request) -> Dict[str, bool]:
        return {"user": request.state.qelos.user is not None}

    with TestClient(app) as http:
        assert http.get("/ping", headers={"Authorization": f"Bearer {pair.access_token}"}).json() == {"user": True}
        middleware = app.middleware_stack
        while not isinstance(middleware, QelosIntegratorMiddleware):
            middleware = middleware.app  # type: ignore[union-attr]
        pool = middleware.backend.client._http
        assert pool is not None and not pool.is_closed
    assert pool.is_closed
    assert middleware.backend.client.clients_opened == 1


async def test_a_refresh_that_fails_after_an_sdk_401_hands_the_401_to_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from qelos_sdk import QelosAPIError

    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    events: List[str] = []
    hook_calls: List[TokenRefreshContext] = []

    async def hook(ctx: TokenRefreshContext) -> None:
        hook_calls.append(ctx)

    app = FastAPI()
    app.add_middleware(
        QelosIntegratorMiddleware,
        config=config_for(world.fake),
        on_token_refresh=hook,
        on_event=lambda event: events.append(f"{event.name}:{event.code}"),
    )

    @app.get("/expire")
    async def expire(request: Request) -> Dict[str, str]:
        # Both tokens lapse while the handler runs: the SDK's 401 leads to one refresh, which Qelos refuses.
        world.fake.clock.advance(31 * 86400)  # past the default 30-day refresh lifetime
        try:
            await request.state.qelos.sdk.workspaces.get_list()
        except QelosAPIError as exc:
            return {"error": str(exc), "user": request.user.username}
        return {"error": "", "user": request.user.username}

    caplog.set_level("DEBUG", "qelos_integrator_fastapi")
    async with client(app) as http:
        headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        response = await http.get("/expire", headers=headers)
    assert response.status_code == 200
    # The handler sees Qelos's own 401, the request stays the signed-in alice it was, and nothing is rotated.
    assert response.json() == {"error": "authorization token is not valid.", "user": "alice"}
    assert world.fake.count("POST /api/token/refresh") == 1
    assert hook_calls == []
    assert set_cookie_headers(response) == []
    assert "refresh_rejected:UNAUTHORIZED" in events
    assert "refresh after a 401 from Qelos failed: UNAUTHORIZED" in caplog.messages
    assert not any(pair.refresh_token in record.getMessage() for record in caplog.records)
