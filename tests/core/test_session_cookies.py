"""Real Qelos browser sessions: the qlt_ session cookie, relayed and rewritten for the app."""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Dict, List
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, StreamingResponse

from qelos_integrator_fastapi import QelosIntegratorMiddleware, WorkspaceSwitchError

from ..support import World, client, config_for, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio

ROTATION_AFTER = 1800


def session_app(world: World, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake, **options))

    @app.post("/login")
    async def login(request: Request) -> Dict[str, Any]:
        body = await request.json()
        result: Dict[str, Any] = await request.state.qelos.sdk.authentication.signin(body)
        return {"user": result["payload"]["user"]["username"]}

    @app.get("/dashboard")
    async def dashboard(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        return {
            "user": qelos.user.get("username") if qelos.user else None,
            "workspace": qelos.workspace["name"] if qelos.workspace else None,
            "mode": qelos.mode.value,
        }

    @app.post("/workspaces/{workspace_id}/activate")
    async def activate(workspace_id: str, request: Request) -> Dict[str, Any]:
        try:
            workspace = await request.state.qelos.activate_workspace(workspace_id)
        except WorkspaceSwitchError as exc:
            return {"error": exc.code}
        return {"active": workspace["name"]}

    @app.post("/logout")
    async def logout(request: Request) -> Dict[str, Any]:
        await request.state.qelos.sdk.authentication.logout()
        return {"ok": True}

    @app.get("/stream-then-logout")
    async def stream_then_logout(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"started;"
            await request.state.qelos.sdk.authentication.logout()
            yield b"done"

        return StreamingResponse(body())

    return app


def session_cookies(response: Any, name: str = "qlt_0") -> list[str]:
    return [h for h in set_cookie_headers(response) if h.startswith(f"{name}=")]


async def test_cookie_sign_in_reaches_page_routes_and_rotation_follows() -> None:
    world = make_world()
    async with client(session_app(world)) as browser:
        login = await browser.post("/login", json={"username": "alice", "password": "alice-pass"})
        assert login.json() == {"user": "alice"}
        (relayed,) = session_cookies(login)
        attributes = [part.strip() for part in relayed.split(";")]
        assert "Path=/" in attributes
        assert "HttpOnly" in attributes
        assert "SameSite=lax" in attributes
        assert "Secure" not in attributes  # the app was reached over plain http
        assert not any(a.lower().startswith("domain=") for a in attributes)
        assert "Max-Age=2592000" in attributes
        first_cookie = browser.cookies["qlt_0"]

        page = await browser.get("/dashboard")
        assert page.json() == {"user": "alice", "workspace": "Acme & Co", "mode": "session"}
        assert session_cookies(page) == []  # an unchanged cookie is never re-sent

        world.fake.clock.advance(ROTATION_AFTER + 1)
        world.fake.reset_log()
        rotated = await browser.get("/dashboard")
        assert rotated.json()["user"] == "alice"
        assert len(session_cookies(rotated)) == 1
        assert "Path=/" in session_cookies(rotated)[0]
        second_cookie = browser.cookies["qlt_0"]
        assert second_cookie != first_cookie

        world.fake.reset_log()
        after = await browser.get("/dashboard")
        assert after.json()["user"] == "alice"
        sent = {r.headers.get("cookie") for r in world.fake.requests}
        assert sent == {f"qlt_0={second_cookie}"}


async def test_activating_another_workspace_moves_the_next_request() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with client(session_app(world)) as browser:
        browser.cookies.set("qlt_0", cookie, domain="app.test")
        assert (await browser.get("/dashboard")).json()["workspace"] == "Acme & Co"
        switched = await browser.post(f"/workspaces/{world.globex.id}/activate")
        assert switched.json() == {"active": "Globex"}
        assert len(session_cookies(switched)) == 1
        assert browser.cookies["qlt_0"] != cookie
        after = (await browser.get("/dashboard")).json()
        activated = browser.cookies["qlt_0"]
        world.fake.clock.advance(ROTATION_AFTER)
        # /api/me and /api/workspaces race for the rotation: /api/me may still answer from the old cookie.
        await browser.get("/dashboard")
        assert browser.cookies["qlt_0"] != activated
        rotated = (await browser.get("/dashboard")).json()

    # Qelos signs the activated cookie from a user loaded without username and phone; rotation restores them.
    assert after == {"user": None, "workspace": "Globex", "mode": "session"}
    assert rotated == {"user": "alice", "workspace": "Globex", "mode": "session"}


async def test_token_callers_cannot_activate_and_are_told_why() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(session_app(world)) as browser:
        response = await browser.post(
            f"/workspaces/{world.globex.id}/activate", headers={"Authorization": f"Bearer {pair.access_token}"}
        )
    assert response.json() == {"error": "WORKSPACE_SWITCH_NEEDS_SESSION"}
    assert world.fake.count("/activate") == 0


async def test_logout_clears_the_session_cookie() -> None:
    world = make_world()
    async with client(session_app(world)) as browser:
        await browser.post("/login", json={"username": "bob", "password": "bob-pass"})
        assert "qlt_0" in browser.cookies
        out = await browser.post("/logout")
        (cleared,) = session_cookies(out)
        assert "Max-Age=0" in cleared
        assert "Path=/" in cleared
        assert "qlt_0" not in browser.cookies
        assert (await browser.get("/dashboard")).json()["user"] is None


async def test_expired_or_forged_session_cookie_is_anonymous_and_leaves_no_cookie() -> None:
    world = make_world()
    expired = world.fake.issue_session_cookie(world.alice)
    world.fake.clock.advance(31 * 86400)
    for value in (expired, "forged.session.cookie"):
        async with client(session_app(world)) as browser:
            browser.cookies.set("qlt_0", value, domain="app.test")
            page = await browser.get("/dashboard")
        assert page.json()["user"] is None
        assert set_cookie_headers(page) == []


async def test_only_the_session_cookie_is_sent_upstream() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.bob)
    async with client(session_app(world)) as browser:
        browser.cookies.set("theme", "dark")
        browser.cookies.set("qlt_0", cookie, domain="app.test")
        browser.cookies.set("csrftoken", "abc")
        assert (await browser.get("/dashboard")).json()["user"] == "bob"
    assert {r.headers.get("cookie") for r in world.fake.requests} == {f"qlt_0={cookie}"}


async def test_legacy_token_cookie_is_accepted() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.bob)
    async with client(session_app(world)) as browser:
        browser.cookies.set("token", cookie)
        assert (await browser.get("/dashboard")).json()["user"] == "bob"


