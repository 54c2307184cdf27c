"""What the middleware itself answers: denials over HTTP and WebSocket, and the cookies they carry."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Literal

import pytest
from fastapi import FastAPI
from starlette.authentication import AuthenticationError
from starlette.requests import HTTPConnection, Request
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import client, config_for, fastapi_app, find_middleware, make_world

Backend = Literal["asyncio", "trio"]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: Backend = request.param
    return name


@pytest.mark.anyio
async def test_an_authentication_error_from_the_apps_hook_is_401_not_503() -> None:
    world = make_world()

    def only_acme(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        raise AuthenticationError("this app serves Acme members only")

    app = fastapi_app(config_for(world.fake), resolve_workspace=only_acme)
    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert (response.status_code, response.json()) == (401, {"code": "UNAUTHORIZED"})
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_websocket_denial_carries_the_cookies_of_the_refresh_it_made(backend: Backend) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/me", status=401, body={"message": "authorization token is not valid."})
    app = fastapi_app(config_for(world.fake, require_auth=True))

    @app.websocket("/ws")
    async def feed(websocket: Any) -> None:
        await websocket.accept()

    with TestClient(app, backend=backend) as http:
        http.cookies.set("q_refresh_token", pair.refresh_token)
        with pytest.raises(WebSocketDenialResponse) as denied, http.websocket_connect("/ws"):
            pass
    assert (denied.value.status_code, denied.value.json()) == (401, {"code": "UNAUTHORIZED"})
    # The refresh spent the old token; its successor must reach the browser on the denial too.
    names = sorted(value.split("=", 1)[0] for value in denied.value.headers.get_list("set-cookie"))
    assert names == ["q_access_token", "q_refresh_token"]


@pytest.mark.anyio
async def test_the_request_sdk_is_closed_at_the_end_of_the_request() -> None:
    world = make_world()
    app = fastapi_app(config_for(world.fake))
    kept: List[Any] = []

    @app.get("/keep")
    async def keep(request: Request) -> Dict[str, int]:
        kept.append(request.state.qelos.sdk)
        return {"workspaces": len(await kept[0].workspaces.get_list())}

    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        response = await http.get("/keep", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.json() == {"workspaces": 2}
    with pytest.raises(RuntimeError, match="client has been closed"):
        await kept[0].workspaces.get_list()


def test_the_pool_is_closed_even_when_the_apps_shutdown_fails(backend: Backend) -> None:
    world = make_world()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        raise RuntimeError("the app's own shutdown failed")

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/ping")
    async def ping(request: Request) -> Dict[str, bool]:
        return {"user": request.state.qelos.user is not None}

    pair = world.fake.issue_tokens(world.alice)
    with pytest.raises(RuntimeError, match="own shutdown failed"), TestClient(app, backend=backend) as http:
        assert http.get("/ping", headers={"Authorization": f"Bearer {pair.access_token}"}).json() == {"user": True}
        pools = [find_middleware(app).backend.client._http]
    assert pools[0] is not None and pools[0].is_closed


@pytest.mark.anyio
@pytest.mark.parametrize(("down", "reason"), [(False, "UNAUTHORIZED"), (True, "QELOS_UNAVAILABLE")])
async def test_without_the_denial_extension_a_websocket_is_closed_1008_with_the_reason(down: bool, reason: str) -> None:
    world = make_world()
    world.fake.inject("GET /api/me", status=500 if down else 401)
    app = fastapi_app(config_for(world.fake, require_auth=True))
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"app.test"),
            (b"authorization", f"Bearer {world.fake.issue_tokens(world.bob).access_token}".encode()),
        ],
        "subprotocols": [],
        "extensions": {},
    }
    sent: List[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": reason}]
