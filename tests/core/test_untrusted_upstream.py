"""Every upstream byte is untrusted input: no answer from Qelos (or what poses as it) makes the app answer 500.

Each regression test below reproduces an answer that produced a 500 once (issue 18, finding 4); the property
test drives /api/me, /api/workspaces, the refresh, the sign-in and their Set-Cookie headers with arbitrary
statuses, headers and bodies through real apps and allows only the statuses docs/faults.md and
docs/auth-router.md document.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Sequence, Tuple

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, create_qelos_auth_routes

from ..support import Rewriting, World, client, cookie_header, fastapi_app, make_world, session

pytestmark = pytest.mark.anyio

SECRET = "untrusted-upstream-test-secret"
# Deeper than Python's recursion limit: json.loads raises RecursionError, not ValueError.
NESTED = b"[" * 100_000 + b"]" * 100_000
NESTED_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
UNAVAILABLE = "QELOS_UNAVAILABLE"
RawHeaders = List[Tuple[bytes, bytes]]


def answering(
    world: World, path: str, status: int, body: bytes, headers: Sequence[Tuple[bytes, bytes]] = ()
) -> Rewriting:
    """FakeQelos, except that ``path`` answers ``status``, ``headers`` and ``body`` (the fake's Set-Cookie kept)."""

    async def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != path:
            return response
        await response.aread()
        kept = [(k, v) for k, v in response.headers.raw if k.lower() == b"set-cookie"]
        return httpx.Response(status, headers=[*kept, *headers], content=body)

    return Rewriting(world.fake, rewrite)


def adding_set_cookie(world: World, path: str, *values: bytes) -> Rewriting:
    async def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != path:
            return response
        content = await response.aread()
        extra = [(b"set-cookie", value) for value in values]
        return httpx.Response(response.status_code, headers=[*response.headers.raw, *extra], content=content)

    return Rewriting(world.fake, rewrite)


def config(world: World, transport: httpx.AsyncBaseTransport, **options: Any) -> QelosConfig:
    options.setdefault("timeout", 2.0)
    return QelosConfig(app_url=world.fake.url, transport=transport, **options)


def router_app(cfg: QelosConfig, mode: str = "session") -> Starlette:
    app = Starlette(routes=create_qelos_auth_routes(cfg, secret_key=SECRET, mode=mode))
    app.add_middleware(QelosIntegratorMiddleware, config=cfg)
    return app


@pytest.mark.parametrize("body", [NESTED, NESTED_OBJECT], ids=["array", "object"])
@pytest.mark.parametrize("status", [200, 500])
async def test_deeply_nested_json_from_api_me_is_a_503_not_a_500(status: int, body: bytes) -> None:
    world = make_world()
    token = world.fake.issue_tokens(world.alice).access_token
    transport = answering(world, "/api/me", status, body, [(b"content-type", b"application/json")])
    async with client(fastapi_app(config(world, transport, require_auth=True))) as http:
        response = await http.get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE


async def test_deeply_nested_json_from_api_me_leaves_an_optional_route_anonymous() -> None:
    world = make_world()
    token = world.fake.issue_tokens(world.alice).access_token
    async with client(fastapi_app(config(world, answering(world, "/api/me", 200, NESTED)))) as http:
        response = await http.get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"] is None and response.json()["error"] == UNAVAILABLE


async def test_deeply_nested_json_from_the_workspace_list_keeps_the_user() -> None:
    world = make_world()
    token = world.fake.issue_tokens(world.alice).access_token
    async with client(fastapi_app(config(world, answering(world, "/api/workspaces", 200, NESTED)))) as http:
        response = await http.get("/me", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice" and response.json()["workspaces"] == []


async def test_deeply_nested_json_from_the_refresh_is_a_503() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    transport = answering(world, "/api/token/refresh", 200, NESTED)
    async with client(fastapi_app(config(world, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE


@pytest.mark.parametrize("mode", ["session", "token"])
@pytest.mark.parametrize("status", [200, 500])
async def test_deeply_nested_json_from_signin_is_the_routers_503(mode: str, status: int) -> None:
    world = make_world()
    cfg = config(world, answering(world, "/api/signin", status, NESTED))
    async with client(router_app(cfg, mode)) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE and set(response.json()) == {"code", "message"}


@pytest.mark.parametrize(
    "set_cookie",
    [
        "qlt_0=中文; Path=/api".encode(),
        "qlt_0=café; Path=/api".encode("latin-1"),
        b"qlt_0=rotated; Max-Age=\xc2\xb2",  # Max-Age=² (str.isdigit() is True, int() refuses it)
        "qlt_0=rotated; Max-Age=١٢٣".encode(),  # Arabic-Indic digits: not a Max-Age a browser reads
        b"qlt_0=rotated; Max-Age=" + b"9" * 5000,  # past int()'s digit limit
        "qlt_0=rotated; Expires=Thu, 01 Jan 2099 00:00:00 中文".encode(),
        b"qlt_0=rotated; Expires=Thu\x00, 01 Jan 2099",
        b'qlt_0="a;b"',
    ],
    ids=[
        "cjk-value",
        "latin1-value",
        "superscript-max-age",
        "arabic-max-age",
        "huge-max-age",
        "cjk-expires",
        "nul-expires",
        "quoted",
    ],
)
async def test_a_hostile_session_cookie_rotation_is_never_a_500(set_cookie: bytes) -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    transport = adding_set_cookie(world, "/api/me", set_cookie)
    async with client(fastapi_app(config(world, transport))) as http:
        response = await http.get("/me", headers=session(world.fake, cookie))
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice"
    for header in response.headers.get_list("set-cookie"):
        header.encode("ascii")  # what the app relays is a header every server can write


async def test_a_rotation_with_a_hostile_value_is_not_relayed_and_the_session_cookie_stays() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    transport = adding_set_cookie(world, "/api/me", "qlt_0=中文; Path=/api".encode())
    async with client(fastapi_app(config(world, transport))) as http:
        response = await http.get("/me", headers=session(world.fake, cookie))
    assert response.status_code == 200
    assert response.headers.get_list("set-cookie") == []


async def test_a_superscript_max_age_relays_the_rotation_without_a_lifetime() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    transport = adding_set_cookie(world, "/api/me", b"qlt_0=rotated; Max-Age=\xc2\xb2")
    async with client(fastapi_app(config(world, transport))) as http:
        response = await http.get("/me", headers=session(world.fake, cookie))
    assert response.status_code == 200
    (relayed,) = response.headers.get_list("set-cookie")
    assert relayed.startswith("qlt_0=rotated;") and "max-age" not in relayed.lower()


async def test_a_hostile_session_cookie_from_signin_is_the_routers_503() -> None:
    world = make_world()

    async def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/api/signin":
            return response
        content = await response.aread()
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"set-cookie"]
        return httpx.Response(200, headers=[*headers, (b"set-cookie", "qlt_0=中文".encode())], content=content)

    async with client(router_app(config(world, Rewriting(world.fake, rewrite)))) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE


@pytest.mark.parametrize("token", ["\u0100", "a b", "a\nb", "中文"])
async def test_a_token_that_cannot_be_a_cookie_from_signin_is_the_routers_503(token: str) -> None:
    world = make_world()
    body = json.dumps({"payload": {"token": token, "refreshToken": token, "user": {}}}).encode()
    async with client(router_app(config(world, answering(world, "/api/signin", 200, body)), "token")) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE and response.headers.get_list("set-cookie") == []


async def test_a_token_that_cannot_be_a_cookie_from_the_refresh_is_a_503() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    body = json.dumps({"payload": {"token": "\u0100", "refreshToken": "\u0100"}}).encode()
    transport = answering(world, "/api/token/refresh", 200, body)
    async with client(fastapi_app(config(world, transport, require_auth=True))) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 503
    assert response.json()["code"] == UNAVAILABLE


# --- the property test -------------------------------------------------------------------------------------

ENDPOINTS = ("/api/me", "/api/workspaces", "/api/token/refresh", "/api/signin")
# Documented answers: the middleware (docs/faults.md) and the auth router (docs/auth-router.md).
MIDDLEWARE_STATUSES = {200, 401, 503}
ROUTER_STATUSES = {200, 401, 503}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def shaped(endpoint: str, world: World) -> st.SearchStrategy[Any]:
    """Bodies close to what the endpoint should answer, so the draw reaches past the shape checks."""
    user = {"_id": world.alice.id, "username": "alice"}
    if endpoint == "/api/workspaces":
        return st.lists(st.fixed_dictionaries({"_id": st.text(max_size=8)}, optional={"name": json_values}), max_size=3)
    if endpoint == "/api/me":
        return st.fixed_dictionaries(
            {"_id": st.just(world.alice.id)}, optional={"roles": json_values, "x": json_values}
        ) | st.just(user)
    payload = st.fixed_dictionaries(
        {},
        optional={
            "token": json_values | st.text(min_size=1),
            "refreshToken": json_values | st.text(min_size=1),
            "user": json_values,
        },
    )
    return st.fixed_dictionaries({}, optional={"payload": payload | json_values})


def bodies(endpoint: str, world: World) -> st.SearchStrategy[bytes]:
    return st.one_of(
        shaped(endpoint, world).map(lambda value: json.dumps(value).encode()),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.binary(max_size=64),
        st.sampled_from([NESTED, NESTED_OBJECT, b"", b"null", b"\xff\xfe", b"[" * 50]),
    )


cookie_names = st.sampled_from([b"qlt_0", b"token", b"q_access_token", b"other", b"", b"qlt_0 ", b"Qlt_0"])
cookie_attributes = st.lists(
    st.tuples(
        st.sampled_from([b"Max-Age", b"Expires", b"Path", b"Domain", b"SameSite", b"Secure", b"x"]),
        st.binary(max_size=12),
    ),
    max_size=3,
)


@st.composite
def set_cookie_values(draw: st.DrawFn) -> bytes:
    value = draw(st.binary(max_size=16) | st.sampled_from(["中文".encode(), b"eyJ.a.b", b"", b'"q"']))
    attributes = b"".join(b"; " + key + b"=" + val for key, val in draw(cookie_attributes))
    return draw(cookie_names) + b"=" + value + attributes


header_names = st.sampled_from([b"content-type", b"content-encoding", b"content-length", b"x-any"])


@st.composite
def answers(draw: st.DrawFn, world: World) -> Dict[str, Tuple[int, RawHeaders, bytes]]:
    """For some of the endpoints, the answer that replaces the fake's: status, raw headers, body."""
    chosen = draw(st.lists(st.sampled_from(ENDPOINTS), unique=True, min_size=1))
    plan = {}
    for endpoint in chosen:
        status = draw(
            st.sampled_from([200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 502]) | st.integers(200, 599)
        )
        headers: RawHeaders = [(b"set-cookie", value) for value in draw(st.lists(set_cookie_values(), max_size=3))]
        headers += draw(
            st.lists(
                st.tuples(header_names, st.binary(max_size=12) | st.sampled_from([b"gzip", b"br", b"1"])), max_size=2
            )
        )
        plan[endpoint] = (status, headers, draw(bodies(endpoint, world)))
    return plan


def planned(world: World, plan: Dict[str, Tuple[int, RawHeaders, bytes]]) -> Rewriting:
    async def rewrite(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        answer = plan.get(request.url.path)
        if answer is None:
            return response
        await response.aread()
        status, headers, body = answer
        return httpx.Response(status, headers=headers, content=body)

    return Rewriting(world.fake, rewrite)


WORLD = make_world()
CALLERS = ("bearer", "session", "refresh-only", "rejected-access")


def credentials(caller: str) -> Dict[str, str]:
    # Fresh per example: a refresh token is single-use at the fake, as at Qelos.
    tokens = WORLD.fake.issue_tokens(WORLD.alice)
    if caller == "bearer":
        return {"authorization": f"Bearer {tokens.access_token}"}
    if caller == "session":
        return session(WORLD.fake, WORLD.fake.issue_session_cookie(WORLD.alice))
    if caller == "refresh-only":
        return cookie_header(q_refresh_token=tokens.refresh_token)
    return cookie_header(q_access_token=tokens.access_token + "x", q_refresh_token=tokens.refresh_token)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    plan=answers(WORLD),
    caller=st.sampled_from(CALLERS),
    required=st.booleans(),
    mode=st.sampled_from(["session", "token"]),
)
async def test_no_upstream_answer_makes_a_500(
    plan: Dict[str, Tuple[int, RawHeaders, bytes]], caller: str, required: bool, mode: str
) -> None:
    cfg = config(WORLD, planned(WORLD, plan), require_auth=required, timeout=1.0)
    async with client(fastapi_app(cfg)) as http:
        response = await http.get("/me", headers=credentials(caller))
        assert response.status_code in MIDDLEWARE_STATUSES, response.text
        if not required:
            assert response.status_code == 200
        json.loads(response.content)
    async with client(router_app(config(WORLD, planned(WORLD, plan)), mode)) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
        assert response.status_code in ROUTER_STATUSES, response.text
        assert set(response.json()) == (
            {"user", "workspace", "mode"} if response.status_code == 200 else {"code", "message"}
        )
    for header in response.headers.get_list("set-cookie"):
        header.encode("ascii")


# --- a rotation Qelos made survives the answer that failed ---------------------------------------------------


class MeFails(httpx.AsyncBaseTransport):
    """/api/me answers 500: without reaching the fake (so the sibling /api/workspaces is the call that rotates
    the session cookie), or after the fake answered it, rotating the cookie in that very answer."""

    def __init__(self, world: World, *, through_fake: bool) -> None:
        self._fake = world.fake.transport
        self._through_fake = through_fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/api/me":
            return await self._fake.handle_async_request(request)
        kept: RawHeaders = []
        if self._through_fake:
            response = await self._fake.handle_async_request(request)
            await response.aread()
            kept = [(k, v) for k, v in response.headers.raw if k.lower() == b"set-cookie"]
        return httpx.Response(500, headers=kept, content=NESTED)


@pytest.mark.parametrize("through_fake", [False, True], ids=["rotated-by-workspaces", "rotated-by-me"])
async def test_a_rotation_in_a_failed_identity_call_still_reaches_the_browser(through_fake: bool) -> None:
    world = make_world(cookie_rotation_after=60.0)
    cookie = world.fake.issue_session_cookie(world.alice)
    world.fake.clock.advance(61)
    transport = MeFails(world, through_fake=through_fake)
    async with client(fastapi_app(config(world, transport))) as http:
        failed = await http.get("/me", headers=session(world.fake, cookie))
    assert failed.json()["error"] == UNAVAILABLE
    name = world.fake.session_cookie_name
    relayed = [h for h in failed.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(relayed) == 1
    rotated = relayed[0].split(";", 1)[0].partition("=")[2]
    assert rotated and rotated != cookie
    # The old cookie is spent at Qelos (it rotates a cookie once): the relayed one carries the session on.
    async with client(fastapi_app(config(world, world.fake.transport))) as http:
        after = await http.get("/me", headers=session(world.fake, rotated))
    assert after.json()["user"]["username"] == "alice"
