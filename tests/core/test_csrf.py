"""The CSRF check: state-changing requests and WebSocket handshakes authenticated by a cookie must come from
the app's own origin or a trusted one."""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import World, bearer, client, config_for, make_world

pytestmark = pytest.mark.anyio

APP = "https://app.example.com"
EVIL = "https://evil.example.com"
UNSAFE = ["POST", "PUT", "PATCH", "DELETE"]


def build_app(world: World, **options: Any) -> Starlette:
    async def change(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"changed_by": user.username if user.is_authenticated else None})

    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.username})
        await websocket.close()

    config = config_for(world.fake, **options)
    return Starlette(
        routes=[
            Route("/change", change, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
            WebSocketRoute("/ws", feed),
        ],
        middleware=[Middleware(QelosIntegratorMiddleware, config=config)],
    )


def token_cookie(world: World) -> Dict[str, str]:
    return {"cookie": f"q_access_token={world.fake.issue_tokens(world.alice).access_token}"}


def session_cookie(world: World) -> Dict[str, str]:
    return {"cookie": f"{world.fake.session_cookie_name}={world.fake.issue_session_cookie(world.alice)}"}


async def send(app: Starlette, method: str, headers: Dict[str, str], base_url: str = APP) -> httpx.Response:
    async with client(app, base_url=base_url) as http:
        return await http.request(method, "/change", headers=headers)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["code"] == "CSRF_ORIGIN_MISMATCH"
    assert "trusted_origins" in body["message"]


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("cookie", [token_cookie, session_cookie], ids=["q_access_token", "qlt"])
async def test_a_cookie_request_from_a_sibling_subdomain_is_refused(method: str, cookie: Any) -> None:
    world = make_world()
    headers = {**cookie(world), "origin": EVIL, "sec-fetch-site": "same-site"}
    response = await send(build_app(world), method, headers)
    assert_refused(response)
    assert world.fake.requests == [], "refused before anything is asked of Qelos"


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "null"},
        {"origin": "http://app.example.com"},  # the plain-http origin of an https app
        {"origin": "https://app.example.com:8443"},
        {"referer": f"{EVIL}/page"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site", "referer": f"{EVIL}/page"},
    ],
    ids=["null", "http-scheme", "other-port", "referer", "cross-site", "same-site-referer"],
)
async def test_what_a_browser_sends_from_elsewhere_is_refused(headers: Dict[str, str]) -> None:
    world = make_world()
    assert_refused(await send(build_app(world), "POST", {**token_cookie(world), **headers}))


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": APP},
        {"origin": "https://APP.example.com:443"},
        {"origin": APP, "host": "app.example.com:443"},
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
        {"referer": f"{APP}/form?x=1"},
        {},  # no browser: curl or a script holding the cookie itself
    ],
    ids=["origin", "origin-default-port", "host-default-port", "same-origin", "user-navigation", "referer", "none"],
)
async def test_same_origin_and_non_browser_requests_pass(headers: Dict[str, str]) -> None:
    world = make_world()
    response = await send(build_app(world), "POST", {**token_cookie(world), **headers})
    assert response.json() == {"changed_by": "alice"}


async def test_a_proxy_hiding_https_still_passes_a_browser_that_says_same_origin() -> None:
    world = make_world()
    app = build_app(world)
    # The app sees http (no --proxy-headers); the browser's own Sec-Fetch-Site verdict is enough.
    headers = {**token_cookie(world), "origin": APP, "sec-fetch-site": "same-origin"}
    response = await send(app, "POST", headers, base_url="http://app.example.com")
    assert response.json() == {"changed_by": "alice"}
    refused = await send(app, "POST", {**token_cookie(world), "origin": APP}, base_url="http://app.example.com")
    assert_refused(refused)


