"""The fault matrix: every upstream fault has a designed status, body and log line (docs/faults.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Dict, Optional

import httpx
import pytest
from fastapi import Depends, FastAPI

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, QelosRequestContext, require_user

from ..support import Rewriting, client, config_for, cookie_header, fastapi_app, make_world, set_cookie_headers

# The 503 body of the product: {"code", "message"} (errors.refusal).
UNAVAILABLE = {
    "code": "QELOS_UNAVAILABLE",
    "message": "Qelos could not be asked who is calling (unreachable, slow or an unusable answer); retry shortly",
}

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Fault:
    name: str
    endpoint: str
    options: Dict[str, Any]
    status: int
    log: str

    @property
    def body(self) -> Dict[str, str]:
        return {"code": "UNAUTHORIZED"} if self.status == 401 else UNAVAILABLE


def down(name: str, log: str, **options: Any) -> Fault:
    return Fault(name, "GET /api/me", options, 503, log)


MATRIX = [
    down("dropped connection", "failed: RemoteProtocolError", drop=True),
    down("read timeout", "timed out after 0.3s", latency=2.0),
    down("5xx", "answered 502 (bad gateway)", status=502, body={"message": "bad gateway"}),
    down("non-JSON body", "body that is not JSON", malformed=True),
    down("2xx other than 200", "GET /api/me answered 201", status=201, body={"_id": "a-user-id"}),
    down("wrong shape", "without a user object", status=200, body={"hello": "world"}),
    down(
        "tenant/host mismatch",
        "must be the tenant's own domain",
        status=400,
        body={"message": "no website for host: 10.0.0.7"},
    ),
    Fault(
        "credential rejected",
        "GET /api/me",
        {"status": 401, "body": {"message": "authorization token is not valid."}},
        401,
        "rejected the token credential",
    ),
    Fault("credential forbidden", "GET /api/me", {"status": 403}, 401, "rejected the token credential"),
]


def ids(fault: Fault) -> str:
    return fault.name


@pytest.mark.parametrize("fault", MATRIX, ids=ids)
async def test_required_auth_answers_the_designed_status(fault: Fault, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "qelos_integrator_fastapi")
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject(fault.endpoint, **fault.options)
    app = fastapi_app(config_for(world.fake, require_auth=True, timeout=0.3))
    async with client(app) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == fault.status
    assert response.json() == fault.body
    if fault.status == 401:
        assert response.headers["www-authenticate"] == "Bearer"
    else:
        assert response.headers["retry-after"] == "5"
    assert fault.log in caplog.text
    assert pair.access_token not in caplog.text


@pytest.mark.parametrize("fault", MATRIX, ids=ids)
async def test_optional_auth_is_anonymous_with_the_reason_recorded(fault: Fault) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject(fault.endpoint, **fault.options)
    async with client(fastapi_app(config_for(world.fake, timeout=0.3))) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 200
    assert response.json()["user"] is None
    expected: Optional[str] = None if fault.status == 401 else "QELOS_UNAVAILABLE"
    assert response.json()["error"] == expected


async def test_unreachable_qelos_is_503_not_401() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(refuse), require_auth=True)
    async with client(fastapi_app(config)) as http:
        response = await http.get("/me", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 503
    assert response.json() == UNAVAILABLE


@pytest.mark.parametrize(
    ("options", "log"),
    [
        ({"status": 500, "body": {"message": "Failed to load workspaces"}}, "workspace list did not"),
        ({"status": 200, "body": ["not-a-workspace"]}, "without a list of workspaces"),
        ({"status": 200, "body": [{"name": "no id"}]}, "without a list of workspaces"),
    ],
)
async def test_workspace_list_failure_keeps_the_user(
    options: Dict[str, Any], log: str, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/workspaces", **options)
    async with client(fastapi_app(config_for(world.fake, require_auth=True))) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 200
    assert response.json()["user"]["_id"] == world.alice.id
    assert response.json()["workspaces"] == []
    assert response.json()["workspace"] is None
    assert log in caplog.text


async def test_refresh_endpoint_down_is_503_and_clears_no_cookie() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("POST /api/token/refresh", status=503, body={"message": "down"})
    app = fastapi_app(config_for(world.fake, require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert response.status_code == 503
    assert set_cookie_headers(response) == []


async def test_cookies_from_a_refresh_land_even_when_the_next_call_fails() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/me", status=500, body={"message": "boom"})
    app = fastapi_app(config_for(world.fake, require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    # The single-use refresh token was spent: its successor must reach the browser regardless.
    assert response.status_code == 503
    names = sorted(h.split("=", 1)[0] for h in set_cookie_headers(response))
    assert names == ["q_access_token", "q_refresh_token"]


async def test_require_user_makes_the_same_401_503_distinction() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/private")
    async def private(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> str:
        return "ok"

    async with client(app) as http:
        world.fake.inject("GET /api/me", status=500)
        down = await http.get("/private", headers={"Authorization": f"Bearer {pair.access_token}"})
        world.fake.clear_faults()
        anonymous = await http.get("/private")
    assert (down.status_code, down.json()) == (503, {"detail": UNAVAILABLE})
    assert (anonymous.status_code, anonymous.json()) == (401, {"detail": {"code": "UNAUTHORIZED"}})


async def test_a_slow_refresh_is_awaited_longer_than_identity_calls() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("POST /api/token/refresh", latency=0.5)
    app = fastapi_app(config_for(world.fake, require_auth=True, timeout=0.2, refresh_timeout=3.0))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    # Abandoning it at `timeout` would have let Qelos spend the single-use token unseen.
    assert response.status_code == 200
    assert response.json()["user"]["_id"] == world.alice.id
    assert sorted(h.split("=", 1)[0] for h in set_cookie_headers(response)) == ["q_access_token", "q_refresh_token"]


async def test_a_refresh_slower_than_refresh_timeout_is_503(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("POST /api/token/refresh", latency=2.0)
    app = fastapi_app(config_for(world.fake, require_auth=True, timeout=0.1, refresh_timeout=0.3))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert "POST /api/token/refresh timed out after 0.3s" in caplog.text
    assert set_cookie_headers(response) == []


async def test_cookies_land_on_the_middlewares_own_401() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.inject("GET /api/me", status=401, body={"message": "authorization token is not valid."})
    app = fastapi_app(config_for(world.fake, require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    assert (response.status_code, response.json()) == (401, {"code": "UNAUTHORIZED"})
    # The refresh spent the old token; its successor must still reach the browser.
    assert sorted(h.split("=", 1)[0] for h in set_cookie_headers(response)) == ["q_access_token", "q_refresh_token"]


# _client.py's trust_env=False is kept but cannot be observed: httpx reads proxy variables only when no
# transport is given, and QelosClient always passes one (its own pool or config.transport).
@pytest.mark.parametrize("location", ["/api/me/elsewhere", "http://elsewhere.test/api/me"])
async def test_a_redirect_is_an_outage_and_is_never_followed(location: str) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)

    async def redirect_me(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        return httpx.Response(302, headers={"location": location}) if request.url.path == "/api/me" else response

    transport = Rewriting(world.fake, redirect_me)
    app = fastapi_app(config_for(world.fake, transport=transport, require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    sent = sorted(str(r.url) for r in transport.sent)
    assert sent == [f"{world.fake.url}/api/me", f"{world.fake.url}/api/workspaces"]  # and nowhere else


@pytest.mark.parametrize("missing", ["token", "refreshToken", "both"])
async def test_a_refresh_answer_without_both_new_tokens_is_an_outage(missing: str) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    other = world.fake.issue_tokens(world.alice)
    payload = {"token": other.access_token, "refreshToken": other.refresh_token}
    payload = {key: "" if missing in (key, "both") else value for key, value in payload.items()}
    world.fake.inject("POST /api/token/refresh", status=200, body={"payload": payload})
    app = fastapi_app(config_for(world.fake, require_auth=True))
    async with client(app) as http:
        response = await http.get("/me", headers=cookie_header(q_refresh_token=pair.refresh_token))
    # Accepting it would leave a spent refresh token, or no access token, in the browser's cookies.
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert set_cookie_headers(response) == []
