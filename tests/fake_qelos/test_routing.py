from __future__ import annotations

from typing import List

import httpx
import pytest
from starlette.types import Message

from qelos_integrator_fastapi.testing import FakeQelos

from ..support import bearer, make_world, upstream

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/nothing"), ("PUT", "/api/signin"), ("GET", "/api/signin"), ("DELETE", "/api/me"), ("GET", "/")],
)
async def test_unknown_routes_and_wrong_methods_are_json_404s(method: str, path: str) -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.request(method, path)

    assert response.status_code == 404
    assert response.json() == {"message": f"Cannot {method} {path}"}


@pytest.mark.parametrize("path", ["/api/signin", "/api/signup", "/api/me", "/api/workspaces"])
@pytest.mark.parametrize("body", [b'{"username": ', b'"alice"', b"42"])
async def test_malformed_json_is_a_400_message(path: str, body: bytes) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        response = await http.post(
            path, content=body, headers={"content-type": "application/json", **bearer(pair.access_token)}
        )

    assert response.status_code == 400
    assert response.json() == {"message": "invalid JSON body"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"[1, 2]", "application/json"), (b"", "application/json"), (b"username=alice", "text/plain")],
)
async def test_non_object_bodies_count_as_missing_fields(body: bytes, content_type: str) -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        signin = await http.post("/api/signin", content=body, headers={"content-type": content_type})
        signup = await http.post("/api/signup", content=body, headers={"content-type": content_type})

    assert signin.status_code == 401
    assert signin.json() == {"errors": {"password": {"code": "EMPTY_PASSWORD"}}}
    assert signup.status_code == 200
    assert set(signup.json()["errors"]) == {"email", "firstName", "password"}


async def test_v1_prefix_trailing_slash_and_version_header() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        prefixed = await http.get("/api/v1/me", headers=bearer(pair.access_token))
        trailing = await http.get("/api/me/", headers=bearer(pair.access_token))
        bad_version = await http.get("/api/me", headers={"accept-version": "1.0", **bearer(pair.access_token)})

    assert prefixed.json()["username"] == "alice"
    assert prefixed.headers["x-api-version"] == "v1"
    assert trailing.status_code == 200
    assert (bad_version.status_code, bad_version.json()) == (400, {"message": "Invalid Accept-Version header"})


async def test_lifespan_and_websocket_scopes() -> None:
    world = make_world()
    sent: List[Message] = []
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> Message:
        return next(events)

    async def send(message: Message) -> None:
        sent.append(message)

    await world.fake({"type": "lifespan"}, receive, send)
    await world.fake({"type": "websocket", "path": "/"}, receive, send)

    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete", "websocket.close"]


@pytest.mark.anyio
async def test_the_in_process_transport_answers_only_at_the_fakes_origin() -> None:
    fake = FakeQelos(url="http://qelos.test")
    async with httpx.AsyncClient(transport=fake.transport) as http:
        assert (await http.get("http://qelos.test/api/me")).status_code == 401
        for wrong in ("http://elsewhere.test/api/me", "https://qelos.test/api/me", "http://qelos.test:8080/api/me"):
            with pytest.raises(httpx.ConnectError, match="nothing answers"):
                await http.get(wrong)