@pytest.mark.parametrize("entry", ["https://front.example.com", "https://front.example.com:443"])
@pytest.mark.parametrize("flat", [False, True], ids=["config", "flat-keyword"])
async def test_trusted_origins_pass(entry: str, flat: bool) -> None:
    world = make_world()
    if flat:
        app = Starlette(
            routes=build_app(world).routes,
            middleware=[
                Middleware(
                    QelosIntegratorMiddleware,
                    app_url=world.fake.url,
                    transport=world.fake.transport,
                    trusted_origins=[entry],
                )
            ],
        )
    else:
        app = build_app(world, trusted_origins=[entry])
    headers = {**token_cookie(world), "origin": "https://front.example.com", "sec-fetch-site": "same-site"}
    assert (await send(app, "POST", headers)).json() == {"changed_by": "alice"}
    assert_refused(await send(app, "POST", {**token_cookie(world), "origin": EVIL}))


@pytest.mark.parametrize(
    "case",
    ["safe-method", "bearer", "api-token", "anonymous", "switched-off", "duplicate-cookies"],
)
async def test_requests_without_an_ambient_credential_or_with_the_check_off_are_not_checked(case: str) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    method = "POST"
    options: Dict[str, Any] = {}
    headers: Dict[str, str] = {"origin": EVIL}
    if case == "safe-method":
        method, headers = "GET", {**headers, **token_cookie(world)}
    elif case == "bearer":  # a page on another site cannot make a browser send Authorization
        headers = {**headers, **bearer(pair.access_token), "cookie": f"q_refresh_token={pair.refresh_token}"}
    elif case == "api-token":
        options = {"api_token": world.fake.add_api_token(world.alice)}
        headers = {**headers, **token_cookie(world)}
    elif case == "switched-off":
        options = {"csrf_check": False}
        headers = {**headers, **token_cookie(world)}
    elif case == "duplicate-cookies":  # refused as a credential, so nothing ambient authenticates it
        headers = {**headers, "cookie": "q_access_token=a; q_access_token=b"}
    response = await send(build_app(world, **options), method, headers)
    assert response.status_code == 200, response.text
    expected: Optional[str] = None if case in ("anonymous", "duplicate-cookies") else "alice"
    assert response.json() == {"changed_by": expected}


async def test_the_refusal_is_logged_once_without_the_cookie(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    cookie = token_cookie(world)
    caplog.set_level("INFO", logger="qelos_integrator_fastapi")
    assert_refused(await send(build_app(world), "DELETE", {**cookie, "origin": EVIL}))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused a cookie-authenticated DELETE /change: Origin 'https://evil.example.com' is neither this "
        "app's origin nor trusted"
    ]
    assert cookie["cookie"].split("=", 1)[1] not in caplog.text


Backend = Literal["asyncio", "trio"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_cross_site_websocket_handshake_is_denied(backend: Backend) -> None:
    world = make_world()
    url = "wss://app.example.com/ws"
    with TestClient(build_app(world), backend=backend) as http:
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            http.websocket_connect(url, headers={**token_cookie(world), "origin": EVIL}),
        ):
            pass
        with http.websocket_connect(url, headers={**token_cookie(world), "origin": APP}) as ws:
            assert ws.receive_json() == {"user": "alice"}
    assert denied.value.status_code == 403
    assert denied.value.json()["code"] == "CSRF_ORIGIN_MISMATCH"


async def test_a_cross_site_websocket_closes_1008_without_the_denial_extension() -> None:
    world = make_world()
    app = build_app(world)
    sent: List[Message] = []
    cookie = token_cookie(world)["cookie"].encode()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "wss",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.example.com"), (b"origin", EVIL.encode()), (b"cookie", cookie)],
        "subprotocols": [],
        "extensions": {},
        "app": app,
    }

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def record(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, record)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "CSRF_ORIGIN_MISMATCH"}]


