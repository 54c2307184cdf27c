from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import httpx
import jwt

from qelos_integrator_fastapi.testing import FakeQelos, FakeUser, FakeWorkspace

JWT_SECRET = "jwt-secret-of-the-fake-qelos-test-suite"
REFRESH_SECRET = "refresh-secret-of-the-fake-qelos-test-suite"
DAY = 86400


@dataclass
class World:
    fake: FakeQelos
    alice: FakeUser
    bob: FakeUser
    root: FakeUser
    acme: FakeWorkspace
    globex: FakeWorkspace


def make_world(**options: Any) -> World:
    options.setdefault("website_urls", ["https://app.example.com"])
    fake = FakeQelos(jwt_secret=JWT_SECRET, refresh_token_secret=REFRESH_SECRET, **options)
    alice = fake.add_user(
        "alice", "alice-pass", "alice@example.com", first_name="Alice", last_name="Liddell", phone="+100"
    )
    bob = fake.add_user("bob", "bob-pass", "bob@example.com", first_name="Bob", last_name="Builder")
    root = fake.add_user("root", "root-pass", "root@example.com", first_name="Root", roles=["user", "admin"])
    acme = fake.add_workspace("Acme & Co", members={alice: ["admin", "user"], bob: ["user"]}, labels=["retail"])
    globex = fake.add_workspace("Globex", members={alice: ["user"]}, logo="https://img.test/globex.png")
    fake.add_blueprint(
        "products",
        properties={"name": {"type": "string", "required": True}, "price": "number", "active": "boolean"},
        permission_scope="workspace",
    )
    return World(fake, alice, bob, root, acme, globex)


def client(fake: FakeQelos, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=fake.transport, base_url=fake.url, headers=headers)


def bearer(token: str) -> Dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def session(fake: FakeQelos, value: str) -> Dict[str, str]:
    return {"cookie": f"{fake.session_cookie_name}={value}"}


def claims(token: str, secret: str = JWT_SECRET) -> Dict[str, Any]:
    decoded: Dict[str, Any] = jwt.decode(
        token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    return decoded


def set_cookies(response: httpx.Response) -> List[str]:
    return response.headers.get_list("set-cookie")


def cookie_value(response: httpx.Response, name: str) -> Optional[str]:
    for header in set_cookies(response):
        cookie_name, _, rest = header.partition("=")
        if cookie_name == name:
            return rest.split(";", 1)[0]
    return None


async def oauth_signin(http: httpx.AsyncClient, username: str, password: str, **extra: Any) -> Dict[str, Any]:
    response = await http.post(
        "/api/signin", json={"username": username, "password": password, "authType": "oauth", **extra}
    )
    assert response.status_code == 200, response.text
    payload: Dict[str, Any] = response.json()["payload"]
    return payload
