"""The pooled QelosClient: what each Qelos answer becomes, in the log lines and 503 bodies users read."""

from __future__ import annotations

import logging
import socket
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, create_qelos_auth_router
from qelos_integrator_fastapi._client import QelosClient
from qelos_integrator_fastapi.testing import FakeQelos

from ..support import Rewriting, client, config_for, cookie_header, fastapi_app, make_world, with_set_cookies

pytestmark = pytest.mark.anyio

BASE = "https://app.test"
NO_WEBSITE = "no website for host: app_url must be the tenant's own domain, not an IP address"


def warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"status": 200, "body": {"hello": "world"}}, "GET /api/me answered 200 without a user object"),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, "GET /api/me answered 502"),
        ({"status": 500, "body": {"message": 42}}, "GET /api/me answered 500"),
        ({"status": 500, "body": ["not", "an", "object"]}, "GET /api/me answered 500"),
        ({"status": 500, "body": {"message": "m" * 300}}, f"GET /api/me answered 500 ({'m' * 200})"),
        (
            {"status": 400, "body": {"message": "no website for host: 10.0.0.7"}},
            f"GET /api/me answered 400 ({NO_WEBSITE})",
        ),
    ],
)
async def test_an_unusable_identity_answer_is_logged_as_qelos_gave_it(
    options: Dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # docs/faults.md promises these lines: what was called, the status, and Qelos's own message (cut at 200).
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/me", **options)
    async with client(fastapi_app(config_for(world.fake, require_auth=True))) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 503
    assert warnings(caplog) == [f"could not resolve the Qelos user: {reason}"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"status": 500, "body": {"message": "boom"}}, "GET /api/workspaces answered 500 (boom)"),
        ({"status": 200, "body": {"_id": "one"}}, "GET /api/workspaces answered 200 without a list of workspaces"),
    ],
)
async def test_a_failed_workspace_list_is_logged_as_qelos_gave_it(
    options: Dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/workspaces", **options)
    async with client(fastapi_app(config_for(world.fake, require_auth=True))) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.json()["workspaces"] == []
    assert warnings(caplog) == [f"the Qelos user resolved but the workspace list did not ({reason}); workspaces is []"]


async def test_a_session_rotation_survives_a_failed_workspace_list() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)

    async def rotate_then_fail(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path == "/api/me":
            return await with_set_cookies(response, "qlt_0=rotated; Path=/api; HttpOnly")
        if request.url.path == "/api/workspaces":
            return httpx.Response(500, json={"message": "boom"})
        return response

    config = config_for(world.fake, transport=Rewriting(world.fake, rotate_then_fail))
    async with client(fastapi_app(config)) as http:
        response = await http.get("/me", headers=cookie_header(qlt_0=cookie))
    assert response.json()["user"]["_id"] == world.alice.id
    assert response.json()["workspaces"] == []
    # Qelos rotated the session while answering /api/me: losing that would sign the browser out.
    assert [h.split(";", 1)[0] for h in response.headers.get_list("set-cookie")] == ["qlt_0=rotated"]


async def test_each_call_hands_its_timeout_to_the_transport() -> None:
    # httpx's own timeouts bind a network transport: identity calls get `timeout`, a refresh `refresh_timeout`.
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)

    async def unchanged(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return response

    transport = Rewriting(world.fake, unchanged)
    config = config_for(world.fake, transport=transport, timeout=httpx.Timeout(2.0, connect=1.0), refresh_timeout=7.0)
    async with client(fastapi_app(config)) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.json()["user"]["_id"] == world.alice.id
    timeouts = {r.url.path: r.extensions["timeout"] for r in transport.sent}
    identity = {"connect": 1.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    refresh = {"connect": 7.0, "read": 7.0, "write": 7.0, "pool": 7.0}
    assert timeouts == {"/api/token/refresh": refresh, "/api/me": identity, "/api/workspaces": identity}


@pytest.mark.parametrize("body", [["token"], {"payload": "token"}, {"payload": ["token", "refreshToken"]}])
async def test_a_refresh_answer_of_the_wrong_shape_is_an_outage(body: Any, caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("POST /api/token/refresh", status=200, body=body)
    async with client(fastapi_app(config_for(world.fake, require_auth=True))) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 503
    reason = "POST /api/token/refresh answered 200 without payload.token/refreshToken"
    assert warnings(caplog) == [f"could not resolve the Qelos user: {reason}"]


async def test_a_closed_client_opens_a_new_pool_when_used_again() -> None:
    # A lifespan shutdown closes the pool; an app that starts again must not find a dead one.
    world = make_world()
    qelos = QelosClient(config_for(world.fake))
    pair = world.fake.issue_tokens(world.alice)
    headers = {"authorization": f"Bearer {pair.access_token}"}
    assert (await qelos.identify(headers)).user["_id"] == world.alice.id
    await qelos.aclose()
    assert (await qelos.identify(headers)).user["_id"] == world.alice.id
    assert qelos.clients_opened == 2
    await qelos.aclose()


def router_fake() -> FakeQelos:
    fake = FakeQelos(website_urls=[BASE])
    alice = fake.add_user("alice", "alice-pass", "alice@example.com")
    fake.add_workspace("Acme", members={alice: ["user"]})
    fake.set_social_user(alice)
    return fake


def router_app(fake: FakeQelos, **router_options: Any) -> FastAPI:
    config = config_for(fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, secret_key="s" * 32, **router_options))
    return app


def body_of(response: httpx.Response) -> Dict[str, Any]:
    body: Dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"status": 500, "body": {"message": "boom"}}, "POST /api/signin answered 500 (boom)"),
        ({"status": 200, "body": ["payload"]}, "POST /api/signin answered 200 without a payload object"),
        ({"status": 200, "body": {"payload": "alice"}}, "POST /api/signin answered 200 without a payload object"),
    ],
)
async def test_a_sign_in_qelos_cannot_complete_is_503_with_the_reason(options: Dict[str, Any], message: str) -> None:
    fake = router_fake()
    fake.inject("POST /api/signin", **options)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router_app(fake)), base_url=BASE) as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert (response.status_code, body_of(response)) == (503, {"code": "QELOS_UNAVAILABLE", "message": message})


