"""Which cookies reach the browser: relayed Qelos session cookies, refreshed q_* cookies, and the app's own."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Dict, List, Literal, Tuple

import httpx
import jwt
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from qelos_sdk import QelosAPIError
from starlette.datastructures import MutableHeaders
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from qelos_integrator_fastapi import CookieBuffer, QelosIntegratorMiddleware
from qelos_integrator_fastapi._cookies import parse_set_cookie

from ..support import (
    Rewrite,
    Rewriting,
    World,
    client,
    config_for,
    cookie_header,
    fastapi_app,
    make_world,
    set_cookie_headers,
    with_set_cookies,
)

ACCESS_TTL = 18000
SESSION_ROTATION_AFTER = 1800
Backend = Literal["asyncio", "trio"]


def app_with_logout(world: World, rewrite: Rewrite) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        QelosIntegratorMiddleware, config=config_for(world.fake, transport=Rewriting(world.fake, rewrite))
    )

    @app.post("/logout")
    async def logout(request: Request) -> Dict[str, Any]:
        sdk = request.state.qelos.sdk
        await sdk.authentication.logout()
        try:
            await sdk.authentication.get_logged_in_user()
        except QelosAPIError:
            return {"after_logout": None}
        return {"after_logout": "still signed in"}

    return app


@pytest.mark.anyio
@pytest.mark.parametrize(
    "cleared",
    [
        None,  # FakeQelos's own: an empty value with Max-Age=-1 and a past Expires
        "qlt_0=deleted; Max-Age=0; Path=/api; HttpOnly",
        "qlt_0=; Path=/api; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly",
        "qlt_0=deleted; Max-Age=-1; Path=/api",  # a negative Max-Age deletes whatever the value
        "qlt_0=deleted; Max-Age=2592000; Path=/api; Max-Age=0",  # a browser honours the last Max-Age
    ],
)
async def test_a_session_cleared_by_qelos_is_cleared_in_the_browser_and_never_sent_again(cleared: Any) -> None:
    world = make_world()

    async def clear_with(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if cleared is None or request.url.path != "/api/logout":
            return response
        return httpx.Response(200, headers=[("set-cookie", cleared)])

    app = app_with_logout(world, clear_with)
    async with client(app) as browser:
        browser.cookies.set("qlt_0", world.fake.issue_session_cookie(world.bob), domain="app.test")
        response = await browser.post("/logout")
        assert response.json() == {"after_logout": None}
        (relayed,) = [h for h in set_cookie_headers(response) if h.startswith("qlt_0=")]
        assert "Max-Age=0" in [part.strip() for part in relayed.split(";")]
        assert "qlt_0" not in browser.cookies
    after = world.fake.requests[-1]
    assert (after.path, after.headers.get("cookie")) == ("/api/me", None)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "extra",
    [
        "tracking=abc; Path=/; Max-Age=100",  # not the Qelos session cookie
        "qlt_0=abc\x7fdef; Path=/api; Max-Age=100",  # a value no browser cookie can hold
        "qlt_0=abc\x1bdef; Path=/api; Max-Age=100",
    ],
)
async def test_only_well_formed_session_cookies_are_relayed(extra: str) -> None:
    world = make_world()

    async def add_cookie(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return await with_set_cookies(response, extra) if request.url.path == "/api/me" else response

    app = fastapi_app(config_for(world.fake, transport=Rewriting(world.fake, add_cookie)))
    cookie = world.fake.issue_session_cookie(world.bob)
    async with client(app) as browser:
        for _ in range(2):
            page = await browser.get("/me", headers=cookie_header(qlt_0=cookie))
            assert page.json()["user"]["_id"] == world.bob.id
            assert set_cookie_headers(page) == []
    assert {r.headers.get("cookie") for r in world.fake.requests} == {f"qlt_0={cookie}"}


def app_calling_qelos_again(world: World, rewrite: Rewrite) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        QelosIntegratorMiddleware, config=config_for(world.fake, transport=Rewriting(world.fake, rewrite))
    )

    @app.get("/again")
    async def again(request: Request) -> Dict[str, Any]:
        user = await request.state.qelos.sdk.authentication.get_logged_in_user()
        return {"user": user["username"]}

    return app


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("attributes", "max_age"),
    [
        ("Max-Age=0; Max-Age=2592000", "2592000"),  # a browser honours the last Max-Age (RFC 6265 5.3)
        ("Max-Age=1", "1"),
        ("Max-Age=2592000; Max-Age=garbage", "2592000"),  # and ignores one that is no number (5.2.2)
        ("Max-Age=--5", None),
        ("Max-Age=+5", None),
        ("Max-Age=5s", None),
        ("Max-Age=\u00b2", None),  # a Unicode digit is no DIGIT
    ],
)
async def test_a_rotated_session_cookie_is_read_as_a_browser_reads_it(attributes: str, max_age: Any) -> None:
    world = make_world()
    first = world.fake.issue_session_cookie(world.bob)
    world.fake.clock.advance(1)
    rotated = world.fake.issue_session_cookie(world.bob)
    header = f"qlt_0={rotated}; Path=/api; {attributes}"

    async def rotate(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.headers.get("cookie") != f"qlt_0={first}" or request.url.path != "/api/me":
            return response
        headers = [*response.headers.raw, (b"set-cookie", header.encode())]
        return httpx.Response(response.status_code, headers=headers, content=await response.aread())

    async with client(app_calling_qelos_again(world, rotate)) as browser:
        page = await browser.get("/again", headers=cookie_header(qlt_0=first))
    assert page.json() == {"user": "bob"}
    (relayed,) = set_cookie_headers(page)
    parts = [part.strip() for part in relayed.split(";")]
    assert parts[0] == f"qlt_0={rotated}"
    assert [p for p in parts if p.startswith("Max-Age")] == ([] if max_age is None else [f"Max-Age={max_age}"])
    assert not any(p.lower().startswith("expires") for p in parts)  # Qelos gave none
    assert world.fake.requests[-1].headers.get("cookie") == f"qlt_0={rotated}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "before",
    [
        "tracking=abc; Path=/",  # not a session cookie
        "qlt_0=abc\x7fdef; Path=/api",  # malformed
        "qlt_0={first}; Path=/api",  # the cookie the caller sent, unchanged
    ],
)
async def test_a_rotation_after_other_set_cookies_is_relayed(before: str) -> None:
    world = make_world()
    first = world.fake.issue_session_cookie(world.bob)
    world.fake.clock.advance(1)
    rotated = world.fake.issue_session_cookie(world.bob)
    # GET /api/me and GET /api/workspaces answer one identification; their Set-Cookies are read in that order.
    extra = {"/api/me": before.format(first=first), "/api/workspaces": f"qlt_0={rotated}; Path=/api; Max-Age=60"}

    async def rotate(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.headers.get("cookie") != f"qlt_0={first}" or request.url.path not in extra:
            return response
        return await with_set_cookies(response, extra[request.url.path])

    async with client(app_calling_qelos_again(world, rotate)) as browser:
        page = await browser.get("/again", headers=cookie_header(qlt_0=first))
    assert page.json() == {"user": "bob"}
    (relayed,) = set_cookie_headers(page)
    assert relayed.startswith(f"qlt_0={rotated};")
    assert world.fake.requests[-1].headers.get("cookie") == f"qlt_0={rotated}"


def unsigned_jwt(**claims: Any) -> str:
    return unsigned_jwt_of(claims)


def unsigned_jwt_of(claims: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("claims", "max_age"),
    [
        ({"iat": 1000, "exp": 1001}, "1"),
        ({"iat": 1000, "exp": 4600}, "3600"),
        ({"exp": 4600}, None),
        ({"iat": 1000}, None),
        ({"iat": 0, "exp": True}, None),
        ({"iat": 1000, "exp": "4600"}, None),
        ([1000, 4600], None),  # a JWT payload that is no object
    ],
)
async def test_a_refreshed_token_cookie_lasts_as_long_as_the_token_says(claims: Any, max_age: Any) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    token = unsigned_jwt_of(claims)

    async def refresh_with(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/api/token/refresh":
            return response
        return httpx.Response(200, json={"payload": {"token": token, "refreshToken": token}})

    app = fastapi_app(config_for(world.fake, transport=Rewriting(world.fake, refresh_with)))
    async with client(app) as browser:
        response = await browser.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 200
    written = {h.split("=", 1)[0]: [p.strip() for p in h.split(";")] for h in set_cookie_headers(response)}
    assert sorted(written) == ["q_access_token", "q_refresh_token"]
    for parts in written.values():
        assert parts[0].split("=", 1)[1] == token
        assert [p for p in parts if p.startswith("Max-Age")] == ([] if max_age is None else [f"Max-Age={max_age}"])


@pytest.mark.anyio
async def test_tokens_without_a_positive_lifetime_get_browser_session_cookies() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    access, refresh = unsigned_jwt(iat=1000, exp=1000), unsigned_jwt(iat=1000, exp=900)

    async def odd_lifetimes(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/api/token/refresh":
            return response
        return httpx.Response(200, json={"payload": {"token": access, "refreshToken": refresh}})

    app = fastapi_app(config_for(world.fake, transport=Rewriting(world.fake, odd_lifetimes)))
    async with client(app) as browser:
        response = await browser.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    written = {h.split("=", 1)[0]: h for h in set_cookie_headers(response)}
    assert sorted(written) == ["q_access_token", "q_refresh_token"]
    for header in written.values():
        assert "max-age" not in header.lower()  # never an immediate deletion of the new token
    assert response.cookies["q_access_token"] == access


@pytest.mark.anyio
async def test_cookies_the_app_sets_win_over_a_refreshs() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.post("/signout")
    async def signout() -> JSONResponse:
        response = JSONResponse({"ok": True})
        response.delete_cookie("q_access_token")
        response.delete_cookie("q_refresh_token")
        return response

    async with client(app) as browser:
        response = await browser.post(
            "/signout", headers=cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        )
    assert world.fake.count("POST /api/token/refresh") == 1
    names = sorted(h.split("=", 1)[0] for h in set_cookie_headers(response))
    assert names == ["q_access_token", "q_refresh_token"]
    assert all("Max-Age=0" in header for header in set_cookie_headers(response))


@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> Backend:
    name: Backend = request.param
    return name


def ws_app(world: World) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.websocket("/ws")
    async def feed(websocket: WebSocket) -> None:
        own = [(b"set-cookie", b"q_refresh_token=app-choice; Path=/")] if "own" in websocket.query_params else []
        await websocket.accept(headers=own)
        user = websocket.scope["state"]["qelos"].user
        await websocket.send_json({"user": user["username"] if user else None})
        await websocket.close()

    return app


def accept_cookies(ws: Any) -> List[str]:
    return [value.decode() for key, value in ws.extra_headers or [] if key.decode().lower() == "set-cookie"]


def test_cookies_the_app_sets_on_a_websocket_accept_win_over_a_refreshs(backend: Backend) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    with TestClient(ws_app(world), backend=backend) as http:
        http.cookies.set("q_refresh_token", pair.refresh_token)
        with http.websocket_connect("/ws?own=1") as ws:
            assert ws.receive_json() == {"user": "alice"}
            cookies = accept_cookies(ws)
    assert sorted(c.split("=", 1)[0] for c in cookies) == ["q_access_token", "q_refresh_token"]
    assert "q_refresh_token=app-choice; Path=/" in cookies


def test_a_session_rotated_on_a_secure_websocket_is_relayed_secure(backend: Backend) -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.bob)
    world.fake.clock.advance(SESSION_ROTATION_AFTER + 1)
    with TestClient(ws_app(world), backend=backend) as http:
        http.cookies.set("qlt_0", cookie)
        with http.websocket_connect("wss://testserver/ws") as ws:
            assert ws.receive_json() == {"user": "bob"}
            (rotated,) = accept_cookies(ws)
    assert rotated.startswith("qlt_0=")
    assert "Secure" in [part.strip() for part in rotated.split(";")]


@pytest.mark.anyio
async def test_a_relayed_session_cookie_keeps_the_expiry_qelos_gave_it() -> None:
    world = make_world()
    rotated = "qlt_0=rotated-value; Path=/api; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly"

    async def rotate(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return await with_set_cookies(response, rotated) if request.url.path == "/api/me" else response

    app = fastapi_app(config_for(world.fake, transport=Rewriting(world.fake, rotate)))
    async with client(app) as browser:
        page = await browser.get("/me", headers=cookie_header(qlt_0=world.fake.issue_session_cookie(world.bob)))
    (relayed,) = set_cookie_headers(page)
    parts = [part.strip().lower() for part in relayed.split(";")]
    assert parts[0] == "qlt_0=rotated-value"
    assert "expires=thu, 01 jan 2037 00:00:00 gmt" in parts
    assert not any(part.startswith("max-age") for part in parts)


@pytest.mark.anyio
async def test_a_relayed_session_cookie_never_outlives_its_token() -> None:
    world = make_world()
    five_hours = jwt.encode({"sub": "u", "iat": 1_800_000_000, "exp": 1_800_018_000}, "k" * 32, algorithm="HS256")
    rotated = f"qlt_0={five_hours}; Path=/api; Expires=Thu, 01 Jan 2037 00:00:00 GMT; HttpOnly"

    async def rotate(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return await with_set_cookies(response, rotated) if request.url.path == "/api/me" else response

    app = fastapi_app(config_for(world.fake, transport=Rewriting(world.fake, rotate)))
    async with client(app) as browser:
        page = await browser.get("/me", headers=cookie_header(qlt_0=world.fake.issue_session_cookie(world.bob)))
    (relayed,) = set_cookie_headers(page)
    parts = [part.strip().lower() for part in relayed.split(";")]
    assert "max-age=18000" in parts
    assert not any(part.startswith("expires") for part in parts)


def test_a_later_write_of_one_cookie_replaces_the_earlier_whatever_the_domains_case() -> None:
    buffer = CookieBuffer()
    buffer.set_cookie("q_access_token", "first", domain="App.Example.test")
    buffer.set_cookie("q_access_token", "second", domain="app.example.test")
    headers = MutableHeaders()
    buffer.flush_into(headers)
    (written,) = headers.getlist("set-cookie")
    assert written.startswith("q_access_token=second;")


def written(buffer: CookieBuffer) -> List[str]:
    headers = MutableHeaders()
    buffer.flush_into(headers)
    return headers.getlist("set-cookie")


@pytest.mark.parametrize(
    ("method", "args", "options"),
    [
        ("set_cookie", ("q",), {}),
        ("set_cookie", ("q", "v"), {"samesite": "strict"}),
        ("set_cookie", ("q", "v"), {"samesite": None}),
        (
            "set_cookie",
            ("q", "v"),
            {"max_age": 60, "expires": 120, "path": "/p", "domain": "example.test", "secure": True, "httponly": True},
        ),
        ("delete_cookie", ("q",), {}),
        ("delete_cookie", ("q",), {"samesite": "strict"}),
        ("delete_cookie", ("q",), {"samesite": None}),
        ("delete_cookie", ("q",), {"path": "/p", "domain": "example.test", "secure": True, "httponly": True}),
    ],
)
def test_the_cookie_buffer_writes_what_a_starlette_response_writes(
    method: str, args: Tuple[str, ...], options: Dict[str, Any]
) -> None:
    # CookieBuffer stands in for the response in on_token_refresh hooks: same signature, same header.
    buffer = CookieBuffer()
    getattr(buffer, method)(*args, **options)
    response = Response()
    getattr(response, method)(*args, **options)
    assert written(buffer) == response.headers.getlist("set-cookie")


def test_one_cookie_name_on_other_paths_or_domains_is_another_cookie() -> None:
    buffer = CookieBuffer()
    buffer.set_cookie("q", "host")
    buffer.set_cookie("q", "app", path="/app")
    buffer.set_cookie("q", "shared", domain="example.test")
    assert repr(buffer) == "CookieBuffer(cookies=['q', 'q', 'q'], started=False)"
    assert [header.split(";")[0] for header in written(buffer)] == ["q=host", "q=app", "q=shared"]


@pytest.mark.parametrize("start", ["http.response.start", "websocket.accept"])
def test_cookies_written_after_the_response_started_are_dropped_with_one_warning(
    start: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "qelos_integrator_fastapi")
    buffer = CookieBuffer()
    if start == "websocket.accept":
        assert buffer.flush_into_list([]) == []
    else:
        assert written(buffer) == []
    buffer.set_cookie("q_access_token", "late")
    buffer.delete_cookie("qlt_0")
    assert repr(buffer) == "CookieBuffer(cookies=[], started=True)"
    assert [record.getMessage() for record in caplog.records] == [
        "cookie 'q_access_token' changed after the response started; it cannot reach the browser on this "
        "response (write cookies before streaming a body)"
    ]


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("qlt_0=abc==; Path=/api", ("qlt_0", "abc==", [("path", "/api")])),  # base64 padding stays in the value
        (" Xsrf = v ; HttpOnly ; Foo=x=y", ("Xsrf", "v", [("httponly", ""), ("foo", "x=y")])),
        ("qlt_0=; Max-Age=0", ("qlt_0", "", [("max-age", "0")])),
        ("a b=c", None),
        ("a\tb=c", None),
        ("a,b=c", None),
        ('a"b=c', None),
        ("a\\b=c", None),
        ("=c", None),
        ("abc; Path=/", None),
        ("a=b\x7f", None),
    ],
)
def test_set_cookie_parsing(header: str, parsed: Any) -> None:
    cookie = parse_set_cookie(header)
    assert (None if cookie is None else (cookie.name, cookie.value, cookie.attributes)) == parsed


# Equivalent mutant, unreachable through the middleware or the auth router: write_token_cookies writing an
# empty token, as both callers (the refresh and the sign-in) reject a Qelos answer without two non-empty
# tokens. The survivors of _cookies.py are argued in docs/survivors/_cookies.md.
