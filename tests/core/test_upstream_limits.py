"""Upstream answers are bounded: in size while they stream (max_upstream_body), and in time while the body is read.

A hostile upstream here is FakeQelos with one path answered by a lazy stream that counts the bytes it hands
out: that count is the deterministic proxy for memory (what was never read was never held) and for time.
The last tests repeat the two worst cases over a real socket, against uvicorn on loopback.
"""

from __future__ import annotations

import gzip
import json
from typing import Any, AsyncIterator, Dict, Iterator, Optional

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from qelos_integrator_fastapi import QelosConfig, QelosConfigError, QelosIntegratorMiddleware, create_qelos_auth_routes
from qelos_integrator_fastapi.testing import FakeQelos

from ..support import (
    World,
    client,
    cookie_header,
    fastapi_app,
    find_middleware,
    loopback_listener,
    make_world,
    served_on_loopback,
    session,
)

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
CAP = 1 * MiB
CHUNK = 64 * 1024
HUGE = 64 * MiB  # what the hostile upstream would send if read to the end
SECRET = "upstream-limits-test-secret"


class Lazy(httpx.AsyncByteStream):
    """A body made on demand, ``chunk`` bytes at a time, ``pause`` seconds apart; counts what was taken."""

    def __init__(self, total: int, *, chunk: int = CHUNK, pause: float = 0.0, content: Optional[bytes] = None) -> None:
        self.total = total if content is None else len(content)
        self.chunk = chunk
        self.pause = pause
        self.content = content
        self.delivered = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.delivered < self.total:
            # Every read of a real stream waits for the network at least briefly.
            await anyio.sleep(self.pause) if self.pause else await anyio.lowlevel.checkpoint()
            start = self.delivered
            size = min(self.chunk, self.total - start)
            self.delivered += size
            yield b" " * size if self.content is None else self.content[start : start + size]


class Hostile(httpx.AsyncBaseTransport):
    """FakeQelos, except that requests to ``path`` get ``status`` and the lazy ``body`` (fake's Set-Cookie kept)."""

    def __init__(self, fake: FakeQelos, path: str, body: Lazy, status: int = 200, **headers: str) -> None:
        self._inner = fake.transport
        self.path = path
        self.body = body
        self.status = status
        self.headers = headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != self.path:
            return response
        await response.aread()
        kept = [(k, v) for k, v in response.headers.raw if k.lower() == b"set-cookie"]
        extra = [(k.replace("_", "-").encode(), v.encode()) for k, v in self.headers.items()]
        return httpx.Response(self.status, headers=[*kept, *extra], stream=self.body)


def config(fake: FakeQelos, transport: httpx.AsyncBaseTransport, **options: Any) -> QelosConfig:
    options.setdefault("max_upstream_body", CAP)
    return QelosConfig(app_url=fake.url, transport=transport, timeout=2.0, **options)


def bearer(world: World) -> Dict[str, str]:
    token = world.fake.issue_tokens(world.alice, workspace=world.acme).access_token
    return {"authorization": f"Bearer {token}"}


def router_app(cfg: QelosConfig, mode: str = "session") -> Starlette:
    app = Starlette(routes=create_qelos_auth_routes(cfg, secret_key=SECRET, mode=mode, providers=()))
    app.add_middleware(QelosIntegratorMiddleware, config=cfg)
    return app


def read_at_most_the_cap(body: Lazy) -> None:
    assert 0 < body.delivered <= CAP + body.chunk, f"{body.delivered:,} bytes read"


