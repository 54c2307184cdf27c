"""Both demo apps, driven in-process on their embedded FakeQelos: the path a first-time user clicks through."""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Iterator

import httpx
import pytest

pytestmark = pytest.mark.anyio

APPS = ["examples.fastapi_app.app", "examples.starlette_app.app"]


@pytest.fixture(params=APPS)
def demo(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.delenv("QELOS_APP_URL", raising=False)
    monkeypatch.delenv("QELOS_AUTH_MODE", raising=False)
    # A fresh import: a fresh embedded FakeQelos for every test.
    yield importlib.reload(importlib.import_module(request.param))


def browser(demo: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=demo.app), base_url="http://127.0.0.1:8000")


def workspace_ids(html: str) -> dict[str, str]:
    return {
        name: id_ for id_, name in re.findall(r'<option value="([0-9a-f]{24})"(?: selected)?>([^<]+)</option>', html)
    }


async def sign_in(http: httpx.AsyncClient, username: str = "alice", password: str = "alice-pass") -> httpx.Response:
    return await http.post("/auth/login", data={"username": username, "password": password, "next": "/"})


async def test_login_page_shows_the_demo_users(demo: ModuleType) -> None:
    async with browser(demo) as http:
        assert (await http.get("/")).headers["location"] == "/login"
        page = await http.get("/login")
    assert page.status_code == 200
    assert "alice / alice-pass" in page.text and "bob / bob-pass" in page.text
    assert "alice / alice-pass" in demo.demo.banner("demo")


async def test_sign_in_see_user_switch_workspace_products_sign_out(demo: ModuleType) -> None:
    async with browser(demo) as http:
        login = await sign_in(http)
        assert login.status_code == 303 and login.headers["location"] == "/"
        home = await http.get("/")
        assert "Alice Liddell" in home.text
        assert re.search(r"id='workspace-name'>Acme<", home.text)
        assert "Anvil" in (await http.get("/products")).text

        switched = await http.post("/workspace", data={"workspace_id": workspace_ids(home.text)["Globex Corporation"]})
        assert switched.headers["location"] == "/?notice=switched"
        home = await http.get("/?notice=switched")
        assert re.search(r"id='workspace-name'>Globex Corporation<", home.text)
        assert "Workspace switched." in home.text
        products = (await http.get("/products")).text
        assert "Hammock" in products and "Anvil" not in products

        out = await http.post("/auth/logout", data={"next": "/login"})
        assert out.status_code == 303
        assert (await http.get("/")).headers["location"] == "/login"


async def test_wrong_password_shows_an_error(demo: ModuleType) -> None:
    async with browser(demo) as http:
        login = await sign_in(http, password="wrong")
        assert login.headers["location"].startswith("/login?error=INVALID_CREDENTIALS")
        page = await http.get(login.headers["location"])
    assert "Invalid username or password." in page.text


async def test_social_login_through_the_mounted_fake(demo: ModuleType) -> None:
    async with browser(demo) as http:
        start = await http.get("/auth/github", params={"next": "/products"})
        assert start.headers["location"].startswith("/_qelos/api/auth/github?")
        at_qelos = await http.get(start.headers["location"])
        assert at_qelos.headers["location"].startswith("/auth/callback?rt=")
        back = await http.get(at_qelos.headers["location"])
        assert back.headers["location"] == "/products"
        assert "Anvil" in (await http.get("/products")).text


