"""Against a real TLS Qelos on loopback, every upstream request carries only its own caller's credential.

Qelos sets its session cookie with ``Domain``, ``Secure`` and ``SameSite=None`` and ranks it above a
Bearer token (x-api-key > cookie > Bearer). A client that kept cookies would therefore serve a
Bearer caller as whichever session-cookie caller came before: only over https, where ``Secure``
cookies travel, which is why this test serves FakeQelos over TLS instead of http.
"""

from __future__ import annotations

import contextlib
import random
import ssl
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, AsyncIterator, Dict, Iterator, List, Tuple

import anyio
import httpx
import jwt
import pytest
import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware
from qelos_integrator_fastapi._pool import QelosPool
from qelos_integrator_fastapi.testing import FakeQelos, FakeUser

from ..support import cookie_header, loopback_listener, served_on_loopback

pytestmark = pytest.mark.anyio

QELOS_HOST = "qelos.test"


class _Loopback(httpx.AsyncBaseTransport):
    """Dials 127.0.0.1 for qelos.test (there is no DNS here), keeping the Host header and the TLS SNI."""

    def __init__(self, port: int, ca: trustme.CA) -> None:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        self._port = port
        # The product's own pool (QelosPool over httpcore2), with this test's CA: the stack a deployment uses.
        self._inner = QelosPool(httpx.Limits(max_connections=100, max_keepalive_connections=20), ssl_context=context)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert request.url.host == QELOS_HOST, f"unexpected upstream host {request.url.host}"
        # A new request object: the caller's client must keep seeing the URL it asked for.
        dialled = httpx.Request(
            request.method,
            request.url.copy_with(host="127.0.0.1"),
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": QELOS_HOST},
        )
        return await self._inner.handle_async_request(dialled)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class TlsQelos:
    fake: FakeQelos
    url: str
    port: int
    ca: trustme.CA
    alice: FakeUser
    bob: FakeUser
    carol: FakeUser

    def transport(self) -> httpx.AsyncBaseTransport:
        return _Loopback(self.port, self.ca)


@pytest.fixture(scope="module")
def tls_qelos() -> Iterator[TlsQelos]:
    ca = trustme.CA()
    server_cert = ca.issue_cert(QELOS_HOST)
    listener = loopback_listener()
    port = listener.getsockname()[1]
    url = f"https://{QELOS_HOST}:{port}"
    # cookie_rotation_after=0: every cookie-authenticated call rotates the session cookie, as Qelos
    # does once a cookie is older than its rotation age, so Set-Cookie answers are the norm here.
    fake = FakeQelos(url=url, cookie_rotation_after=0.0)
    alice = fake.add_user("alice", "alice-pass", "alice@example.com", first_name="Alice")
    bob = fake.add_user("bob", "bob-pass", "bob@example.com", first_name="Bob")
    carol = fake.add_user("carol", "carol-pass", "carol@example.com", first_name="Carol")
    fake.add_workspace("Acme", members={alice: ["admin"], bob: ["user"], carol: ["user"]})
    with server_cert.private_key_and_cert_chain_pem.tempfile() as pem:
        config = uvicorn.Config(fake, log_level="warning", lifespan="off", ssl_certfile=pem, ssl_keyfile=pem)
        config.load()
    with served_on_loopback(listener, config):
        yield TlsQelos(fake, url, port, ca, alice, bob, carol)


def _app(config: QelosConfig) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        qelos = request.state.qelos
        sdk_user = await qelos.sdk.authentication.get_logged_in_user() if request.user.is_authenticated else None
        return JSONResponse(
            {
                "user": request.user.display_name if request.user.is_authenticated else None,
                "sdk_user": sdk_user["username"] if isinstance(sdk_user, dict) else None,
            }
        )

    app = Starlette(routes=[Route("/whoami", whoami)])
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    return app