@pytest.mark.parametrize("status", [200, 500])
async def test_an_endless_api_me_body_is_read_only_to_the_cap(status: int, caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    body = Lazy(HUGE)
    app = fastapi_app(config(world.fake, Hostile(world.fake, "/api/me", body, status), require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers=bearer(world))
    assert response.status_code == 503
    assert response.json()["code"] == "QELOS_UNAVAILABLE"
    read_at_most_the_cap(body)
    if status == 200:
        assert "GET /api/me answered 200 with a body over 1048576 bytes (QelosConfig.max_upstream_body)" in caplog.text


async def test_a_declared_content_length_over_the_cap_is_not_read_at_all() -> None:
    world = make_world()
    body = Lazy(HUGE)
    transport = Hostile(world.fake, "/api/me", body, content_length=str(HUGE))
    async with client(fastapi_app(config(world.fake, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=bearer(world))
    assert response.status_code == 503
    assert body.delivered == 0


async def test_a_compressed_body_is_capped_on_its_decoded_size() -> None:
    world = make_world()
    user = json.dumps({"_id": world.alice.id, "username": "alice", "pad": "a" * (16 * MiB)}).encode()
    packed = gzip.compress(user)
    assert len(packed) < CAP  # small on the wire, 16 MiB once decoded

    body = Lazy(0, content=packed)
    transport = Hostile(world.fake, "/api/me", body, content_encoding="gzip")
    async with client(fastapi_app(config(world.fake, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=bearer(world))
    assert response.status_code == 503


async def test_a_body_under_the_cap_is_read_whole() -> None:
    world = make_world()
    user = json.dumps({"_id": world.alice.id, "username": "alice", "pad": "a" * (CAP - 200)}).encode()
    transport = Hostile(world.fake, "/api/me", Lazy(0, content=user))
    async with client(fastapi_app(config(world.fake, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=bearer(world))
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice"


async def test_an_endless_workspace_list_keeps_the_user_and_is_read_only_to_the_cap() -> None:
    world = make_world()
    body = Lazy(HUGE)
    async with client(fastapi_app(config(world.fake, Hostile(world.fake, "/api/workspaces", body)))) as http:
        response = await http.get("/me", headers=bearer(world))
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice" and response.json()["workspaces"] == []
    read_at_most_the_cap(body)


async def test_an_endless_refresh_answer_is_a_503_read_only_to_the_cap() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    body = Lazy(HUGE)
    transport = Hostile(world.fake, "/api/token/refresh", body)
    async with client(fastapi_app(config(world.fake, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 503
    assert response.headers.get_list("set-cookie") == []
    read_at_most_the_cap(body)


@pytest.mark.parametrize("mode", ["session", "token"])
async def test_an_endless_signin_answer_is_the_routers_503(mode: str) -> None:
    world = make_world()
    body = Lazy(HUGE)
    app = router_app(config(world.fake, Hostile(world.fake, "/api/signin", body)), mode)
    async with client(app) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert response.status_code == 503
    assert set(response.json()) == {"code", "message"} and response.json()["code"] == "QELOS_UNAVAILABLE"
    read_at_most_the_cap(body)


async def test_an_endless_logout_answer_still_signs_out_and_is_read_only_to_the_cap() -> None:
    world = make_world()
    body = Lazy(HUGE)
    app = router_app(config(world.fake, Hostile(world.fake, "/api/logout", body)))
    cookie = world.fake.issue_session_cookie(world.alice)
    async with client(app) as http:
        response = await http.post("/auth/logout", headers=session(world.fake, cookie))
    assert response.status_code == 200 and response.json()["signed_out"] is True
    read_at_most_the_cap(body)


async def test_the_social_callback_answer_is_read_only_to_the_cap() -> None:
    world = make_world()
    world.fake.set_social_user(world.alice)
    body = Lazy(HUGE)
    cfg = config(world.fake, Hostile(world.fake, "/api/auth/callback", body))
    app = Starlette(routes=create_qelos_auth_routes(cfg, secret_key=SECRET, providers=["github"]))
    async with client(app, "https://app.example.com") as http:
        start = await http.get("/auth/github")
        state = httpx.URL(start.headers["location"]).params["state"]
        rt = world.fake.issue_tokens(world.alice).refresh_token
        response = await http.get("/auth/callback", params={"rt": rt, "state": state})
    assert response.status_code == 503
    assert response.json()["code"] == "QELOS_UNAVAILABLE"
    read_at_most_the_cap(body)


def test_the_default_cap_is_4_mib_and_must_be_a_positive_integer() -> None:
    assert QelosConfig(app_url="https://qelos.example.com").max_upstream_body == 4 * MiB
    bad: Any
    for bad in (0, -1, True, 1.5, "1"):
        with pytest.raises(QelosConfigError, match="max_upstream_body"):
            QelosConfig(app_url="https://qelos.example.com", max_upstream_body=bad)


# --- time: the request SDK's reads are bounded by the same deadline as the middleware's calls -----------------

TIMEOUT = 0.5
DRIBBLE = 0.1  # seconds between two bytes


def sdk_app(cfg: QelosConfig) -> Starlette:
    async def products(request: Request) -> JSONResponse:
        sdk = request.state.qelos.sdk  # the first build in a process takes a while: not part of the call
        if "build-only" in request.query_params:
            return JSONResponse({})
        started = anyio.current_time()
        error: Optional[str] = None
        try:
            await sdk.entities("products").get_list()
        except Exception as exc:
            error = type(exc).__name__
        return JSONResponse({"error": error, "seconds": anyio.current_time() - started})

    app = Starlette(routes=[Route("/products", products)])
    app.add_middleware(QelosIntegratorMiddleware, config=cfg)
    return app


async def test_an_sdk_call_whose_body_dribbles_fails_within_the_timeout() -> None:
    world = make_world()
    body = Lazy(10_000, chunk=1, pause=DRIBBLE)  # 1,000 s if read to the end
    transport = Hostile(world.fake, "/api/blueprints/products/entities", body)
    cfg = QelosConfig(app_url=world.fake.url, transport=transport, timeout=TIMEOUT)
    async with client(sdk_app(cfg)) as http:
        await http.get("/products?build-only", headers=bearer(world))
        with anyio.fail_after(6 * TIMEOUT):  # unbounded, the call would take 1,000 s
            response = await http.get("/products", headers=bearer(world))
    assert response.json()["error"] == "ReadTimeout"
    assert response.json()["seconds"] < 3 * TIMEOUT
    # The read stopped at the deadline: about TIMEOUT / DRIBBLE bytes were taken, not the 10,000 on offer.
    assert body.delivered <= TIMEOUT / DRIBBLE + 2


async def test_an_sdk_call_with_a_prompt_body_still_answers() -> None:
    world = make_world()
    cfg = QelosConfig(app_url=world.fake.url, transport=world.fake.transport, timeout=TIMEOUT)
    async with client(sdk_app(cfg)) as http:
        response = await http.get("/products", headers=bearer(world))
    assert response.json()["error"] is None


# --- the same over a real socket: a hostile upstream behind uvicorn on loopback ---------------------------------


class LoopbackHostile:
    """FakeQelos behind uvicorn, except where ``mode`` says otherwise; counts the bytes it produced."""

    def __init__(self, fake: FakeQelos) -> None:
        self.fake = fake
        self.mode: Dict[str, str] = {}
        self.produced: Dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        kind = self.mode.get(path)
        if kind is None:
            await self.fake(scope, receive, send)
            return
        self.produced[path] = 0

        request = Request(scope, receive)

        async def body() -> AsyncIterator[bytes]:
            for _ in range(200 * MiB // CHUNK if kind == "huge" else 10_000):
                # uvicorn drops what is sent after the client hung up: stop producing then, as a server would.
                if await request.is_disconnected():
                    return
                if kind == "dribble":
                    await anyio.sleep(DRIBBLE)
                data = b" " * (CHUNK if kind == "huge" else 1)
                self.produced[path] += len(data)
                yield data

        await StreamingResponse(body(), media_type="application/json")(scope, receive, send)


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackHostile]:
    listener = loopback_listener()
    fake = make_world(url=f"http://127.0.0.1:{listener.getsockname()[1]}").fake
    hostile = LoopbackHostile(fake)
    with served_on_loopback(listener, uvicorn.Config(hostile, log_level="warning", access_log=False, lifespan="off")):
        yield hostile


def loopback_bearer(fake: FakeQelos) -> Dict[str, str]:
    alice = fake.user("alice")
    return {"authorization": f"Bearer {fake.issue_tokens(alice, workspace=fake.workspace('Acme & Co')).access_token}"}


async def test_a_200_mb_body_over_a_real_socket_is_read_only_to_about_the_cap(loopback: LoopbackHostile) -> None:
    loopback.mode = {"/api/me": "huge"}
    cfg = QelosConfig(app_url=loopback.fake.url, max_upstream_body=CAP, require_auth=True)
    app = fastapi_app(cfg)
    try:
        async with client(app) as http:
            response = await http.get("/me", headers=loopback_bearer(loopback.fake))
    finally:
        loopback.mode = {}
        await find_middleware(app).aclose()
    assert response.status_code == 503
    # The server produces what the socket buffers take before the client stops reading and hangs up:
    # a few MiB on loopback, where reading to the end would have been 200 MiB.
    assert loopback.produced["/api/me"] < 32 * MiB, f"{loopback.produced['/api/me']:,} bytes produced"


async def test_an_sdk_call_over_a_real_socket_whose_body_dribbles_fails_within_the_timeout(
    loopback: LoopbackHostile,
) -> None:
    loopback.mode = {"/api/blueprints/products/entities": "dribble"}
    app = sdk_app(QelosConfig(app_url=loopback.fake.url, timeout=TIMEOUT))
    try:
        async with client(app) as http:
            await http.get("/products?build-only", headers=loopback_bearer(loopback.fake))
            with anyio.fail_after(6 * TIMEOUT):  # unbounded, the call would take 1,000 s
                response = await http.get("/products", headers=loopback_bearer(loopback.fake))
    finally:
        loopback.mode = {}
        await find_middleware(app).aclose()
    assert response.json()["error"] == "ReadTimeout"
    assert response.json()["seconds"] < 3 * TIMEOUT
    assert loopback.produced["/api/blueprints/products/entities"] <= TIMEOUT / DRIBBLE + 2
