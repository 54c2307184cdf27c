"""No request leaves cyclic garbage behind: everything it allocates is freed by reference counting, so
no request's scope waits for the cyclic collector, and no collector pass over the heap lands in p99."""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import httpx
import pytest
from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Message

from ..support import bearer, config_for, fastapi_app, make_world, upstream

pytestmark = pytest.mark.anyio

REQUESTS = 1000


class Canned(httpx.AsyncBaseTransport):
    """Qelos's recorded answers, served without an ASGI app between: the fake's own garbage is not ours."""

    def __init__(self, answers: Dict[str, bytes]) -> None:
        self._answers = answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=self._answers[request.url.path], headers={"content-type": "application/json"}
        )


async def call(app: ASGIApp, path: str, headers: List[Tuple[bytes, bytes]]) -> int:
    # Raw ASGI, no HTTP client: a client's own garbage would hide the app's.
    scope: Dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.example.com"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("app.example.com", 443),
    }
    sent: List[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status: int = sent[0]["status"]
    return status


async def garbage_of(app: ASGIApp, path: str, headers: List[Tuple[bytes, bytes]]) -> Tuple[int, Counter[str]]:
    """Objects the cyclic collector finds after REQUESTS requests with the collector off (and their types)."""
    for _ in range(20):  # warm-up: the middleware stack, the SDK prototype, first-use caches
        assert await call(app, path, headers) == 200
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(REQUESTS):
            await call(app, path, headers)
        found = gc.collect()
        kinds = Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return found, kinds


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/me")
    async def me() -> Dict[str, Any]:
        return {"user": None, "workspace": None, "workspaces": None, "error": None, "mode": None}

    return app


def with_sdk_route(app: FastAPI) -> FastAPI:
    @app.get("/sdk")
    async def sdk(request: Request) -> Dict[str, Optional[str]]:
        entities = request.state.qelos.sdk.entities("products")
        return {"blueprint": entities._blueprint_key}

    return app


@pytest.mark.parametrize(
    ("path", "credential", "options"),
    [
        ("/me", False, {}),
        ("/me", True, {"identity_cache_ttl": 60}),
        ("/sdk", True, {"identity_cache_ttl": 60}),
        ("/sdk", False, {}),
        ("/me", True, {}),
    ],
    ids=["anonymous", "cache-hit", "cache-hit-sdk-touch", "anonymous-sdk-touch", "uncached"],
)
async def test_a_thousand_requests_leave_no_cyclic_garbage(
    path: str, credential: bool, options: Dict[str, Any]
) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with upstream(world.fake, **bearer(pair.access_token)) as qelos:
        answers = {endpoint: (await qelos.get(endpoint)).content for endpoint in ("/api/me", "/api/workspaces")}
    app = with_sdk_route(fastapi_app(config_for(world.fake, transport=Canned(answers), **options)))
    headers = [(b"authorization", f"Bearer {pair.access_token}".encode())] if credential else []

    baseline, _ = await garbage_of(with_sdk_route(bare_app()), "/me", headers)
    found, kinds = await garbage_of(app, path, headers)

    assert baseline == 0
    assert found == 0, kinds.most_common(12)
