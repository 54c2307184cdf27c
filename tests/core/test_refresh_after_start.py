"""Once the response has started, the request SDK never refreshes: the new pair could not reach the browser."""

from __future__ import annotations

import json
from typing import AsyncIterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from qelos_sdk import QelosAPIError

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import client, config_for, cookie_header, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


async def test_an_sdk_call_after_the_first_chunk_gets_the_401_and_the_refresh_token_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/stream")
    async def stream(request: Request) -> StreamingResponse:
        qelos = request.state.qelos

        async def chunks() -> AsyncIterator[str]:
            yield "first\n"
            world.fake.clock.advance(ACCESS_TTL + 1)  # the access token expires mid-stream
            try:
                listed = await qelos.sdk.workspaces.get_list()
            except QelosAPIError as exc:
                yield json.dumps({"error": str(exc), "details": exc.details}) + "\n"
            else:
                yield json.dumps({"listed": len(listed)}) + "\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    caplog.set_level("INFO", logger="qelos_integrator_fastapi")
    async with client(app) as http:
        response = await http.get("/stream", headers=headers)
        first, second = response.text.splitlines()
        assert first == "first"
        failure = json.loads(second)
        assert "details" in failure, failure
        assert failure["details"]["code"] == "REFRESH_AFTER_RESPONSE_STARTED"
        assert "after the response had started" in failure["error"]
        assert world.fake.count("POST /api/token/refresh") == 0
        assert set_cookie_headers(response) == []
        assert (
            "Qelos rejected the access token of an SDK call made after the response started; not refreshing, so "
            "the browser keeps a refresh token that works (REFRESH_AFTER_RESPONSE_STARTED)"
        ) in caplog.messages
        assert pair.refresh_token not in caplog.text

        # The browser's next request (any worker) still refreshes with the token it kept.
        http.cookies.clear()
        after = await http.get("/stream", headers=headers)
    assert after.text.startswith("first\n")
    assert world.fake.count("POST /api/token/refresh") == 1
    assert sorted(h.split("=", 1)[0] for h in set_cookie_headers(after)) == ["q_access_token", "q_refresh_token"]


async def test_before_the_response_starts_the_sdk_still_refreshes() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/list")
    async def listing(request: Request) -> int:
        world.fake.clock.advance(ACCESS_TTL + 1)
        return len(await request.state.qelos.sdk.workspaces.get_list())

    headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    async with client(app) as http:
        response = await http.get("/list", headers=headers)
    assert response.json() == 2
    assert world.fake.count("POST /api/token/refresh") == 1
