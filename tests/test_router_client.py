"""The auth router reuses one pooled Qelos client: the middleware's, or one of its own per router."""

from __future__ import annotations

from typing import Any, Iterator, List

import httpx
import pytest
from starlette.applications import Starlette

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, create_qelos_auth_routes
from qelos_integrator_fastapi.testing import FakeQelos

BASE = "https://app.test"

pytestmark = pytest.mark.anyio


@pytest.fixture
def constructed(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[httpx.AsyncClient]]:
    """Every httpx.AsyncClient built while the test runs, test clients excluded."""
    made: List[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def counting(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not isinstance(kwargs.get("transport"), httpx.ASGITransport):
            made.append(self)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
    yield made


def _fake() -> FakeQelos:
    fake = FakeQelos(website_urls=[BASE])
    alice = fake.add_user("alice", "alice-pass", "alice@example.com")
    fake.add_workspace("Acme", members={alice: ["user"]})
    fake.set_social_user(alice)
    return fake


async def _twenty_sign_ins_a_social_login_and_logouts(app: Starlette, fake: FakeQelos) -> None:
    for _ in range(20):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            assert login.status_code == 200, login.text
            assert (await http.post("/auth/logout")).json() == {"signed_out": True, "revoked": True}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        start = await http.get("/auth/github", params={"next": "/home"})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake)) as qelos:
            back = (await qelos.get(start.headers["location"])).headers["location"]
        done = await http.get(back.replace(BASE, ""))
        assert done.status_code == 303, done.text
    assert fake.count("POST /api/signin") == 20
    assert fake.count("POST /api/logout") == 20
    assert fake.count("POST /api/auth/callback") == 1


@pytest.mark.parametrize("with_middleware", [True, False], ids=["middleware", "routes-alone"])
async def test_sign_ins_callbacks_and_logouts_share_one_client(
    constructed: List[httpx.AsyncClient], with_middleware: bool
) -> None:
    fake = _fake()
    config = QelosConfig(app_url=fake.url, transport=fake.transport)
    app = Starlette(routes=create_qelos_auth_routes(config, secret_key="s" * 32))
    if with_middleware:
        app.add_middleware(QelosIntegratorMiddleware, config=config)
    await _twenty_sign_ins_a_social_login_and_logouts(app, fake)
    # The request SDK's per-request client is not involved: the router calls Qelos itself.
    assert len(constructed) <= 1
    for client in constructed:
        await client.aclose()