async def test_relayed_cookie_is_secure_over_https_and_uses_the_configured_path() -> None:
    world = make_world()
    app = session_app(world, session_cookie_path="/app", session_cookie_domain="example.test")
    async with client(app, base_url="https://app.example.test") as browser:
        login = await browser.post("/login", json={"username": "alice", "password": "alice-pass"})
    (relayed,) = session_cookies(login)
    attributes = [part.strip() for part in relayed.split(";")]
    assert "Secure" in attributes
    assert "Path=/app" in attributes
    assert "Domain=example.test" in attributes


async def test_cookie_changes_after_the_response_started_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.bob)
    caplog.set_level(logging.WARNING, "qelos_integrator_fastapi")
    async with client(session_app(world)) as browser:
        browser.cookies.set("qlt_0", cookie, domain="app.test")
        response = await browser.get("/stream-then-logout")
    assert response.text == "started;done"
    assert session_cookies(response) == []
    warnings = [r for r in caplog.records if "after the response started" in r.getMessage()]
    assert len(warnings) == 1
    assert cookie not in caplog.text


async def test_seed_social_login_through_the_request_sdk_ends_with_a_page_session() -> None:
    world = make_world()
    world.fake.set_social_user(world.bob)
    app = session_app(world)

    @app.get("/auth/google")
    async def google(request: Request) -> RedirectResponse:
        url = request.state.qelos.sdk.authentication.get_social_login_url("google", return_url="/auth/callback")
        return RedirectResponse(url)

    @app.get("/auth/callback")
    async def callback(rt: str, request: Request) -> RedirectResponse:
        await request.state.qelos.sdk.authentication.exchange_auth_callback(rt)
        return RedirectResponse("/dashboard")

    async with client(app) as browser:
        start = await browser.get("/auth/google")
        assert start.status_code == 307
        qelos_url = start.headers["location"]
        assert qelos_url.startswith(f"{world.fake.url}/api/auth/google?")
        async with httpx.AsyncClient(transport=world.fake.transport) as provider:
            bounce = await provider.get(qelos_url)
        assert bounce.status_code == 302
        back = urlsplit(bounce.headers["location"])
        assert back.path == "/auth/callback"
        done = await browser.get(f"/auth/callback?{back.query}")
        assert done.status_code == 307
        (relayed,) = session_cookies(done)
        assert "Path=/" in relayed
        page = await browser.get("/dashboard")
    assert page.json()["user"] == "bob"
    assert page.json()["mode"] == "session"


async def test_session_mode_needs_no_redis_parallel_requests_on_separate_workers_all_sign_in() -> None:
    # Separate middlewares share nothing, as separate workers without Redis. Qelos rotates a cookie older than
    # 30 min once and keeps accepting the old one (contract §1.6, §2.10), so no request of the burst can lose.
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    world.fake.clock.advance(ROTATION_AFTER + 1)
    workers = [session_app(world) for _ in range(3)]
    answers: List[httpx.Response] = []

    async def one(app: FastAPI) -> None:
        async with client(app) as http:
            answers.append(await http.get("/dashboard", headers={"cookie": f"qlt_0={cookie}"}))

    async with anyio.create_task_group() as tg:
        for i in range(12):
            tg.start_soon(one, workers[i % 3])
    assert [a.json()["user"] for a in answers] == ["alice"] * 12
    assert sum(1 for a in answers if session_cookies(a)) == 1  # rotated once, by whichever worker came first