async def social_callback(fake: FakeQelos, app: FastAPI, **fault: Any) -> httpx.Response:
    """A social login up to Qelos's redirect back, then the callback with ``fault`` injected at Qelos."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        start = await http.get("/auth/github", params={"next": "/home"})
        async with httpx.AsyncClient(transport=fake.transport) as qelos:
            back = urlsplit((await qelos.get(start.headers["location"])).headers["location"])
        assert "rt" in parse_qs(back.query)
        for endpoint in ("POST /api/auth/callback", "POST /api/token/refresh"):
            fake.inject(endpoint, **fault)
        return await http.get(f"{back.path}?{back.query}")


REJECTED = {"code": "SOCIAL_LOGIN_REJECTED", "message": "Qelos did not accept the social login; start again"}


@pytest.mark.parametrize("mode", ["session", "token"])
@pytest.mark.parametrize("status", [400, 401, 403])
async def test_a_social_login_qelos_refuses_is_rejected_not_an_outage(mode: str, status: int) -> None:
    # Qelos answers 400 to an rt it no longer knows: the browser must start again, not retry a 503.
    fake = router_fake()
    response = await social_callback(fake, router_app(fake, mode=mode), status=status, body={"message": "bad rt"})
    assert (response.status_code, body_of(response)) == (401, REJECTED)


@pytest.mark.parametrize(
    ("mode", "options", "message"),
    [
        ("session", {"status": 404, "body": {"message": "gone"}}, "POST /api/auth/callback answered 404 (gone)"),
        ("session", {"status": 200, "body": {}}, "POST /api/auth/callback answered 200 without a payload object"),
        ("session", {"status": 200, "body": []}, "POST /api/auth/callback answered 200 without a payload object"),
        ("token", {"status": 404, "body": {"message": "gone"}}, "POST /api/token/refresh answered 404 (gone)"),
        (
            "token",
            {"status": 200, "body": {"payload": {}}},
            "POST /api/token/refresh answered 200 without payload.token/refreshToken",
        ),
    ],
)
async def test_a_social_login_qelos_cannot_complete_is_503_with_the_reason(
    mode: str, options: Dict[str, Any], message: str
) -> None:
    fake = router_fake()
    response = await social_callback(fake, router_app(fake, mode=mode), **options)
    assert (response.status_code, body_of(response)) == (503, {"code": "QELOS_UNAVAILABLE", "message": message})


async def test_a_sign_out_qelos_refuses_to_record_is_logged_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    fake = router_fake()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router_app(fake)), base_url=BASE) as http:
        await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
        fake.inject("POST /api/logout", status=500, body={"message": "down"})
        out = await http.post("/auth/logout")
    assert out.json() == {"signed_out": True, "revoked": False}
    assert warnings(caplog) == [
        "sign-out could not reach Qelos (POST /api/logout answered 500 (down)); the app's cookies are cleared anyway"
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("app_url", "where_and_why"),
    [
        # Nothing listens there: the port refuses.
        ("http://127.0.0.1:{port}", "127.0.0.1:{port}: connection refused"),
        # RFC 6761: .invalid never resolves (answered by the local resolver, no network needed).
        ("https://qelos.invalid", "qelos.invalid:443: the name does not resolve"),
    ],
    ids=["refused", "unresolvable"],
)
async def test_an_unreachable_qelos_is_logged_with_its_host_port_and_why(
    caplog: pytest.LogCaptureFixture, app_url: str, where_and_why: str
) -> None:
    port = _free_port()
    config = QelosConfig(app_url=app_url.format(port=port), timeout=2.0)
    caplog.set_level(logging.WARNING, "qelos_integrator_fastapi")
    async with client(fastapi_app(config)) as http:
        response = await http.get("/whoami", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 200
    assert caplog.messages == [
        f"could not resolve the Qelos user: GET /api/me failed: ConnectError ({where_and_why.format(port=port)})"
    ]
