"""The test suite's one set of helpers: the world of users and workspaces every test starts from, apps
wired to it, hostile-upstream transports, and small readers of what came back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Awaitable, Callable, Dict, Iterator, List, Optional

import httpx
import jwt
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.requests import Request

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, QelosRequestContext, get_qelos
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


def make_world(url: str = "https://qelos.test", **options: Any) -> World:
    """FakeQelos on ``url`` (https, as Qelos is deployed) with alice (admin of Acme, user of Globex), bob (user
    of Acme), root (a Qelos admin in no workspace) and a workspace-scoped ``products`` blueprint."""
    options.setdefault("website_urls", ["https://app.example.com"])
    fake = FakeQelos(url=url, jwt_secret=JWT_SECRET, refresh_token_secret=REFRESH_SECRET, **options)
    alice = fake.add_user(
        "alice",
        "alice-pass",
        "alice@example.com",
        first_name="Alice",
        last_name="Liddell",
        phone="+100",
    )
    bob = fake.add_user("bob", "bob-pass", "bob@example.com", first_name="Bob", last_name="Builder")
    root = fake.add_user("root", "root-pass", "root@example.com", first_name="Root", roles=["user", "admin"])
    acme = fake.add_workspace("Acme & Co", members={alice: ["admin", "user"], bob: ["user"]}, labels=["retail"])
    globex = fake.add_workspace("Globex", members={alice: ["user"]}, logo="https://img.test/globex.png")
    fake.add_blueprint(
        "products",
        properties={
            "name": {"type": "string", "required": True},
            "price": "number",
            "active": "boolean",
            "status": "string",
        },
        permission_scope="workspace",
    )
    return World(fake, alice, bob, root, acme, globex)


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


def upstream(fake: FakeQelos, **headers: str) -> httpx.AsyncClient:
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


def cookie_value(response: httpx.Response, name: str) -> Optional[str]:
    for header in set_cookie_headers(response):
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


class RedisServer:
    """A real redis-server on a loopback port, persistence off; ``kill`` and ``start`` again keep the port."""

    def __init__(self, executable: str, port: int) -> None:
        self.executable = executable
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: Optional[subprocess.Popen[bytes]] = None

    def start(self) -> None:
        argv = [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.command("PING") != "+PONG":
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def command(self, *words: str) -> str:
        """One command in Redis's inline protocol; its first reply line, or "" when nothing listens."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall((" ".join(words) + "\r\n").encode())
                return sock.makefile("rb").readline().decode().strip()
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def redis_executable() -> str:
    """redis-server's path: required in CI, where .ci/run installs it; locally its absence skips the test."""
    found = shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(path)), None
    )
    if found is None:
        reason = "no redis-server on this machine (apt-get install -y redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the Redis tests", pytrace=False)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_listener() -> socket.socket:
    """A socket bound to a free loopback port, so a server's URL is known before the server is built."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextmanager
def served_on_loopback(listener: socket.socket, config: uvicorn.Config) -> Iterator[threading.Thread]:
    """uvicorn serving ``config`` on ``listener`` in a thread of this process, until the block ends."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
