"""The optional auth router: password sign-in (session and token modes), sign-out, social login with signed state."""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosConfigError,
    QelosIntegratorMiddleware,
    create_qelos_auth_router,
    create_qelos_auth_routes,
)
from qelos_integrator_fastapi._routes import STATE_COOKIE, STATE_SALT, safe_return_path
from qelos_integrator_fastapi.testing import FakeQelos

SECRET = "test-secret-key-of-some-length"
BASE = "https://app.test"


@pytest.fixture
def fake() -> FakeQelos:
    fake = FakeQelos(website_urls=[BASE])
    alice = fake.add_user("alice", "alice-pass", "alice@example.com", first_name="Alice", last_name="Liddell")
    fake.add_workspace("Acme", members={alice: ["admin", "user"]})
    fake.set_social_user(alice)
    return fake


def config_for(fake: FakeQelos, **options: Any) -> QelosConfig:
    return QelosConfig(app_url=fake.url, transport=fake.transport, **options)


async def whoami(request: Request) -> Response:
    qelos = request.state.qelos
    user = qelos.user["username"] if qelos and qelos.user else None
    return JSONResponse({"user": user, "mode": qelos.mode.value if qelos else None})


def build_app(fake: FakeQelos, **router_options: Any) -> FastAPI:
    config = config_for(fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, secret_key=SECRET, **router_options))
    app.add_api_route("/whoami", whoami)
    return app


def browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def set_cookies(response: httpx.Response, name: Optional[str] = None) -> List[str]:
    headers = response.headers.get_list("set-cookie")
    return [h for h in headers if name is None or h.startswith(f"{name}=")]


def assert_error(response: httpx.Response, status: int, code: str, message: Optional[str] = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"]
    if message is not None:
        assert body["message"] == message


class TestConfiguration:
    def test_missing_secret_is_a_clear_error(self, fake: FakeQelos, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("QELOS_INTEGRATOR_SECRET", raising=False)
        with pytest.raises(QelosConfigError, match="QELOS_INTEGRATOR_SECRET") as raised:
            create_qelos_auth_router(config_for(fake))
        assert str(raised.value) == (
            "the Qelos auth router signs the OAuth state of social logins and needs a secret key: pass "
            "secret_key=... or set QELOS_INTEGRATOR_SECRET (for example to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), the same in every worker; "
            "or pass providers=() to serve password sign-in only"
        )
        assert raised.value.code == "QELOS_CONFIG_INVALID"

    @pytest.mark.parametrize(("secret", "message"), [(" " * 20, "needs a secret key"), ("x" * 15, "at least 16")])
    def test_blank_or_short_secrets_are_refused(self, fake: FakeQelos, secret: str, message: str) -> None:
        with pytest.raises(QelosConfigError, match=message):
            create_qelos_auth_router(config_for(fake), secret_key=secret)

    def test_a_sixteen_character_secret_is_enough(self, fake: FakeQelos) -> None:
        assert create_qelos_auth_router(config_for(fake), secret_key="x" * 16).routes

    def test_secret_from_the_environment(self, fake: FakeQelos, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("QELOS_INTEGRATOR_SECRET", SECRET)
        paths = {route.path for route in create_qelos_auth_router(config_for(fake)).routes}  # type: ignore[attr-defined]
        assert paths == {"/auth/login", "/auth/logout", "/auth/callback", "/auth/{provider}"}

    def test_password_only_needs_no_secret(self, fake: FakeQelos, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("QELOS_INTEGRATOR_SECRET", raising=False)
        router = create_qelos_auth_router(config_for(fake), providers=(), prefix="/account")
        assert {route.path for route in router.routes} == {"/account/login", "/account/logout"}  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"secret_key": "short"}, "at least 16"),
            ({"mode": "cookie"}, "mode must be"),
            ({"prefix": "auth"}, "prefix"),
            ({"providers": ["myspace"]}, "providers"),
            ({"default_return_url": "https://evil.example"}, "default_return_url"),
            ({"login_page": "//evil.example"}, "login_page"),
            ({"public_url": "ftp://qelos"}, "public_url"),
            ({"state_max_age": 0}, "state_max_age"),
        ],
    )
    def test_bad_options_are_rejected(self, fake: FakeQelos, options: Dict[str, Any], message: str) -> None:
        options = {"secret_key": SECRET, **options}
        with pytest.raises(QelosConfigError, match=message):
            create_qelos_auth_router(config_for(fake), **options)

    def test_api_token_config_is_rejected(self, fake: FakeQelos) -> None:
        with pytest.raises(QelosConfigError, match="api_token"):
            create_qelos_auth_router(config_for(fake, api_token="ql_x"), secret_key=SECRET)


