from __future__ import annotations

import httpx
import pytest

from ..support import bearer, make_world, upstream

pytestmark = pytest.mark.anyio


async def test_status_and_body_replace_the_response() -> None:
    world = make_world()
    world.fake.inject("GET /api/me", status=503, body={"message": "down"})
    world.fake.inject("/api/workspaces", status=500, body="<html>oops</html>")
    world.fake.inject("POST /api/token/refresh", status=401)
    async with upstream(world.fake) as http:
        me = await http.get("/api/me")
        workspaces = await http.post("/api/workspaces")
        refresh = await http.post("/api/token/refresh")

    assert (me.status_code, me.json()) == (503, {"message": "down"})
    assert me.headers["content-type"] == "application/json; charset=utf-8"
    assert (workspaces.status_code, workspaces.text) == (500, "<html>oops</html>")
    assert workspaces.headers["content-type"].startswith("text/plain")
    assert (refresh.status_code, refresh.content) == (401, b"")


async def test_malformed_answers_200_with_broken_json() -> None:
    world = make_world()
    world.fake.inject("/api/me", malformed=True)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    with pytest.raises(ValueError):
        response.json()


async def test_drop_raises_what_httpx_raises_on_a_real_drop() -> None:
    world = make_world()
    world.fake.inject("GET /api/me", drop=True, times=1)
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        with pytest.raises(httpx.RemoteProtocolError, match=r"Server disconnected without sending a response\."):
            await http.get("/api/me", headers=bearer(pair.access_token))
        recovered = await http.get("/api/me", headers=bearer(pair.access_token))

    assert recovered.status_code == 200
    assert [entry.status for entry in world.fake.requests] == [None, 200]


async def test_latency_delays_then_serves_normally() -> None:
    world = make_world()
    world.fake.inject("/api/me", latency=0.01)
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=bearer(pair.access_token))

    assert response.json()["username"] == "alice"


async def test_times_limits_a_fault_and_clear_faults_removes_all() -> None:
    world = make_world()
    world.fake.inject("/api/me", status=502, times=2)
    world.fake.inject("/api/blueprints/*", status=504)
    async with upstream(world.fake) as http:
        statuses = [(await http.get("/api/me")).status_code for _ in range(3)]
        blueprint = await http.get("/api/blueprints/products/entities")
        world.fake.clear_faults()
        after = await http.get("/api/blueprints/products/entities")

    assert statuses == [502, 502, 401]
    assert blueprint.status_code == 504
    assert after.status_code == 403


async def test_faults_do_not_touch_state() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("POST /api/token/refresh", status=500, times=1)
    async with upstream(world.fake) as http:
        failed = await http.post("/api/token/refresh", headers=bearer(pair.refresh_token))
        retried = await http.post("/api/token/refresh", headers=bearer(pair.refresh_token))

    assert (failed.status_code, retried.status_code) == (500, 200)


def test_inject_rejects_nonsense() -> None:
    world = make_world()
    with pytest.raises(ValueError):
        world.fake.inject("api/me", status=500)
    with pytest.raises(ValueError):
        world.fake.inject("/api/me", latency=-1)
    with pytest.raises(ValueError):
        world.fake.inject("/api/me", times=0)
    with pytest.raises(ValueError):
        world.fake.inject("/api/me", drop=True, status=500)


async def test_request_log_and_counters() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake, tenant="0") as http:
        await http.get("/api/me", params={"a": "1"}, headers=bearer(pair.access_token))
        await http.post("/api/me", json={}, headers=bearer(pair.access_token))
        await http.post("/api/token/refresh", headers=bearer(pair.refresh_token))

    first = world.fake.requests[0]
    assert (first.method, first.path, first.query, first.status) == ("GET", "/api/me", "a=1", 200)
    assert first.headers["authorization"] == f"Bearer {pair.access_token}"
    assert first.headers["tenant"] == "0"
    assert world.fake.count("GET /api/me") == 1
    assert world.fake.count("/api/me") == 2
    assert world.fake.count("post /api/token/refresh") == 1
    assert world.fake.count("/api/*") == 3
    world.fake.reset_log()
    assert world.fake.requests == []
    assert world.fake.count("/api/me") == 0
