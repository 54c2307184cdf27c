"""request.user, request.auth and request.state.qelos are one object's views: they never disagree."""

from __future__ import annotations

from typing import Any, Dict, List

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import World, config_for, cookie_header, make_world


def _seen(user: Any, scopes: List[str], qelos: Any) -> Dict[str, Any]:
    return {
        "user_workspace": user.workspace["name"],
        "user_workspace_roles": sorted(user.workspace_roles),
        "scopes": sorted(s for s in scopes if s.startswith("workspace")),
        "context_workspace": qelos.workspace["name"],
    }


def _app(world: World) -> Starlette:
    async def switch(request: Request) -> JSONResponse:
        before = _seen(request.user, request.auth.scopes, request.state.qelos)
        await request.state.qelos.activate_workspace(world.globex.id)
        after = _seen(request.user, request.auth.scopes, request.state.qelos)
        return JSONResponse({"before": before, "after": after})

    async def switch_ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.state.qelos.activate_workspace(world.globex.id)
        await websocket.send_json(_seen(websocket.user, websocket.auth.scopes, websocket.state.qelos))
        await websocket.close()

    app = Starlette(routes=[Route("/switch", switch, methods=["POST"]), WebSocketRoute("/ws", switch_ws)])
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))
    return app


ACME = {
    "user_workspace": "Acme & Co",
    "user_workspace_roles": ["admin", "user"],
    "scopes": ["workspace", "workspace:admin", "workspace:user"],
    "context_workspace": "Acme & Co",
}
GLOBEX = {
    "user_workspace": "Globex",
    "user_workspace_roles": ["user"],
    "scopes": ["workspace", "workspace:user"],
    "context_workspace": "Globex",
}


@pytest.mark.anyio
async def test_activate_workspace_moves_user_scopes_and_context_together() -> None:
    world = make_world()
    session = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    app = _app(world)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://app.test") as http:
        reply = await http.post("/switch", headers=cookie_header(qlt_0=session))
    assert reply.json() == {"before": ACME, "after": GLOBEX}


def test_activate_workspace_on_a_websocket_moves_them_together() -> None:
    world = make_world()
    session = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    with (
        TestClient(_app(world), base_url="https://app.test") as client,
        client.websocket_connect("/ws", headers=cookie_header(qlt_0=session)) as ws,
    ):
        assert ws.receive_json() == GLOBEX
