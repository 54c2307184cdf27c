"""get_qelos / require_user: OpenAPI security, documented errors, overrides, and unchanged behaviour."""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosIntegratorMiddleware,
    QelosRequestContext,
    get_qelos,
    require_user,
)
from qelos_integrator_fastapi._dependencies import QELOS_AUTH_RESPONSES, OptionalQelosContext, QelosContext
from qelos_integrator_fastapi.testing import FakeQelos

# The 503 body of the product: {"code", "message"} (errors.refusal).
UNAVAILABLE = {
    "code": "QELOS_UNAVAILABLE",
    "message": "Qelos could not be asked who is calling (unreachable, slow or an unusable answer); retry shortly",
}


def build_app(fake: FakeQelos) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=QelosConfig(app_url=fake.url, transport=fake.transport))

    @app.get("/private", responses=QELOS_AUTH_RESPONSES)
    async def private(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> Dict[str, Any]:
        return {"user": qelos.user["username"] if qelos.user else None}

    @app.get("/typed")
    async def typed(qelos: QelosContext) -> Dict[str, Any]:
        return {"user": qelos.user["username"] if qelos.user else None}

    @app.get("/public")
    async def public(qelos: OptionalQelosContext) -> Dict[str, Any]:
        return {"user": qelos.user["username"] if qelos and qelos.user else None}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, qelos: QelosContext) -> None:
        await websocket.accept()
        await websocket.send_json({"user": qelos.user["username"] if qelos.user else None})
        await websocket.close()

    return app


@pytest.fixture
def seeded() -> FakeQelos:
    fake = FakeQelos()
    fake.add_user("alice", "alice-pass", "alice@example.com")
    return fake


def test_require_user_routes_show_the_bearer_scheme_and_the_cookie_scheme(seeded: FakeQelos) -> None:
    schema = build_app(seeded).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["QelosBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["QelosBearer"]["description"],
    }
    assert schemes["QelosCookie"]["type"] == "apiKey"
    assert schemes["QelosCookie"]["in"] == "cookie"
    assert schemes["QelosCookie"]["name"] == "q_access_token"
    for path in ("/private", "/typed"):
        assert schema["paths"][path]["get"]["security"] == [{"QelosBearer": []}, {"QelosCookie": []}]
    assert "security" not in schema["paths"]["/public"]["get"]
    # Only the security schemes are added: no parameters leak into the operation.
    assert "parameters" not in schema["paths"]["/private"]["get"]


def test_auth_responses_are_declared(seeded: FakeQelos) -> None:
    responses = build_app(seeded).openapi()["paths"]["/private"]["get"]["responses"]
    assert {"200", "401", "403", "503"} <= set(responses)
    assert "UNAUTHORIZED" in responses["401"]["description"]
    assert "QELOS_UNAVAILABLE" in responses["503"]["description"]


@pytest.mark.anyio
async def test_require_user_behaviour_is_unchanged(seeded: FakeQelos) -> None:
    bob = seeded.add_user("bob", "bob-pass", "bob@example.com")
    token = seeded.issue_tokens(bob).access_token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(seeded)), base_url="http://t") as http:
        anonymous = await http.get("/private")
        assert anonymous.status_code == 401
        assert anonymous.json() == {"detail": {"code": "UNAUTHORIZED"}}
        assert anonymous.headers["www-authenticate"] == "Bearer"
        ok = await http.get("/typed", headers={"Authorization": f"Bearer {token}"})
        assert ok.json() == {"user": "bob"}
        seeded.inject("GET /api/me", status=502)
        down = await http.get("/private", headers={"Authorization": f"Bearer {token}"})
        assert down.status_code == 503
        assert down.json() == {"detail": UNAVAILABLE}


@pytest.mark.anyio
async def test_dependency_overrides_replace_require_user_and_its_schemes(seeded: FakeQelos) -> None:
    app = build_app(seeded)
    pinned = QelosRequestContext(user={"_id": "u1", "username": "pinned"})
    app.dependency_overrides[require_user] = lambda: pinned
    app.dependency_overrides[get_qelos] = lambda: pinned
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        for path in ("/private", "/typed", "/public"):
            assert (await http.get(path)).json() == {"user": "pinned"}
    assert seeded.count("GET /api/me") == 0


def test_websocket_without_user_closes_1008(seeded: FakeQelos) -> None:
    user = seeded.add_user("carol", "carol-pass", "carol@example.com")
    with TestClient(build_app(seeded)) as client:
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws") as ws:
            ws.receive_json()
        assert closed.value.code == 1008
        headers = {"Authorization": f"Bearer {seeded.issue_tokens(user).access_token}"}
        with client.websocket_connect("/ws", headers=headers) as ws:
            assert ws.receive_json() == {"user": "carol"}


def test_require_user_without_middleware_says_what_to_do() -> None:
    app = FastAPI()

    @app.get("/private")
    async def private(qelos: QelosContext) -> Optional[Dict[str, Any]]:
        return qelos.user

    with TestClient(app, raise_server_exceptions=True) as client, pytest.raises(RuntimeError, match="add_middleware"):
        client.get("/private")


@pytest.mark.anyio
async def test_the_dependencies_run_on_the_event_loop_not_in_a_worker_thread(
    seeded: FakeQelos, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastapi.dependencies.utils as fastapi_dependencies

    hops: list[Any] = []
    run_in_threadpool = fastapi_dependencies.run_in_threadpool  # type: ignore[attr-defined]

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_in_threadpool(func, *args, **kwargs)

    monkeypatch.setattr(fastapi_dependencies, "run_in_threadpool", counted)
    token = seeded.issue_tokens(seeded.user("alice")).access_token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(seeded)), base_url="http://t") as http:
        for path in ("/private", "/typed", "/public"):
            assert (await http.get(path, headers={"Authorization": f"Bearer {token}"})).json() == {"user": "alice"}
        assert (await http.get("/public")).json() == {"user": None}
    assert hops == []
