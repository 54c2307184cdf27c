"""The real qelos-sdk 4.0.0 against FakeQelos served by uvicorn on a loopback port."""

from __future__ import annotations

from typing import Any, Iterator, List

import httpx
import pytest
import uvicorn
from qelos_sdk import BaseSDK, QelosSDK, QelosSDKOptions

from qelos_integrator_fastapi.testing import FakeQelos

from ..support import loopback_listener, served_on_loopback

pytestmark = pytest.mark.anyio


@pytest.fixture
def fake() -> Iterator[FakeQelos]:
    listener = loopback_listener()
    port = listener.getsockname()[1]
    served = FakeQelos.demo(url=f"http://127.0.0.1:{port}")
    with served_on_loopback(listener, uvicorn.Config(served, log_level="warning", lifespan="on")):
        yield served


async def _close(sdk: QelosSDK) -> None:
    """Close every module's httpx client: QelosSDK.close() closes only its own (1 of 16+)."""
    clients: List[httpx.AsyncClient] = []
    pending: List[Any] = [sdk]
    seen = set()
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, BaseSDK):
            clients.append(item._client)
            pending.extend(vars(item).values())
        elif isinstance(item, dict):
            pending.extend(item.values())
    for client in clients:
        await client.aclose()


async def test_oauth_signin_me_workspaces_entity_crud_and_refresh(fake: FakeQelos) -> None:
    # One SDK for the whole story: each QelosSDK builds 16 httpx clients, which is slow.
    sdk = QelosSDK(QelosSDKOptions(app_url=fake.url, force_refresh=True))
    try:
        signin = await sdk.authentication.oauth_signin({"username": "alice", "password": "alice-pass"})
        me = await sdk.authentication.get_logged_in_user()
        workspaces = await sdk.workspaces.get_list()
        products = sdk.entities("products")
        created = await products.create({"name": "Sprocket", "price": 3, "active": True})
        found = await products.get_list({"name": "Sprocket"})
        updated = await products.update(created["identifier"], {"price": 4})
        removed = await products.remove(created["identifier"])
        remaining = await products.get_list()
        fake.clock.advance(18000)
        fake.reset_log()
        me_after_expiry = await sdk.authentication.get_logged_in_user()
    finally:
        await _close(sdk)

    assert signin["payload"]["user"]["username"] == "alice"
    assert me["username"] == "alice"
    assert me["workspace"]["name"] == "Acme"
    assert [w["name"] for w in workspaces] == ["Acme", "Globex Corporation"]
    assert created["name"] == "Sprocket"
    assert created["id"] == created["identifier"]
    assert [p["identifier"] for p in found] == [created["identifier"]]
    assert updated["price"] == 4
    assert removed.status_code == 200
    assert [p["name"] for p in remaining] == ["Anvil", "Rocket skates", "Giant magnet"]
    assert me_after_expiry["workspace"] == {"_id": me["workspace"]["_id"], "name": ""}
    assert [(entry.path, entry.status) for entry in fake.requests] == [
        ("/api/me", 401),
        ("/api/token/refresh", 200),
        ("/api/me", 200),
    ]


async def test_sdk_with_an_api_token(fake: FakeQelos) -> None:
    key = fake.add_api_token(fake.user("bob"), workspace=fake.workspace("Acme"))
    sdk = QelosSDK(QelosSDKOptions(app_url=fake.url, api_token=key))
    try:
        me = await sdk.authentication.get_logged_in_user()
    finally:
        await _close(sdk)

    assert me["username"] == "bob"
    assert me["workspace"]["roles"] == ["user"]
    assert fake.requests[-1].headers["x-api-key"] == key


async def test_a_dropped_connection_over_a_real_socket(fake: FakeQelos) -> None:
    fake.inject("GET /api/me", drop=True, times=1)
    async with httpx.AsyncClient(base_url=fake.url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match=r"Server disconnected without sending a response\."):
            await http.get("/api/me")
        after = await http.get("/api/me")

    assert after.status_code == 401


async def test_a_signin_qelos_never_answers_drops_the_socket(fake: FakeQelos) -> None:
    body = {"username": "bob", "password": "bob-pass", "authType": "magic"}
    async with httpx.AsyncClient(base_url=fake.url) as http:
        with pytest.raises(httpx.RemoteProtocolError, match=r"Server disconnected without sending a response\."):
            await http.post("/api/signin", json=body)
        after = await http.post("/api/signin", json={**body, "authType": "oauth"})

    assert after.status_code == 200