@contextlib.asynccontextmanager
async def calling(world: TlsQelos, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An app over the TLS Qelos, and callers that each send only their own credentials."""
    transport = world.transport()
    app = _app(QelosConfig(app_url=world.url, transport=transport, **options))
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # the callers keep no cookies either
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://app.test", cookies=jar
        ) as http:
            yield http
    finally:
        await transport.aclose()


def _credentials(world: TlsQelos) -> Dict[str, Tuple[str, Dict[str, str]]]:
    """Who calls with what: alice by session cookie, bob by Bearer token, carol by access-token cookie."""
    fake = world.fake
    return {
        "alice": ("Alice", cookie_header(**{fake.session_cookie_name: fake.issue_session_cookie(world.alice)})),
        "bob": ("Bob", {"authorization": f"Bearer {fake.issue_tokens(world.bob).access_token}"}),
        "carol": ("Carol", cookie_header(q_access_token=fake.issue_tokens(world.carol).access_token)),
    }


def _cookies_not_given(world: TlsQelos) -> List[str]:
    """Upstream requests that carried a cookie their caller did not send.

    Only alice sends a cookie (her session, which Qelos rotates and the middleware then forwards in
    its new form), so a cookie is misplaced when it is not alice's own session cookie alone, or when
    it travels beside a Bearer token or an API key (a request can carry only its caller's credential).
    """
    misplaced = []
    for entry in world.fake.requests:
        cookie = entry.headers.get("cookie")
        if cookie is None:
            continue
        name, _, value = cookie.partition("=")
        owner = jwt.decode(value, options={"verify_signature": False}).get("sub") if name == "qlt_0" else None
        others = {"authorization", "x-api-key"} & set(entry.headers)
        if owner != world.alice.id or ";" in value or others:
            misplaced.append(f"{entry.method} {entry.path} cookie={name} owner={owner} with={sorted(others)}")
    return misplaced


@pytest.mark.parametrize("cache_ttl", [0.0, 60.0], ids=["no-cache", "identity-cache"])
async def test_each_caller_resolves_as_itself_in_sequence(tls_qelos: TlsQelos, cache_ttl: float) -> None:
    # Fails before the fix: bob's Bearer request carried alice's rotated cookie from the shared
    # client's jar, and Qelos, ranking the cookie first, answered as alice.
    world = tls_qelos
    callers = _credentials(world)
    world.fake.reset_log()
    async with calling(world, identity_cache_ttl=cache_ttl) as http:
        for name in ("alice", "bob", "carol", "alice", "bob"):
            expected, headers = callers[name]
            reply = await http.get("/whoami", headers=headers)
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"user": expected, "sdk_user": name}

    token = world.fake.add_api_token(world.carol)
    async with calling(world, api_token=token) as http:
        for _ in range(2):
            reply = await http.get("/whoami", headers=callers["alice"][1])
            assert reply.json() == {"user": "Carol", "sdk_user": "carol"}

    assert world.fake.requests, "nothing reached the TLS Qelos"
    assert _cookies_not_given(world) == []
    api_token_calls = [entry for entry in world.fake.requests if "x-api-key" in entry.headers]
    assert api_token_calls and all("cookie" not in entry.headers for entry in api_token_calls)


@pytest.mark.parametrize("cache_ttl", [0.0, 60.0], ids=["no-cache", "identity-cache"])
async def test_two_hundred_interleaved_callers_of_three_users(tls_qelos: TlsQelos, cache_ttl: float) -> None:
    world = tls_qelos
    callers = _credentials(world)
    order = [name for name in callers for _ in range(67)][:200]
    random.Random(16).shuffle(order)
    results: List[Tuple[str, Any]] = []
    world.fake.reset_log()
    # At most 20 in flight, so most requests start after earlier answers (and rotated cookies) came back.
    in_flight = anyio.CapacityLimiter(20)
    async with calling(world, identity_cache_ttl=cache_ttl, max_connections=8) as http:

        async def call(name: str) -> None:
            async with in_flight:
                reply = await http.get("/whoami", headers=callers[name][1])
            results.append((name, reply.json()))

        async with anyio.create_task_group() as group:
            for name in order:
                group.start_soon(call, name)

    wrong = [(name, body) for name, body in results if body != {"user": callers[name][0], "sdk_user": name}]
    assert len(results) == 200
    assert wrong == []
    assert _cookies_not_given(world) == []
