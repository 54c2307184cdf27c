"""Plain Starlette: request.user, request.auth.scopes and @requires, on HTTP and WebSocket routes."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Literal, Tuple

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from qelos_integrator_fastapi import QelosIntegratorMiddleware, QelosUser

from ..support import World, config_for, make_world


def build_app(world: World, **options: Any) -> Starlette:
    async def homepage(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse(
            {
                "authenticated": user.is_authenticated,
                "display_name": user.display_name,
                "scopes": sorted(request.auth.scopes),
            }
        )

    @requires("authenticated")
    async def dashboard(request: Request) -> JSONResponse:
        user: QelosUser = request.user
        return JSONResponse(
            {
                "id": user.id,
                "identity": user.identity,
                "username": user.username,
                "email": user.email,
                "full_name": user.full_name,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "roles": list(user.roles),
                "workspace": user.workspace["_id"] if user.workspace else None,
                "raw_id": user.raw["_id"],
            }
        )

    @requires("role:admin")
    async def admin(request: Request) -> JSONResponse:
        return JSONResponse({"admin": request.user.username})

    @requires("authenticated")
    async def ws_feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.username, "scopes": sorted(websocket.auth.scopes)})
        await websocket.close()

    @requires("role:admin")
    async def ws_admin(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"admin": websocket.user.username})
        await websocket.close()

    return Starlette(
        routes=[
            Route("/", homepage),
            Route("/dashboard", dashboard),
            Route("/admin", admin),
            WebSocketRoute("/ws", ws_feed),
            WebSocketRoute("/ws/admin", ws_admin),
        ],
        middleware=[Middleware(QelosIntegratorMiddleware, config=config_for(world.fake, **options))],
    )


Backend = Literal["asyncio", "trio"]


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: Backend = request.param
    return name


@pytest.fixture
def world() -> World:
    world = make_world()
    world.alice.roles.append("admin")  # an app-level admin, for the @requires("role:admin") routes
    return world


@pytest.fixture
def http(world: World, backend: Backend) -> Iterator[TestClient]:
    with TestClient(build_app(world), backend=backend) as test_client:
        yield test_client


def bearer(world: World, user: Any, workspace: Any = None) -> Dict[str, str]:
    return {"Authorization": f"Bearer {world.fake.issue_tokens(user, workspace=workspace).access_token}"}


def test_anonymous_user_and_no_scopes(http: TestClient) -> None:
    assert http.get("/").json() == {"authenticated": False, "display_name": "", "scopes": []}


def test_scopes_from_roles_and_active_workspace(world: World, http: TestClient) -> None:
    body = http.get("/", headers=bearer(world, world.alice, world.acme)).json()
    assert body["authenticated"] is True
    assert body["display_name"] == "Alice Liddell"
    assert body["scopes"] == sorted(
        ["authenticated", "role:user", "role:admin", "workspace", "workspace:admin", "workspace:user"]
    )


def test_requires_authenticated_on_http(world: World, http: TestClient) -> None:
    assert http.get("/dashboard").status_code == 403
    body = http.get("/dashboard", headers=bearer(world, world.bob, world.acme)).json()
    assert body == {
        "id": world.bob.id,
        "identity": world.bob.id,
        "username": "bob",
        "email": "bob@example.com",
        "full_name": "Bob Builder",
        "first_name": "Bob",
        "last_name": "Builder",
        "roles": ["user"],
        "workspace": world.acme.id,
        "raw_id": world.bob.id,
    }


def test_requires_role_on_http(world: World, http: TestClient) -> None:
    assert http.get("/admin", headers=bearer(world, world.bob)).status_code == 403
    assert http.get("/admin", headers=bearer(world, world.alice)).json() == {"admin": "alice"}


def test_requires_authenticated_on_websocket(world: World, http: TestClient) -> None:
    with http.websocket_connect("/ws", headers=bearer(world, world.bob, world.acme)) as ws:
        assert ws.receive_json() == {
            "user": "bob",
            "scopes": ["authenticated", "role:user", "workspace", "workspace:user"],
        }
    with pytest.raises(WebSocketDisconnect) as closed, http.websocket_connect("/ws") as ws:
        ws.receive_json()
    assert closed.value.code == 1000


def test_websocket_credentials_from_cookies(world: World, http: TestClient) -> None:
    pair = world.fake.issue_tokens(world.alice)
    http.cookies.set("q_access_token", pair.access_token)
    with http.websocket_connect("/ws/admin") as ws:
        assert ws.receive_json() == {"admin": "alice"}


def test_requires_role_on_websocket(world: World, http: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        http.websocket_connect("/ws/admin", headers=bearer(world, world.bob)) as ws,
    ):
        ws.receive_json()
    # Starlette's @requires closes a WebSocket it refuses with a normal close (1000), not 1008.
    assert closed.value.code == 1000


def test_require_auth_on_websocket_is_an_http_401_denial(world: World, backend: Backend) -> None:
    with TestClient(build_app(world, require_auth=True), backend=backend) as http:
        from starlette.testclient import WebSocketDenialResponse

        with pytest.raises(WebSocketDenialResponse) as denied, http.websocket_connect("/ws"):
            pass
    assert denied.value.status_code == 401
    assert denied.value.json() == {"code": "UNAUTHORIZED"}


@pytest.mark.anyio
async def test_require_auth_on_websocket_closes_1008_without_the_denial_extension(world: World) -> None:
    app = build_app(world, require_auth=True)
    sent: list[Message] = []
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.test")],
        "subprotocols": [],
        "extensions": {},
        "app": app,
    }

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "UNAUTHORIZED"}]


def test_websocket_refresh_sets_the_new_cookies_on_the_accept(world: World, http: TestClient) -> None:
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(18001)
    http.cookies.set("q_access_token", pair.access_token)
    http.cookies.set("q_refresh_token", pair.refresh_token)
    with http.websocket_connect("/ws/admin") as ws:
        assert ws.receive_json() == {"admin": "alice"}
        raw: List[Tuple[bytes, bytes]] = list(ws.extra_headers or [])
        headers = [(k.decode(), v.decode()) for k, v in raw]
    names = sorted(value.split("=", 1)[0] for key, value in headers if key == "set-cookie")
    assert names == ["q_access_token", "q_refresh_token"]
    assert world.fake.count("POST /api/token/refresh") == 1


@pytest.mark.anyio
async def test_the_backend_alone_in_starlettes_middleware_resolves_users_and_warns_once(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx
    from starlette.middleware.authentication import AuthenticationMiddleware

    from qelos_integrator_fastapi import QelosAuthBackend

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name, "qelos": request.state.qelos.user["_id"]})

    app = Starlette(
        routes=[Route("/", whoami)],
        middleware=[Middleware(AuthenticationMiddleware, backend=QelosAuthBackend(config_for(world.fake)))],
    )
    headers = {"Authorization": f"Bearer {world.fake.issue_tokens(world.bob).access_token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as http:
        for _ in range(2):
            assert (await http.get("/", headers=headers)).json() == {"user": "Bob Builder", "qelos": world.bob.id}
    # Once, and it says what to do instead.
    assert [r.getMessage() for r in caplog.records if "QelosIntegratorMiddleware" in r.getMessage()] == [
        "QelosAuthBackend runs without QelosIntegratorMiddleware: users resolve, but refreshed or rotated cookies "
        "cannot reach the browser; use app.add_middleware(QelosIntegratorMiddleware, ...)"
    ]
