"""The /api/** proxy through real apps against FakeQelos: credentials, cookies, paths, faults, streaming."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import anyio
import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosConfigError,
    create_qelos_proxy_router,
    create_qelos_proxy_routes,
)
from qelos_integrator_fastapi.testing import FakeClock, FakeQelos

from .core.test_garbage import Canned, garbage_of
from .support import (
    Rewriting,
    World,
    bearer,
    client,
    config_for,
    cookie_header,
    fastapi_app,
    find_middleware,
    make_world,
    session,
    set_cookie_headers,
)

pytestmark = pytest.mark.anyio

ENTITIES = "/api/blueprints/products/entities"
SAME_ORIGIN = {"origin": "http://app.test"}


def proxied_app(config: QelosConfig, **middleware_options: Any) -> FastAPI:
    app = fastapi_app(config, **middleware_options)
    app.include_router(create_qelos_proxy_router(config))
    return app


def bare_proxy(config: QelosConfig, **options: Any) -> Starlette:
    """The proxy routes on a plain Starlette app, with no middleware in front."""
    return Starlette(routes=create_qelos_proxy_routes(config, **options))


def logged(fake: FakeQelos, path_prefix: str = "/api/blueprints") -> List[Dict[str, str]]:
    return [entry.headers for entry in fake.requests if entry.path.startswith(path_prefix)]


@pytest.fixture
def world() -> World:
    return make_world()


async def test_entity_crud_with_a_bearer_sends_only_that_bearer_and_the_tenant(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    headers = {**bearer(pair.access_token), **cookie_header(app_session="app-secret", theme="dark")}
    async with client(proxied_app(config_for(world.fake))) as http:
        created = await http.post(ENTITIES, json={"name": "Chair", "price": 30}, headers=headers)
        assert created.status_code == 200, created.text
        identifier = created.json()["identifier"]
        listed = await http.get(ENTITIES, headers=headers)
        assert [e["identifier"] for e in listed.json()] == [identifier]
        updated = await http.put(f"{ENTITIES}/{identifier}", json={"name": "Chair", "price": 35}, headers=headers)
        assert updated.json()["metadata"]["price"] == 35
        assert (await http.delete(f"{ENTITIES}/{identifier}", headers=headers)).status_code == 200
        assert (await http.get(f"{ENTITIES}/{identifier}", headers=headers)).status_code == 404
    assert world.fake.entities("products") == []
    sent = logged(world.fake)
    assert len(sent) == 5
    for headers_sent in sent:
        assert headers_sent["authorization"] == f"Bearer {pair.access_token}"
        assert headers_sent["tenant"] == "0"
        assert headers_sent["host"] == "qelos.test"
        # The app's own cookies never reach Qelos.
        assert "cookie" not in headers_sent


async def test_entity_crud_with_a_session_cookie_sends_only_that_cookie(world: World) -> None:
    value = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    cookies = cookie_header(app_session="app-secret", **{world.fake.session_cookie_name: value}, theme="dark")
    async with client(proxied_app(config_for(world.fake))) as http:
        created = await http.post(ENTITIES, json={"name": "Desk"}, headers={**cookies, **SAME_ORIGIN})
        assert created.status_code == 200, created.text
        identifier = created.json()["identifier"]
        fetched = await http.get(f"{ENTITIES}/{identifier}", headers=cookies)
        assert fetched.json()["metadata"]["name"] == "Desk"
        assert (await http.delete(f"{ENTITIES}/{identifier}", headers={**cookies, **SAME_ORIGIN})).status_code == 200
    for headers_sent in logged(world.fake):
        assert headers_sent["cookie"] == f"{world.fake.session_cookie_name}={value}"
        assert "authorization" not in headers_sent


async def test_a_cross_site_cookie_post_is_refused_before_it_reaches_qelos(world: World) -> None:
    value = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.post(
            ENTITIES, json={"name": "x"}, headers={**session(world.fake, value), "origin": "https://evil.test"}
        )
    assert response.status_code == 403
    assert logged(world.fake) == []


async def test_with_a_bearer_and_a_session_cookie_only_the_bearer_goes_upstream(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    value = world.fake.issue_session_cookie(world.bob, workspace=world.acme)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.get(ENTITIES, headers={**bearer(pair.access_token), **session(world.fake, value)})
    assert response.status_code == 200
    [sent] = logged(world.fake)
    assert sent["authorization"] == f"Bearer {pair.access_token}"
    assert "cookie" not in sent


async def test_an_expired_access_token_is_refreshed_before_the_call_and_the_new_one_goes_upstream() -> None:
    # Through Qelos's gateway an expired Bearer on entities is served as anonymous (403), never 401: the
    # proxy reads the token's exp to refresh first. The token is issued 301 minutes ago in real time.
    world = make_world(clock=FakeClock(start=time.time() - 301 * 60))
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(301 * 60)
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.post(ENTITIES, json={"name": "Stool"}, headers={**cookies, **SAME_ORIGIN})
    assert response.status_code == 200, response.text
    new_access = _cookie(response, "q_access_token")
    assert new_access and new_access != pair.access_token
    assert world.fake.count("POST /api/token/refresh") == 1
    assert [h["authorization"] for h in logged(world.fake)] == [f"Bearer {new_access}"]


async def test_a_token_about_to_expire_is_refreshed_first() -> None:
    world = make_world(clock=FakeClock(start=time.time() - 300 * 60 + 5))
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(300 * 60 - 5)
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.get(ENTITIES, headers=cookies)
    assert response.status_code == 200
    assert world.fake.count("POST /api/token/refresh") == 1
    assert [h["authorization"] for h in logged(world.fake)] == [f"Bearer {_cookie(response, 'q_access_token')}"]


async def test_a_401_from_qelos_on_a_bodiless_call_refreshes_and_retries_once(world: World) -> None:
    # FakeQelos's clock runs ahead: the token looks fresh to the app, and Qelos's /api/me refuses it with a 401.
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(301 * 60)
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.get("/api/me", headers=cookies)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "alice"
    new_access = _cookie(response, "q_access_token")
    assert new_access and new_access != pair.access_token
    sent = [entry.headers["authorization"] for entry in world.fake.requests if entry.path == "/api/me"]
    assert sent == [f"Bearer {pair.access_token}", f"Bearer {new_access}"]


async def test_a_body_request_with_only_a_refresh_token_is_refreshed_before_it_is_sent(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    cookies = cookie_header(q_refresh_token=pair.refresh_token)
    async with client(proxied_app(config_for(world.fake))) as http:
        response = await http.post(ENTITIES, json={"name": "Lamp"}, headers={**cookies, **SAME_ORIGIN})
    assert response.status_code == 200, response.text
    new_access = _cookie(response, "q_access_token")
    [sent] = logged(world.fake)
    assert sent["authorization"] == f"Bearer {new_access}"


async def test_the_middleware_does_not_ask_qelos_who_is_calling_on_proxied_paths(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(proxied_app(config_for(world.fake))) as http:
        assert (await http.get(ENTITIES, headers=bearer(pair.access_token))).status_code == 200
        assert world.fake.count("GET /api/me") == 0
        assert (await http.get("/me", headers=bearer(pair.access_token))).json()["user"]["username"] == "alice"
        assert world.fake.count("GET /api/me") == 1


async def test_proxied_calls_share_one_pooled_client(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    config = config_for(world.fake)
    app = proxied_app(config)
    bare = bare_proxy(config)
    async with client(app) as http, client(bare) as bare_http:
        for _ in range(5):
            assert (await http.get(ENTITIES, headers=bearer(pair.access_token))).status_code == 200
            assert (await bare_http.get(ENTITIES, headers=bearer(pair.access_token))).status_code == 200
    assert find_middleware(app).backend.client.clients_opened == 1
    [route] = [r for r in bare.routes if getattr(r, "name", "") == "qelos_proxy"]
    own = route.endpoint.__self__  # type: ignore[attr-defined]
    assert own._own_client.clients_opened == 1
    await own.aclose()


async def test_require_auth_leaves_proxied_paths_to_qelos(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(proxied_app(config_for(world.fake, require_auth=True))) as http:
        anonymous = await http.get(ENTITIES)
        signed_in = await http.get(ENTITIES, headers=bearer(pair.access_token))
        page = await http.get("/me")
    # Qelos answers the anonymous proxied call itself (403 on entities); the app's own pages are gated.
    assert anonymous.status_code == 403 and anonymous.json() == {"message": "not permitted"}
    assert signed_in.status_code == 200
    assert page.status_code == 401


async def test_disable_proxy_resolves_proxied_paths_like_any_other(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(proxied_app(config_for(world.fake, disable_proxy=True))) as http:
        assert (await http.get(ENTITIES, headers=bearer(pair.access_token))).status_code == 200
    assert world.fake.count("GET /api/me") == 1


async def test_without_the_middleware_the_request_s_own_credential_is_forwarded(world: World) -> None:
    value = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    cookies = cookie_header(app_session="app-secret", token=value)
    async with client(bare_proxy(config_for(world.fake))) as http:
        response = await http.get(ENTITIES, headers=cookies)
    assert response.status_code == 200
    # The legacy `token` name goes under this tenant's qlt_ name, the one Qelos's gateway reads for entities.
    [sent] = logged(world.fake)
    assert sent["cookie"] == f"{world.fake.session_cookie_name}={value}"


@pytest.mark.parametrize("mounted", ["middleware", "bare"])
async def test_qelos_session_cookies_are_relayed_once_rewritten_for_the_app(mounted: str) -> None:
    world = make_world(cookie_rotation_after=0.0)
    config = config_for(world.fake)
    app = proxied_app(config) if mounted == "middleware" else bare_proxy(config)
    name = world.fake.session_cookie_name
    for base_url, secure in (("http://app.test", False), ("https://app.test", True)):
        async with client(app, base_url=base_url) as http:
            signin = {"username": "alice", "password": "alice-pass", "authType": "cookie"}
            signed_in = await http.post("/api/signin", json=signin)
            first = _relayed(signed_in, name, secure)
            # Qelos rotates an aged session cookie on the auth calls it answers, /api/me among them.
            me = await http.get("/api/me", headers=cookie_header(**{name: first}))
            assert me.json()["username"] == "alice"
            assert _relayed(me, name, secure) not in (None, first)


def _relayed(response: httpx.Response, name: str, secure: bool) -> str:
    assert response.status_code == 200, response.text
    # Exactly once, host-only, Path=/, SameSite=Lax, HttpOnly, Secure exactly on https.
    [relayed] = [h for h in set_cookie_headers(response) if h.startswith(f"{name}=")]
    attributes = [part.strip().lower() for part in relayed.split(";")[1:]]
    assert not any(a.startswith("domain") for a in attributes)
    assert "path=/" in attributes and "samesite=lax" in attributes and "httponly" in attributes
    assert ("secure" in attributes) is secure
    return relayed.split(";", 1)[0].split("=", 1)[1]


async def test_client_tenant_and_api_key_are_dropped_unless_the_app_opts_in(world: World) -> None:
    token = world.fake.add_api_token(world.alice, nickname="ci", workspace=world.acme)
    spoof = {"tenant": "other", "x-api-key": token}
    async with client(bare_proxy(config_for(world.fake))) as http:
        refused = await http.get(ENTITIES, headers=spoof)
    async with client(bare_proxy(config_for(world.fake), forward_client_api_key=True)) as http:
        allowed = await http.get(ENTITIES, headers=spoof)
    async with client(bare_proxy(config_for(world.fake), forward_client_tenant=True)) as http:
        await http.get(ENTITIES, headers=spoof)
    first, second, third = logged(world.fake)
    assert refused.status_code == 403 and "x-api-key" not in first and first["tenant"] == "0"
    assert allowed.status_code == 200 and second["x-api-key"] == token and second["tenant"] == "0"
    assert third["tenant"] == "other" and "x-api-key" not in third


async def test_the_app_s_own_api_token_never_goes_through_the_proxy(world: World) -> None:
    token = world.fake.add_api_token(world.alice, nickname="service", workspace=world.acme)
    config = config_for(world.fake, api_token=token)
    async with client(proxied_app(config)) as http:
        response = await http.get(ENTITIES)
    # Anonymous, as far as Qelos can tell: its gateway serves entities to nobody in particular with a 403.
    assert response.status_code == 403
    [sent] = logged(world.fake)
    assert "x-api-key" not in sent


async def test_hop_by_hop_headers_are_dropped_both_ways_and_forwarded_headers_set(world: World) -> None:
    async def hop_by_hop_answer(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        extra = [("connection", "x-upstream-private"), ("x-upstream-private", "1"), ("keep-alive", "timeout=5")]
        body = await response.aread()
        return httpx.Response(response.status_code, headers=[*response.headers.multi_items(), *extra], content=body)

    config = config_for(world.fake, transport=Rewriting(world.fake, hop_by_hop_answer))
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    headers = {
        **bearer(pair.access_token),
        "connection": "x-client-private",
        "x-client-private": "1",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "proxy-authorization": "Basic c2VjcmV0",
        "x-forwarded-for": "6.6.6.6",
        "x-forwarded-host": "evil.test",
        "x-custom": "kept",
        "expect": "100-continue",
    }
    async with client(proxied_app(config), base_url="https://app.test") as http:
        response = await http.get(ENTITIES, headers=headers)
    assert response.status_code == 200
    for name in ("x-upstream-private", "keep-alive", "connection"):
        assert name not in response.headers
    [sent] = logged(world.fake)
    for name in ("x-client-private", "keep-alive", "te", "proxy-authorization", "expect"):
        assert name not in sent
    assert sent["x-custom"] == "kept"
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["x-forwarded-host"] == "app.test"
    assert sent["x-forwarded-proto"] == "https"


async def raw_request(
    app: ASGIApp, raw_path: bytes, *, path: Optional[str] = None, headers: Tuple[Tuple[bytes, bytes], ...] = ()
) -> Tuple[int, bytes]:
    """One request with exactly this request target, as a server would hand it over (no client normalises it)."""
    from urllib.parse import unquote

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path if path is not None else unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"app.test"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("app.test", 80),
    }
    sent: List[Message] = []
    body_given: List[bool] = []

    async def receive() -> Message:
        if not body_given:
            body_given.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    with anyio.fail_after(5):
        await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/api/../admin",
        b"/api/blueprints/../../admin",
        b"/api/%2e%2e/admin",
        b"/api/%2E%2E%2Fadmin",
        b"/api/%252e%252e/admin",
        b"/api/..%5cadmin",
        b"/api/..\\admin",
        b"/api/%5c..%5c..%5cadmin",
        b"/api/x/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        b"/api/%ff%2e%2e",
    ],
)
async def test_a_path_that_leaves_the_prefix_once_decoded_is_refused(world: World, raw_path: bytes) -> None:
    status, _ = await raw_request(proxied_app(config_for(world.fake)), raw_path)
    assert status in (400, 404)
    assert world.fake.requests == []


@pytest.mark.parametrize(
    ("raw_path", "path", "host"),
    [
        (b"/api/@evil.test/x", None, b"app.test"),
        (b"/api//evil.test/x", None, b"app.test"),
        (b"/api/blueprints/products/entities", None, b"evil.test:8443"),
        (b"http://evil.test/api/me", "/api/me", b"app.test"),
    ],
)
async def test_nothing_in_the_request_moves_the_target(
    world: World, raw_path: bytes, path: Optional[str], host: bytes
) -> None:
    status, _ = await raw_request(proxied_app(config_for(world.fake)), raw_path, path=path, headers=((b"host", host),))
    # FakeQelos's transport serves qelos.test only: any other host would fail to connect (502).
    assert status not in (502, 200) or world.fake.requests
    for entry in world.fake.requests:
        assert entry.headers["host"] == "qelos.test"
        assert entry.path.startswith("/api/")
    if raw_path.startswith(b"http://"):
        assert status == 400 and world.fake.requests == []
    else:
        assert status != 502 and len(world.fake.requests) == 1


async def test_the_proxy_prefix_is_configurable_and_qelos_still_sees_api(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    config = config_for(world.fake, proxy_prefix="/qelos")
    async with client(proxied_app(config)) as http:
        response = await http.get("/qelos/blueprints/products/entities", headers=bearer(pair.access_token))
        assert (await http.get("/api/blueprints/products/entities")).status_code == 404
    assert response.status_code == 200
    assert [entry.path for entry in world.fake.requests] == [ENTITIES]
    with pytest.raises(QelosConfigError, match="proxy_prefix"):
        config_for(world.fake, proxy_prefix="api")


async def test_own_routes_declared_first_stay_authoritative(world: World) -> None:
    config = config_for(world.fake)
    app = fastapi_app(config)

    @app.get("/api/health")
    async def health() -> Dict[str, str]:
        return {"status": "own"}

    app.include_router(create_qelos_proxy_router(config))
    async with client(app) as http:
        assert (await http.get("/api/health")).json() == {"status": "own"}
    assert world.fake.requests == []


class _Failing(httpx.AsyncBaseTransport):
    def __init__(self, error: Optional[Exception] = None) -> None:
        self.error = error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.error is not None:
            raise self.error
        # Takes the whole body, as a network transport would, and never answers.
        async for _ in request.stream:  # type: ignore[union-attr]
            pass
        await anyio.sleep_forever()
        raise AssertionError


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("connection refused"), httpx.ReadError("connection reset by peer")]
)
async def test_refused_or_reset_connections_answer_502(error: Exception) -> None:
    config = QelosConfig(app_url="https://qelos.test", transport=_Failing(error))
    async with client(bare_proxy(config)) as http:
        response = await http.get(ENTITIES)
    assert response.status_code == 502
    assert response.json()["code"] == "QELOS_PROXY_UPSTREAM_ERROR"


async def test_no_response_headers_within_the_timeout_answer_504() -> None:
    config = QelosConfig(app_url="https://qelos.test", transport=_Failing(), timeout=0.2)
    async with client(bare_proxy(config)) as http:
        with anyio.fail_after(5):
            response = await http.post(ENTITIES, content=b"x" * 1000)
    assert response.status_code == 504
    assert response.json()["code"] == "QELOS_PROXY_TIMEOUT"


class _Chunks(httpx.AsyncByteStream):
    """A response body that Qelos sends chunk by chunk, as the test lets it."""

    def __init__(self, chunks: List[bytes], gate: Optional[anyio.Event] = None, forever: bool = False) -> None:
        self.chunks = chunks
        self.gate = gate
        self.forever = forever
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == 1 and self.gate is not None:
                await self.gate.wait()
            yield chunk
        if self.forever:
            await anyio.sleep_forever()

    async def aclose(self) -> None:
        self.closed = True


class _Answering(httpx.AsyncBaseTransport):
    def __init__(self, body: _Chunks) -> None:
        self.body = body
        self.received: List[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "application/octet-stream", "X-Qelos-Version": "v1"}
        return httpx.Response(200, headers=headers, stream=self.body)


async def test_a_started_response_streams_as_long_as_it_flows() -> None:
    # Each chunk comes well after the 0.2 s timeout: that only bounds the wait for the response headers.
    class Slow(_Chunks):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            for chunk in self.chunks:
                await anyio.sleep(0.15)
                yield chunk

    config = QelosConfig(
        app_url="https://qelos.test", transport=_Answering(Slow([b"a", b"b", b"c", b"d"])), timeout=0.2
    )
    async with client(bare_proxy(config)) as http:
        response = await http.get("/api/files/1")
    assert response.status_code == 200
    assert response.content == b"abcd"


async def asgi_stream(
    app: ASGIApp, method: str, path: str, request_chunks: List[bytes], on_body: Any = None
) -> Tuple[List[Message], Any]:
    """Drive ``app`` with a request body sent chunk by chunk; ``receive`` waits for ``on_body`` between chunks."""
    sent: List[Message] = []
    pending = list(request_chunks)
    disconnect = anyio.Event()

    async def receive() -> Message:
        if pending:
            chunk = pending.pop(0)
            if on_body is not None and len(pending) < len(request_chunks) - 1:
                await on_body()
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            disconnect.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"app.test"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 5000),
        "server": ("app.test", 80),
    }
    with anyio.fail_after(5):
        await app(scope, receive, send)
    return sent, disconnect


async def test_a_chunked_request_body_is_forwarded_before_it_has_all_arrived() -> None:
    upstream_got_first = anyio.Event()
    seen: List[bytes] = []

    async def qelos(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(message.get("body", b""))
            upstream_got_first.set()
            if not message.get("more_body"):
                break
        await JSONResponse({"received": b"".join(seen).decode()})(scope, receive, send)

    config = QelosConfig(app_url="https://qelos.test", transport=httpx.ASGITransport(app=qelos))
    # The client's second chunk is only sent once Qelos has the first one: a buffering proxy would hang here.
    sent, _ = await asgi_stream(
        bare_proxy(config), "POST", "/api/upload", [b"one,", b"two,", b"three"], upstream_got_first.wait
    )
    assert sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b'{"received":"one,two,three"}'
    assert [chunk for chunk in seen if chunk] == [b"one,", b"two,", b"three"]


async def test_a_response_body_reaches_the_client_chunk_by_chunk() -> None:
    gate = anyio.Event()
    body = _Chunks([b"first", b"second"], gate=gate)
    config = QelosConfig(app_url="https://qelos.test", transport=_Answering(body))
    app = bare_proxy(config)
    sent: List[Message] = []

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)
        # Qelos sends its second chunk only once the client holds the first: a buffering proxy would hang.
        if message.get("body") == b"first":
            gate.set()

    scope = _scope("GET", "/api/files/1")
    with anyio.fail_after(5):
        await app(scope, receive, send)
    assert [m.get("body") for m in sent[1:]] == [b"first", b"second", b""]
    assert body.closed
    # Header names reach the server in lower case, as ASGI requires, whatever Qelos's spelling.
    assert (b"x-qelos-version", b"v1") in sent[0]["headers"]


async def test_a_client_that_disconnects_mid_stream_releases_the_upstream_response() -> None:
    body = _Chunks([b"first"], forever=True)
    config = QelosConfig(app_url="https://qelos.test", transport=_Answering(body))
    got_first = anyio.Event()

    async def receive() -> Message:
        await got_first.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message.get("body") == b"first":
            got_first.set()

    with anyio.fail_after(5):
        await bare_proxy(config)(_scope("GET", "/api/files/1"), receive, send)
    assert body.closed


async def test_an_answer_that_breaks_off_mid_stream_aborts_the_response(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(_Chunks):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b"first"
            raise httpx.ReadError("connection reset by peer")

    body = Broken([])
    config = QelosConfig(app_url="https://qelos.test", transport=_Answering(body))
    sent: List[Message] = []

    async def receive() -> Message:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)

    # The status is out: the server must abort the connection, never end the body as if it were whole.
    with anyio.fail_after(5), pytest.raises(httpx.ReadError):
        await bare_proxy(config)(_scope("GET", "/api/files/1"), receive, send)
    assert [m.get("more_body") for m in sent[1:]] == [True]
    assert body.closed
    assert "broke off mid-stream: ReadError" in caplog.text


def test_websocket_upgrades_answer_501() -> None:
    config = QelosConfig(app_url="https://qelos.test", transport=_Failing(httpx.ConnectError("unused")))
    app = bare_proxy(config)
    with TestClient(app) as http:
        response = http.get("/api/socket", headers={"upgrade": "websocket", "connection": "upgrade"})
        assert response.status_code == 501
        assert response.json()["code"] == "QELOS_PROXY_WEBSOCKET_UNSUPPORTED"
        from starlette.testclient import WebSocketDenialResponse

        with pytest.raises(WebSocketDenialResponse) as denied, http.websocket_connect("/api/socket"):
            pass
        assert denied.value.status_code == 501


@pytest.mark.parametrize(
    ("env", "target"),
    [
        ({"QELOS_PROXY_TARGET": "http://127.0.0.7:3000", "QELOS_IP": "http://127.0.0.8:3000"}, "http://127.0.0.7:3000"),
        ({"QELOS_PROXY_TARGET": "  ", "QELOS_IP": "http://127.0.0.8:3000"}, "http://127.0.0.8:3000"),
        ({"QELOS_API_IP": "http://127.0.0.9:3000"}, "http://127.0.0.9:3000"),
        ({"QELOS_IP": ""}, "https://qelos.example.com"),
    ],
)
async def test_the_4_0_1_environment_overrides_pick_the_target_in_order(
    monkeypatch: pytest.MonkeyPatch, env: Dict[str, str], target: str
) -> None:
    for name in ("QELOS_PROXY_TARGET", "QELOS_IP", "QELOS_API_IP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    fake = FakeQelos(url=target)
    config = QelosConfig(app_url="https://qelos.example.com", transport=fake.transport)
    assert config.upstream_url == target
    async with client(bare_proxy(config)) as http:
        response = await http.get("/api/me")
    # FakeQelos answers only at its own address: a 401 (no credential) means the request went there.
    assert response.status_code == 401
    assert fake.requests[0].headers["host"] == httpx.URL(target).netloc.decode()


def test_a_malformed_environment_override_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QELOS_IP", "10.0.0.5")
    with pytest.raises(QelosConfigError, match="QELOS_IP"):
        QelosConfig(app_url="https://qelos.example.com")


def _scope(method: str, path: str) -> Dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"app.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("app.test", 80),
    }


def _cookie(response: httpx.Response, name: str) -> Optional[str]:
    for header in set_cookie_headers(response):
        cookie_name, _, rest = header.partition("=")
        if cookie_name == name:
            return rest.split(";", 1)[0]
    return None


@pytest.mark.parametrize("prefix", ["api", "/", "", "//", "/{path}", None])
def test_a_proxy_prefix_that_is_not_a_path_is_refused(prefix: Any) -> None:
    with pytest.raises(QelosConfigError, match="proxy_prefix"):
        QelosConfig(app_url="https://qelos.test", proxy_prefix=prefix)


def test_which_paths_the_middleware_leaves_to_the_proxy() -> None:
    config = QelosConfig(app_url="https://qelos.test", proxy_prefix="/qelos/")
    assert config.proxy_prefix == "/qelos"
    assert [config.is_proxied(p) for p in ("/qelos", "/qelos/me", "/qelosx", "/", "/api/me")] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert not QelosConfig(app_url="https://qelos.test", disable_proxy=True).is_proxied("/api/me")


def test_an_environment_override_is_logged_once_built(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QELOS_API_IP", "https://qelos.test/")
    QelosConfig(app_url="https://qelos.test")
    assert caplog.text == ""
    monkeypatch.setenv("QELOS_IP", "http://10.0.0.5:3000")
    QelosConfig(app_url="https://qelos.test")
    assert "Qelos calls go to http://10.0.0.5:3000, set by the QELOS_IP environment variable" in caplog.text


async def test_a_thousand_proxied_requests_leave_no_cyclic_garbage(world: World) -> None:
    # The proxy calls the pool's transport itself: httpx's send ties each response to a stream that points back
    # at it, a reference cycle per request that only the cyclic collector frees (26 objects a request).
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    config = config_for(world.fake, transport=Canned({ENTITIES: b"[]"}))
    headers = [(b"authorization", f"Bearer {pair.access_token}".encode())]
    with anyio.fail_after(60):
        found, kinds = await garbage_of(proxied_app(config), ENTITIES, headers)
    assert found == 0, kinds.most_common(12)