@pytest.mark.parametrize(
    ("url", "origin", "accepted"),
    [
        ("ws://app.example.com/ws", "http://app.example.com", True),
        ("wss://app.example.com/ws", "https://app.example.com", True),
        ("ws://app.example.com/ws", "https://app.example.com", False),
        ("wss://app.example.com/ws", "http://app.example.com", False),
    ],
    ids=["ws-http", "wss-https", "ws-from-https", "wss-from-http"],
)
def test_a_websocket_handshake_is_same_origin_with_the_page_of_its_http_scheme(
    url: str, origin: str, accepted: bool
) -> None:
    world = make_world()
    with TestClient(build_app(world)) as http:
        if accepted:
            with http.websocket_connect(url, headers={**token_cookie(world), "origin": origin}) as ws:
                assert ws.receive_json() == {"user": "alice"}
        else:
            with (
                pytest.raises(WebSocketDenialResponse) as denied,
                http.websocket_connect(url, headers={**token_cookie(world), "origin": origin}),
            ):
                pass
            assert denied.value.json()["code"] == "CSRF_ORIGIN_MISMATCH"


def behind_proxy(app: Starlette) -> Starlette:
    """The app as uvicorn --proxy-headers runs it: X-Forwarded-Proto becomes the scope's scheme."""
    return Starlette(middleware=[Middleware(ProxyHeadersMiddleware, trusted_hosts="*")], routes=[Mount("/", app)])


async def test_the_scheme_a_trusted_proxy_forwards_is_the_apps_own() -> None:
    world = make_world()
    app = behind_proxy(build_app(world))
    headers = {**token_cookie(world), "origin": APP, "host": "app.example.com"}
    forwarded = await send(app, "POST", {**headers, "x-forwarded-proto": "https"}, base_url="http://10.0.0.5:8000")
    assert forwarded.json() == {"changed_by": "alice"}
    assert_refused(await send(app, "POST", headers, base_url="http://10.0.0.5:8000"))


@pytest.mark.parametrize(("proto", "origin"), [("https", APP), ("http", "http://app.example.com")])
def test_a_websocket_behind_a_trusted_proxy_compares_the_forwarded_scheme(proto: str, origin: str) -> None:
    world = make_world()
    other = "http://app.example.com" if proto == "https" else APP
    headers = {**token_cookie(world), "host": "app.example.com", "x-forwarded-proto": proto}
    with TestClient(behind_proxy(build_app(world))) as http:
        with http.websocket_connect("ws://10.0.0.5:8000/ws", headers={**headers, "origin": origin}) as ws:
            assert ws.receive_json() == {"user": "alice"}
        with (
            pytest.raises(WebSocketDenialResponse),
            http.websocket_connect("ws://10.0.0.5:8000/ws", headers={**headers, "origin": other}),
        ):
            pass


@pytest.mark.parametrize("host", ["app.example.com", "APP.EXAMPLE.COM", "app.example.com:443"])
async def test_the_host_header_names_the_apps_origin_not_the_address_it_listens_on(host: str) -> None:
    world = make_world()
    # A proxy that passes Host on: the app listens on 10.0.0.5:8443, the browser addressed app.example.com.
    headers = {**token_cookie(world), "origin": APP, "host": host}
    response = await send(build_app(world), "POST", headers, base_url="https://10.0.0.5:8443")
    assert response.json() == {"changed_by": "alice"}
    listening = {**token_cookie(world), "origin": "https://10.0.0.5:8443", "host": host}
    assert_refused(await send(build_app(world), "POST", listening, base_url="https://10.0.0.5:8443"))


async def test_the_refusal_quotes_at_most_100_characters_of_the_origin() -> None:
    world = make_world()
    origin = "https://" + "a" * 200 + ".example.com"
    response = await send(build_app(world), "POST", {**token_cookie(world), "origin": origin})
    assert_refused(response)
    assert response.json()["message"].startswith(f"Origin {origin[:100]!r} is neither this app's origin nor trusted;")


async def test_the_refusal_quotes_at_most_20_characters_of_sec_fetch_site() -> None:
    world = make_world()
    site = "cross-site-and-then-some-more"
    response = await send(build_app(world), "POST", {**token_cookie(world), "sec-fetch-site": site})
    assert_refused(response)
    assert response.json()["message"].startswith("a 'cross-site-and-then-' request without Origin or Referer;")
