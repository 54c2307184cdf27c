from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Awaitable, Callable, Dict, List, Optional

import httpx
from fastapi import Depends, FastAPI
from starlette.requests import Request

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, QelosRequestContext, get_qelos
from qelos_integrator_fastapi.testing import FakeQelos, FakeUser, FakeWorkspace


@dataclass
class World:
    fake: FakeQelos
    alice: FakeUser
    bob: FakeUser
    acme: FakeWorkspace
    globex: FakeWorkspace


def make_world(url: str = "https://qelos.test") -> World:
    fake = FakeQelos(url=url)
    alice = fake.add_user(
        username="alice",
        password="alice-pass",
        email="alice@example.com",
        first_name="Alice",
        last_name="Liddell",
        roles=["user", "admin"],
    )
    bob = fake.add_user(
        username="bob", password="bob-pass", email="bob@example.com", first_name="Bob", last_name="Builder"
    )
    acme = fake.add_workspace("Acme", members={alice: ["admin", "user"], bob: ["user"]})
    globex = fake.add_workspace("Globex", members={alice: ["user"]})
    fake.add_blueprint(
        "products", properties={"name": "string", "price": "number", "status": "string"}, permission_scope="workspace"
    )
    return World(fake, alice, bob, acme, globex)


def config_for(fake: FakeQelos, **options: Any) -> QelosConfig:
    options.setdefault("transport", fake.transport)
    return QelosConfig(app_url=fake.url, **options)


Rewrite = Callable[[httpx.Request, httpx.Response], Awaitable[httpx.Response]]


class Rewriting(httpx.AsyncBaseTransport):
    """FakeQelos with every answer passed through ``rewrite``: what a real Qelos or a proxy may send, the fake never."""

    def __init__(self, fake: FakeQelos, rewrite: Rewrite) -> None:
        self._inner = fake.transport
        self._rewrite = rewrite
        # Every request sent, wherever it was going (FakeQelos refuses other hosts).
        self.sent: List[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return await self._rewrite(request, await self._inner.handle_async_request(request))


async def with_set_cookies(response: httpx.Response, *set_cookies: str) -> httpx.Response:
    """The same answer with more Set-Cookie headers."""
    headers = [*response.headers.multi_items(), *(("set-cookie", value) for value in set_cookies)]
    return httpx.Response(response.status_code, headers=headers, content=await response.aread())


def fastapi_app(config: QelosConfig, **middleware_options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config, **middleware_options)

    @app.get("/me")
    async def me(qelos: Annotated[Optional[QelosRequestContext], Depends(get_qelos)]) -> Dict[str, Any]:
        return {
            "user": qelos.user if qelos else None,
            "workspace": qelos.workspace if qelos else None,
            "workspaces": [w["_id"] for w in qelos.workspaces] if qelos else None,
            "error": qelos.error if qelos else None,
            "mode": qelos.mode.value if qelos else None,
        }

    @app.get("/whoami")
    async def whoami(request: Request) -> Dict[str, Any]:
        return {
            "authenticated": request.user.is_authenticated,
            "name": request.user.display_name,
            "scopes": list(request.auth.scopes),
        }

    return app


def find_middleware(app: Any) -> QelosIntegratorMiddleware:
    layer = app.middleware_stack
    while not isinstance(layer, QelosIntegratorMiddleware):
        layer = layer.app
    return layer


def client(app: Any, base_url: str = "http://app.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


def set_cookie_headers(response: httpx.Response) -> List[str]:
    return response.headers.get_list("set-cookie")


def cookie_names(response: httpx.Response) -> List[str]:
    return [header.split("=", 1)[0] for header in set_cookie_headers(response)]


def cookie_header(**cookies: str) -> Dict[str, str]:
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