# Mutants of safe_return_path that no test can kill (docs/survivors/_return_path.md): `urlsplit(value)` ->
# `urlsplit(None)` and `parts.scheme or parts.netloc` -> `and` are equivalent, because a value that starts with one
# "/" and holds no control character, space or backslash never has a scheme or a netloc; the check is a second line
# of defence.
@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        # Browsers read three or more slashes as two: a scheme-relative URL to evil.example.
        "///evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil",
        "/\t/evil",
        # urlsplit drops CR and LF, but the value itself would go into a Location header.
        "/\r\nSet-Cookie: x=y",
        "/a b",
        "/\x00",
        "/\x7f",
        "/" + "a" * 2048,
        "",
        None,
        7,
        b"/bytes",
    ],
)
def test_foreign_return_urls_are_refused(value: Any) -> None:
    assert safe_return_path(value) is None


@pytest.mark.parametrize("value", ["/", "/dashboard?tab=1#top", "/a/b%2F%2Fc", "/!~\x80é", "/" + "a" * 2047])
def test_relative_return_paths_are_kept(value: str) -> None:
    assert safe_return_path(value) == value


@pytest.mark.anyio
class TestPasswordLogin:
    async def test_session_mode_relays_a_first_party_session_cookie(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            assert login.status_code == 200
            assert login.json()["user"]["username"] == "alice"
            assert login.json()["workspace"]["name"] == "Acme"
            (cookie,) = set_cookies(login, "qlt_0")
            assert "Path=/;" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert "Domain" not in cookie and "Secure" in cookie
            assert (await http.get("/whoami")).json() == {"user": "alice", "mode": "session"}
        (signin,) = [r for r in fake.requests if r.path == "/api/signin"]
        assert fake.count("POST /api/signin") == 1
        assert signin.method == "POST"

    async def test_token_mode_writes_the_q_cookies(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, mode="token")) as http:
            login = await http.post("/auth/login", json={"username": "alice@example.com", "password": "alice-pass"})
            assert login.status_code == 200
            assert login.json()["mode"] == "token"
            assert "token" not in login.text.lower().replace('"mode":"token"', "")
            assert set_cookies(login, "q_access_token") and set_cookies(login, "q_refresh_token")
            assert not set_cookies(login, "qlt_0")
            # Qelos rewrites the username to the email after a sign-in by email (contract §2.6).
            assert (await http.get("/whoami")).json() == {"user": "alice@example.com", "mode": "token"}

    async def test_form_login_redirects_to_next(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            login = await http.post(
                "/auth/login", data={"username": "alice", "password": "alice-pass", "next": "/x?y=1"}
            )
            assert login.status_code == 303
            assert login.headers["location"] == "/x?y=1"
            assert set_cookies(login, "qlt_0")

    async def test_session_login_clears_stale_token_cookies(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            http.cookies.set("q_access_token", "stale", domain="app.test")
            login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            (cleared,) = set_cookies(login, "q_access_token")
            assert "Max-Age=0" in cleared
            assert (await http.get("/whoami")).json()["mode"] == "session"

    async def test_wrong_password(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            response = await http.post("/auth/login", json={"username": "alice", "password": "nope"})
        assert_error(response, 401, "INVALID_CREDENTIALS")
        assert not set_cookies(response)

    async def test_wrong_password_in_a_form_goes_back_to_the_login_page(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, login_page="/login")) as http:
            response = await http.post("/auth/login", data={"username": "alice", "password": "no", "next": "/p"})
        assert response.status_code == 303
        assert response.headers["location"] == "/login?error=INVALID_CREDENTIALS&next=%2Fp"

    @pytest.mark.parametrize(
        ("content", "content_type", "status", "code"),
        [
            (b"{not json", "application/json", 400, "INVALID_BODY"),
            (b"[1, 2]", "application/json", 422, "INVALID_BODY"),
            (b"[" * 50_000, "application/json", 400, "INVALID_BODY"),
            (b'{"username": "alice"}', "application/json", 422, "MISSING_CREDENTIALS"),
            (b'{"username": 7, "password": "x"}', "application/json", 422, "MISSING_CREDENTIALS"),
            (b'{"username": "a", "password": "b", "workspace": {"$ne": 1}}', "application/json", 422, "INVALID_BODY"),
            (b"username=\xff&password=x", "application/x-www-form-urlencoded", 400, "INVALID_BODY"),
            (b"username=a&password=b", "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
            (b"", "", 415, "UNSUPPORTED_MEDIA_TYPE"),
            (b"x" * 70_000, "application/json", 413, "BODY_TOO_LARGE"),
        ],
    )
    async def test_bad_bodies(self, fake: FakeQelos, content: bytes, content_type: str, status: int, code: str) -> None:
        async with browser(build_app(fake)) as http:
            response = await http.post("/auth/login", content=content, headers={"content-type": content_type})
        assert_error(response, status, code)
        assert fake.count("POST /api/signin") == 0

    async def test_streamed_body_over_the_limit(self, fake: FakeQelos) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(3):
                yield b"x" * 30_000

        async with browser(build_app(fake)) as http:
            response = await http.post("/auth/login", content=chunks(), headers={"content-type": "application/json"})
        assert_error(response, 413, "BODY_TOO_LARGE")

    @pytest.mark.parametrize(
        "next_url", ["//evil.example", "///evil.example", "https://evil.example/", "/\\evil.example", "/\r\nX: y"]
    )
    async def test_foreign_next_is_refused(self, fake: FakeQelos, next_url: str) -> None:
        async with browser(build_app(fake)) as http:
            body = {"username": "alice", "password": "alice-pass", "next": next_url}
            response = await http.post("/auth/login", data=body)
        assert_error(response, 400, "UNSAFE_RETURN_URL")
        assert response.json()["message"] == "next must be a relative path on this site, such as /dashboard"
        assert not set_cookies(response)

    async def test_a_browser_form_with_a_foreign_next_goes_back_to_the_login_page(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, login_page="/login")) as http:
            body = {"username": "alice", "password": "alice-pass", "next": "https://evil.example/"}
            response = await http.post("/auth/login", data=body)
        # The login page explains; the foreign URL is dropped, never echoed back, and nobody is signed in.
        assert response.status_code == 303
        assert response.headers["location"] == "/login?error=UNSAFE_RETURN_URL"
        assert not set_cookies(response)
        assert fake.count("POST /api/signin") == 0

    @pytest.mark.parametrize("body", [{}, {"next": ""}])
    async def test_no_next_goes_to_the_default_return_url(self, fake: FakeQelos, body: Dict[str, str]) -> None:
        async with browser(build_app(fake, default_return_url="/home")) as http:
            login = await http.post("/auth/login", data={"username": "alice", "password": "alice-pass", **body})
        assert login.status_code == 303
        assert login.headers["location"] == "/home"

    @pytest.mark.parametrize(
        "headers", [{"origin": "https://evil.example"}, {"origin": "null"}, {"sec-fetch-site": "cross-site"}]
    )
    async def test_cross_site_posts_are_refused(self, fake: FakeQelos, headers: Dict[str, str]) -> None:
        async with browser(build_app(fake)) as http:
            response = await http.post(
                "/auth/login", data={"username": "alice", "password": "alice-pass"}, headers=headers
            )
        assert_error(response, 403, "CROSS_SITE_REQUEST")
        assert fake.count("POST /api/signin") == 0

    async def test_same_origin_and_trusted_origins_pass(self, fake: FakeQelos) -> None:
        app = build_app(fake, trusted_origins=["https://www.app.test"])
        async with browser(app) as http:
            for origin in (BASE, "https://www.app.test"):
                # Signed in, the browser's cookie would meet the middleware's CSRF check (QelosConfig.trusted_origins).
                http.cookies.clear()
                response = await http.post(
                    "/auth/login", json={"username": "alice", "password": "alice-pass"}, headers={"origin": origin}
                )
                assert response.status_code == 200

    @pytest.mark.parametrize("fault", [{"status": 500}, {"drop": True}, {"malformed": True}])
    async def test_qelos_down_is_503_not_401(self, fake: FakeQelos, fault: Dict[str, Any]) -> None:
        fake.inject("POST /api/signin", **fault)
        async with browser(build_app(fake)) as http:
            response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
        assert_error(response, 503, "QELOS_UNAVAILABLE")
        assert response.headers["retry-after"] == "5"


@pytest.mark.anyio
class TestLogout:
    async def test_session_logout_revokes_and_clears(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            out = await http.post("/auth/logout")
            assert out.status_code == 200
            assert out.json() == {"signed_out": True, "revoked": True}
            (cleared,) = set_cookies(out, "qlt_0")
            assert "Max-Age=0" in cleared and "Path=/" in cleared
            assert (await http.get("/whoami")).json()["user"] is None
        assert fake.count("POST /api/logout") == 1

    async def test_token_logout_clears_both_cookies(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, mode="token")) as http:
            await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            out = await http.post("/auth/logout", data={"next": "/bye"})
            assert out.status_code == 303
            assert out.headers["location"] == "/bye"
            assert set_cookies(out, "q_access_token") and set_cookies(out, "q_refresh_token")
            assert not http.cookies

    async def test_anonymous_logout_calls_nobody(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            out = await http.post("/auth/logout")
        assert out.json() == {"signed_out": True, "revoked": False}
        assert not set_cookies(out)
        assert fake.count("POST /api/logout") == 0

    async def test_logout_when_qelos_is_down_still_clears(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            fake.inject("POST /api/logout", drop=True)
            out = await http.post("/auth/logout")
            assert out.json() == {"signed_out": True, "revoked": False}
            assert "qlt_0" not in http.cookies


async def http_without_cookie(app: Any, path: str) -> httpx.Response:
    async with browser(app) as http:
        return await http.get(path)


async def social_start(http: httpx.AsyncClient, provider: str = "github", next_path: str = "/home") -> httpx.Response:
    return await http.get(f"/auth/{provider}", params={"next": next_path})


async def through_qelos(fake: FakeQelos, location: str) -> str:
    """What the browser does at Qelos and the provider: returns where Qelos sends it back."""
    async with httpx.AsyncClient(transport=fake.transport) as qelos:
        response = await qelos.get(location)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def app_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# Mutants of _oauth_state.py that survive these tests, and why that is harmless (docs/survivors/_oauth_state.md):
# - `secrets.token_urlsafe(24)` -> `(None)` or `(25)`: still a random nonce of at least 192 bits.
# - the "p" key of the signed state renamed: nothing reads the provider back; it only makes states differ.
# - `samesite="lax"` dropped from set_cookie or delete_cookie: Starlette's default is "lax".
# - the state cookie's default `""` -> None, no default, or "XXXX": a missing cookie still refuses, since
#   no state we sign holds the nonce "XXXX" (ours are 32 random characters).
@pytest.mark.anyio
class TestSocialLogin:
    async def test_round_trip_ends_with_a_page_session(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            start = await social_start(http)
            assert start.status_code == 302
            target = urlsplit(start.headers["location"])
            assert f"{target.scheme}://{target.netloc}{target.path}" == f"{fake.url}/api/auth/github"
            query = parse_qs(target.query)
            assert query["returnUrl"] == [f"{BASE}/auth/callback"]
            (state_cookie,) = set_cookies(start, STATE_COOKIE)
            assert "Path=/auth/callback" in state_cookie and "HttpOnly" in state_cookie

            back = await http.get(app_path(await through_qelos(fake, start.headers["location"])))
            assert back.status_code == 303
            assert back.headers["location"] == "/home"
            (session,) = set_cookies(back, "qlt_0")
            assert "Path=/;" in session
            assert "Max-Age=0" in set_cookies(back, STATE_COOKIE)[0]
            assert (await http.get("/whoami")).json() == {"user": "alice", "mode": "session"}
        assert fake.count("POST /api/auth/callback") == 1

    async def test_the_relayed_session_cookie_lives_no_longer_than_its_token(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            start = await social_start(http)
            back = await http.get(app_path(await through_qelos(fake, start.headers["location"])))
            password = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
        # Qelos signs the social cookie's token for 5 hours but gives the cookie 30 days.
        (social,) = set_cookies(back, "qlt_0")
        assert "Max-Age=18000;" in social and "expires=" not in social.lower()
        (signed_in,) = set_cookies(password, "qlt_0")
        assert "Max-Age=2592000;" in signed_in

    async def test_token_mode_turns_rt_into_q_cookies(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, mode="token")) as http:
            start = await social_start(http)
            back = await http.get(app_path(await through_qelos(fake, start.headers["location"])))
            assert back.status_code == 303
            assert set_cookies(back, "q_access_token")
            assert (await http.get("/whoami")).json() == {"user": "alice", "mode": "token"}

    async def test_tampered_state(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            start = await social_start(http)
            back = app_path(await through_qelos(fake, start.headers["location"]))
            state = parse_qs(urlsplit(back).query)["state"][0]
            tampered = back.replace(state, state[:-2] + ("AA" if not state.endswith("AA") else "BB"))
            response = await http.get(tampered)
        assert_error(response, 400, "INVALID_OAUTH_STATE", "the state is not one this app signed")
        assert fake.count("POST /api/auth/callback") == 0

    async def test_expired_state(self, fake: FakeQelos) -> None:
        class HourAgo(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(time.time()) - 3600

        old = URLSafeTimedSerializer(SECRET, salt=STATE_SALT, signer=HourAgo).dumps({"n": "x", "p": "github", "r": "/"})
        async with browser(build_app(fake)) as http:
            http.cookies.set(STATE_COOKIE, "x")
            response = await http.get("/auth/callback", params={"state": old, "rt": "whatever"})
        assert_error(response, 400, "OAUTH_STATE_EXPIRED", "the social login took too long; start again")

    async def test_state_from_another_browser_is_refused(self, fake: FakeQelos) -> None:
        app = build_app(fake)
        async with browser(app) as attacker, browser(app) as victim:
            start = await social_start(attacker)
            back = app_path(await through_qelos(fake, start.headers["location"]))
            # The victim started a social login of their own: the nonces differ, not merely a cookie is missing.
            await social_start(victim)
            assert victim.cookies[STATE_COOKIE] != attacker.cookies[STATE_COOKIE]
            response = await victim.get(back)
            mismatch = "this social login was not started in this browser; start again"
            assert_error(response, 400, "OAUTH_STATE_MISMATCH", mismatch)
            assert "qlt_0" not in victim.cookies
            assert_error(await http_without_cookie(app, back), 400, "OAUTH_STATE_MISMATCH")

    @pytest.mark.parametrize(
        ("base", "secure"), [("https://app.test", True), ("http://app.test", False)], ids=["https", "http"]
    )
    async def test_state_cookie_attributes(self, fake: FakeQelos, base: str, secure: bool) -> None:
        app = build_app(fake, prefix="/account", state_max_age=120)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as http:
            start = await http.get("/account/github")
            (written,) = set_cookies(start, STATE_COOKIE)
            state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
            back = await http.get("/account/callback", params={"state": state})
            assert_error(back, 400, "MISSING_RT")
            (deleted,) = set_cookies(back, STATE_COOKIE)
        for header in (written, deleted):
            attributes = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
            assert attributes["path"] == "Path=/account/callback"
            assert attributes["samesite"] == "SameSite=lax"
            assert "httponly" in attributes
            assert ("secure" in attributes) is secure
        assert "Max-Age=120;" in written and "Max-Age=0;" in deleted

    @pytest.mark.parametrize(
        "payload",
        [
            {"n": 5, "p": "github", "r": "/"},
            {"n": None, "p": "github", "r": "/"},
            {"p": "github", "r": "/"},
            {"n": "5", "p": "github", "r": "//evil.example"},
            {"n": "5", "p": "github", "r": 7},
            {"n": "5", "p": "github"},
            ["5", "github", "/"],
            "5",
        ],
    )
    async def test_signed_state_that_we_never_issue_is_refused(self, fake: FakeQelos, payload: Any) -> None:
        signed = URLSafeTimedSerializer(SECRET, salt=STATE_SALT).dumps(payload)
        async with browser(build_app(fake)) as http:
            http.cookies.set(STATE_COOKIE, "5")
            response = await http.get("/auth/callback", params={"state": signed, "rt": "whatever"})
        assert_error(response, 400, "INVALID_OAUTH_STATE", "the state is not one this app signed")
        assert fake.count("POST /api/auth/callback") == 0

    async def test_a_state_we_issue_passes_with_its_cookie(self, fake: FakeQelos) -> None:
        signed = URLSafeTimedSerializer(SECRET, salt=STATE_SALT).dumps({"n": "5", "p": "github", "r": "/next"})
        async with browser(build_app(fake)) as http:
            http.cookies.set(STATE_COOKIE, "5")
            response = await http.get("/auth/callback", params={"state": signed, "rt": "x" * 20})
        # Past the state check: Qelos is asked, and refuses this made-up refresh token.
        assert_error(response, 401, "SOCIAL_LOGIN_REJECTED")

    async def test_state_signed_with_another_key_is_refused(self, fake: FakeQelos) -> None:
        forged = URLSafeTimedSerializer("another-secret-of-length", salt=STATE_SALT).dumps({"n": "x", "r": "/"})
        async with browser(build_app(fake)) as http:
            http.cookies.set(STATE_COOKIE, "x")
            response = await http.get("/auth/callback", params={"state": forged, "rt": "whatever"})
        assert_error(response, 400, "INVALID_OAUTH_STATE")

    async def test_missing_state_or_rt(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            no_state = "the callback carries no state; start again from the login page"
            assert_error(await http.get("/auth/callback", params={"rt": "x"}), 400, "INVALID_OAUTH_STATE", no_state)
            start = await social_start(http)
            back = app_path(await through_qelos(fake, start.headers["location"]))
            state = parse_qs(urlsplit(back).query)["state"][0]
            assert_error(await http.get("/auth/callback", params={"state": state}), 400, "MISSING_RT")

    async def test_replayed_rt_is_rejected(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake)) as http:
            start = await social_start(http)
            back = app_path(await through_qelos(fake, start.headers["location"]))
            assert (await http.get(back)).status_code == 303
            start_again = await social_start(http)
            state = parse_qs(urlsplit(start_again.headers["location"]).query)["state"][0]
            rt = parse_qs(urlsplit(back).query)["rt"][0]
            response = await http.get("/auth/callback", params={"state": state, "rt": rt})
        assert_error(response, 401, "SOCIAL_LOGIN_REJECTED")

    async def test_failures_go_back_to_the_login_page_when_there_is_one(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, login_page="/login")) as http:
            response = await http.get("/auth/callback", params={"state": "bogus", "rt": "x"})
        assert response.status_code == 303
        assert response.headers["location"] == "/login?error=INVALID_OAUTH_STATE"

    @pytest.mark.parametrize("next_path", ["//evil.example", "///evil.example", "https://evil.example/x", "/\\evil"])
    async def test_foreign_return_url_is_refused(self, fake: FakeQelos, next_path: str) -> None:
        async with browser(build_app(fake)) as http:
            response = await social_start(http, next_path=next_path)
        assert_error(response, 400, "UNSAFE_RETURN_URL")
        assert not set_cookies(response)

    async def test_unknown_provider(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, providers=["google"])) as http:
            response = await social_start(http, provider="github")
        assert_error(response, 404, "UNKNOWN_PROVIDER")

    async def test_same_origin_public_url_uses_a_relative_callback(self, fake: FakeQelos) -> None:
        async with browser(build_app(fake, public_url="/_qelos")) as http:
            start = await social_start(http)
        target = urlsplit(start.headers["location"])
        assert target.path == "/_qelos/api/auth/github"
        assert parse_qs(target.query)["returnUrl"] == ["/auth/callback"]


@pytest.mark.anyio
async def test_plain_starlette_routes(fake: FakeQelos) -> None:
    config = config_for(fake)
    app = Starlette(
        routes=[*create_qelos_auth_routes(config, secret_key=SECRET), Route("/whoami", whoami)],
        middleware=[Middleware(QelosIntegratorMiddleware, config=config)],
    )
    async with browser(app) as http:
        login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
        assert login.status_code == 200
        assert (await http.get("/whoami")).json() == {"user": "alice", "mode": "session"}
        start = await social_start(http)
        assert start.status_code == 302


def test_router_openapi_documents_bodies_and_errors(fake: FakeQelos) -> None:
    schema = build_app(fake).openapi()
    login = schema["paths"]["/auth/login"]["post"]
    assert set(login["requestBody"]["content"]) == {"application/json", "application/x-www-form-urlencoded"}
    assert {"401", "415", "422", "503"} <= set(login["responses"])
    assert "303" in schema["paths"]["/auth/callback"]["get"]["responses"]
