"""What the middleware itself answers: denials over HTTP and WebSocket, and the cookies they carry."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Literal, Tuple

import pytest
from fastapi import FastAPI
from starlette.authentication import AuthenticationError
from starlette.requests import HTTPConnection, Request
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import client, config_for, fastapi_app, find_middleware, make_world

Backend = Literal["asyncio", "trio"]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: Backend = request.param
    return name


def only_acme(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
    raise AuthenticationError("this app serves Acme members only")


@pytest.mark.anyio
async def test_an_authentication_error_from_the_apps_hook_is_401_not_503(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "qelos_integrator_fastapi")
    world = make_world()
    app = fastapi_app(config_for(world.fake), resolve_workspace=only_acme)
    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert (response.status_code, response.json()) == (401, {"code": "UNAUTHORIZED"})
    assert response.headers["www-authenticate"] == "Bearer"
    # The app's reason stays out of the answer; the log is where its developer finds it.
    assert "authentication error: this app serves Acme members only" in [r.getMessage() for r in caplog.records]


def test_an_authentication_error_on_a_websocket_closes_it_before_the_app_runs(backend: Backend) -> None:
    world = make_world()
    app = fastapi_app(config_for(world.fake), resolve_workspace=only_acme)
    reached: List[str] = []

    @app.websocket("/ws")
    async def feed(websocket: WebSocket) -> None:
        reached.append("feed")
        await websocket.accept()

    pair = world.fake.issue_tokens(world.alice)
    with TestClient(app, backend=backend) as http:
        headers = {"Authorization": f"Bearer {pair.access_token}"}
        with pytest.raises(WebSocketDisconnect) as closed, http.websocket_connect("/ws", headers=headers):
            pass
    # Starlette's AuthenticationMiddleware closes a WebSocket on an AuthenticationError, with 1000.
    assert closed.value.code == 1000
    assert reached == []


def test_a_config_that_is_not_a_qelos_config_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"^config must be a QelosConfig, got dict$"):
        QelosIntegratorMiddleware(FastAPI(), config={"app_url": "https://qelos.test"})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_skipped_path_runs_as_a_plain_anonymous_request() -> None:
    world = make_world()
    app = fastapi_app(config_for(world.fake, skip_paths=["/hooks"], require_auth=True))

    @app.post("/hooks/echo")
    async def echo(request: Request) -> Dict[str, Any]:
        body = (await request.body()).decode()
        return {"body": body, "authenticated": request.user.is_authenticated, "scopes": request.auth.scopes}

    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        response = await http.post(
            "/hooks/echo", content=b"payload", headers={"Authorization": f"Bearer {pair.access_token}"}
        )
    assert response.json() == {"body": "payload", "authenticated": False, "scopes": []}
    assert world.fake.requests == []


@pytest.mark.anyio
async def test_scopes_other_than_http_websocket_and_lifespan_pass_through_untouched() -> None:
    world = make_world()
    seen: List[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, await receive()))
        await send({"type": "custom.reply"})

    scope: Dict[str, Any] = {"type": "custom", "path": "/"}
    sent: List[Message] = []

    async def receive() -> Message:
        return {"type": "custom.message"}

    async def send(message: Message) -> None:
        sent.append(message)

    await QelosIntegratorMiddleware(inner, config=config_for(world.fake))(scope, receive, send)
    assert seen == [({"type": "custom", "path": "/"}, {"type": "custom.message"})]
    assert seen[0][0] is scope
    assert sent == [{"type": "custom.reply"}]
    assert world.fake.requests == []


def test_a_bare_websocket_accept_gets_the_refreshed_cookies_as_its_headers(backend: Backend) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)

    async def feed(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        # A raw ASGI app may leave "headers" out of websocket.accept: it is optional in the spec.
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    app = QelosIntegratorMiddleware(feed, config=config_for(world.fake))
    http = TestClient(app, backend=backend)
    http.cookies.set("q_refresh_token", pair.refresh_token)
    with http.websocket_connect("/ws") as ws:
        headers: List[Tuple[bytes, bytes]] = ws.extra_headers or []
    names = sorted(value.split(b"=", 1)[0] for name, value in headers if name == b"set-cookie")
    assert names == [b"q_access_token", b"q_refresh_token"]


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
        # No "extensions" key at all: the ASGI spec makes it optional.
    }
    sent: List[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": reason}]


def test_lifespan_startup_builds_the_sdk_prototype_then_freezes_the_heap(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    import qelos_integrator_fastapi._sdk as sdk_module

    monkeypatch.setattr(sdk_module, "_prototype", None)  # as in a fresh worker
    gc.unfreeze()
    world = make_world()
    app = fastapi_app(config_for(world.fake))
    built_before_startup = sdk_module._prototype is not None
    with TestClient(app, backend=backend):
        # Startup is over and no request has run: the prototype exists and is out of the collector's way.
        assert sdk_module._prototype is not None
        assert gc.get_freeze_count() > 0
        prototype = sdk_module._prototype[0]
        assert not any(gc.is_tracked(o) and o is prototype for o in gc.get_objects())
    assert not built_before_startup
    gc.unfreeze()


@pytest.mark.anyio
async def test_a_request_without_credential_headers_reads_nothing_and_rewrites_no_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import qelos_integrator_fastapi._backend as backend_module
    from qelos_integrator_fastapi._cookies import CookieBuffer

    calls: List[str] = []
    authenticate = backend_module.QelosAuthBackend.authenticate
    flush_into = CookieBuffer.flush_into

    async def counted_authenticate(self: Any, conn: HTTPConnection) -> Any:
        calls.append("authenticate")
        return await authenticate(self, conn)

    def counted_flush(self: CookieBuffer, headers: Any) -> None:
        calls.append("flush_into")
        flush_into(self, headers)

    monkeypatch.setattr(backend_module.QelosAuthBackend, "authenticate", counted_authenticate)
    monkeypatch.setattr(CookieBuffer, "flush_into", counted_flush)
    world = make_world()
    app = fastapi_app(config_for(world.fake))
    async with client(app) as http:
        anonymous = await http.get("/whoami")
        assert anonymous.json() == {"authenticated": False, "name": "", "scopes": []}
        assert calls == []
        # A cookie header, even one carrying no credential, takes the full path.
        assert (await http.get("/whoami", headers={"cookie": "theme=dark"})).json()["authenticated"] is False
        assert calls == ["authenticate"]
    assert len(world.fake.requests) == 0