async def test_token_mode_explains_why_it_cannot_switch(demo: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QELOS_AUTH_MODE", "token")
    demo = importlib.reload(demo)
    async with browser(demo) as http:
        await sign_in(http)
        assert "q_access_token" in http.cookies
        home = await http.get("/")
        assert "<code id='mode'>token</code>" in home.text
        switched = await http.post("/workspace", data={"workspace_id": workspace_ids(home.text)["Globex Corporation"]})
        page = await http.get(switched.headers["location"])
    assert "Qelos binds the workspace into a token" in page.text


async def test_me_json_route(demo: ModuleType) -> None:
    async with browser(demo) as http:
        assert (await http.get("/me")).status_code in (401, 403)
        await sign_in(http, "bob", "bob-pass")
        me = (await http.get("/me")).json()
    assert me["user"]["username"] == "bob"
    assert me["workspace"]["name"] == "Acme"


def test_fastapi_demo_documents_its_security(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QELOS_APP_URL", raising=False)
    module = importlib.reload(importlib.import_module("examples.fastapi_app.app"))
    schema = module.app.openapi()
    assert schema["paths"]["/me"]["get"]["security"] == [{"QelosBearer": []}, {"QelosCookie": []}]
    assert "/auth/login" in schema["paths"]


def test_real_qelos_mode_has_no_embedded_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QELOS_APP_URL", "https://qelos.example.com")
    from examples.demo_qelos import demo_qelos

    demo = demo_qelos()
    assert demo.fake_app is None and demo.public_url is None
    assert demo.config.app_url == "https://qelos.example.com" and demo.config.transport is None
    assert "https://qelos.example.com" in demo.banner("FastAPI")


async def test_every_link_on_the_signed_in_pages_leads_somewhere(demo: ModuleType) -> None:
    async with browser(demo) as http:
        await sign_in(http)
        for page in ("/", "/products"):
            html = (await http.get(page)).text
            links = set(re.findall(r'<a[^>]* href="(/[^"]*)"', html))
            assert links, page
            for link in links:
                response = await http.get(link)
                assert response.status_code in (200, 302, 303), (page, link, response.status_code)


async def test_an_off_site_next_on_the_login_form_shows_the_login_page_with_a_reason(demo: ModuleType) -> None:
    async with browser(demo) as http:
        response = await http.post(
            "/auth/login", data={"username": "alice", "password": "alice-pass", "next": "https://evil.example/"}
        )
        assert response.headers["location"] == "/login?error=UNSAFE_RETURN_URL"
        page = await http.get(response.headers["location"])
    assert page.status_code == 200
    assert "another site" in page.text


def test_the_banner_names_the_port_uvicorn_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QELOS_APP_URL", raising=False)
    monkeypatch.setattr("sys.argv", ["uvicorn", "examples.fastapi_app.app:app", "--port", "9123"])
    module = importlib.reload(importlib.import_module("examples.fastapi_app.app"))
    assert "Open http://127.0.0.1:9123/login" in module.demo.banner("FastAPI")
    monkeypatch.setattr("sys.argv", ["uvicorn", "examples.fastapi_app.app:app", "--port=9124"])
    assert "Open http://127.0.0.1:9124/login" in module.demo.banner("FastAPI")


@pytest.mark.parametrize("argv", [["--workers", "2"], ["--workers=3"]])
def test_the_embedded_demo_refuses_several_workers(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.delenv("QELOS_APP_URL", raising=False)
    monkeypatch.setattr("sys.argv", ["uvicorn", "examples.starlette_app.app:app", *argv])
    with pytest.raises(SystemExit, match="runs one worker") as refused:
        importlib.reload(importlib.import_module("examples.starlette_app.app"))
    assert "make fake" in str(refused.value)


def test_the_embedded_demo_lives_in_real_time(demo: ModuleType) -> None:
    import time

    from qelos_integrator_fastapi.testing import FakeQelos

    fake = demo.demo.fake_app.app
    assert isinstance(fake, FakeQelos)
    assert abs(fake.clock.now() - time.time()) < 60


async def test_the_panel_shows_a_forced_refresh_in_token_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QELOS_APP_URL", raising=False)
    monkeypatch.setenv("QELOS_AUTH_MODE", "token")
    for name in APPS:
        module = importlib.reload(importlib.import_module(name))
        async with browser(module) as http:
            await sign_in(http)
            access = http.cookies["q_access_token"]
            expired = await http.post("/demo/expire")
            assert expired.headers["location"] == "/?notice=expired"
            page = await http.get("/?notice=expired")
        panel = page.text[page.text.index('<aside id="panel">') :]
        assert "id='panel-refreshed'>yes: new tokens this request<" in panel
        calls = re.findall(r"<code>(\w+ /api/[\w/]+)</code> → (\d+)", panel)
        assert ("POST /api/token/refresh", "200") in calls
        masked = r"<code>q_access_token=eyJ…\(\d+ chars\); HttpOnly; Max-Age=\d+; Path=/; SameSite=lax</code>"
        assert re.search(masked, panel)
        assert "<code>q_refresh_token=eyJ…(" in panel
        assert access not in page.text and page.cookies["q_access_token"] not in page.text
