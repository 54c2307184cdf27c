"""A 4.0.1 app keeps working: every public name and module of the published 4.0.1, each warning once."""

from __future__ import annotations

import importlib
import sys
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx
import pytest
import uvicorn
from fastapi import Depends, FastAPI
from starlette.requests import Request

import qelos_integrator_fastapi
from qelos_integrator_fastapi import QelosConfig, QelosConfigError, QelosIntegratorMiddleware
from qelos_integrator_fastapi.testing import FakeQelos

from .support import (
    World,
    bearer,
    client,
    config_for,
    find_middleware,
    loopback_listener,
    make_world,
    served_on_loopback,
)

pytestmark = pytest.mark.anyio

# The 17 names of 4.0.1's __all__, and the ones that are still current (no warning).
NAMES_401 = [
    "QelosConfig",
    "QelosIntegratorMiddleware",
    "QelosMiddleware",
    "QelosRequestContext",
    "QelosUser",
    "QelosWorkspace",
    "WorkspaceResolver",
    "create_qelos_proxy_router",
    "create_request_sdk",
    "get_qelos",
    "get_qelos_sdk",
    "get_qelos_user",
    "qelos_middleware",
    "require_user",
    "resolve_qelos_proxy_target",
    "rewrite_set_cookie_domain",
    "rewrite_set_cookie_domains",
]
CURRENT = {
    "QelosConfig",
    "QelosIntegratorMiddleware",
    "QelosRequestContext",
    "QelosUser",
    "create_qelos_proxy_router",
    "get_qelos",
    "require_user",
}
# 4.0.1's public modules and the public names each defined or imported for its users.
MODULES_401: Dict[str, List[str]] = {
    "config": ["QelosConfig"],
    "context": ["QelosRequestContext"],
    "cookies": ["rewrite_set_cookie_domain", "rewrite_set_cookie_domains", "strip_port"],
    "dependencies": [
        "QelosRequestContext",
        "QelosUser",
        "get_qelos",
        "get_qelos_sdk",
        "get_qelos_user",
        "require_user",
    ],
    "middleware": [
        "QelosIntegratorMiddleware",
        "QelosMiddleware",
        "WorkspaceResolver",
        "effective_skip_paths",
        "qelos_middleware",
        "should_skip",
    ],
    "models": ["QelosUser", "QelosWorkspace"],
    "proxy": ["HOP_BY_HOP", "create_qelos_proxy_router"],
    "proxy_target": ["resolve_qelos_proxy_target"],
    "sdk_factory": ["create_request_sdk"],
}
README_APP = Path(__file__).parent / "compat401" / "readme_app.py"
DOCSTRING_APP = Path(__file__).parent / "compat401" / "docstring_app.py"


def _forget(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make the package resolve ``name`` afresh, as in a new interpreter."""
    monkeypatch.delitem(vars(qelos_integrator_fastapi), name, raising=False)


@pytest.fixture(autouse=True)
def fresh_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # A resolved name is kept in the package and warns no more: each test starts as a new interpreter would.
    for name in set(NAMES_401) - CURRENT:
        _forget(monkeypatch, name)


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.mark.parametrize("name", sorted(set(NAMES_401) - CURRENT))
def test_each_deprecated_401_name_warns_once_naming_its_replacement(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _forget(monkeypatch, name)
    # Deprecated names resolve, but new code does not discover them.
    assert name not in qelos_integrator_fastapi.__all__
    assert name not in dir(qelos_integrator_fastapi)
    with pytest.warns(DeprecationWarning) as caught:
        value = getattr(qelos_integrator_fastapi, name)
    assert value is not None
    [warning] = caught.list
    assert f"qelos_integrator_fastapi.{name} is deprecated" in str(warning.message)
    assert "use " in str(warning.message) and "MIGRATING.md" in str(warning.message)
    # The warning points at the caller's line, not at the package.
    assert warning.filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(qelos_integrator_fastapi, name) is value


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_the_401_names_still_current_do_not_warn(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert getattr(qelos_integrator_fastapi, name) is not None
    assert name in qelos_integrator_fastapi.__all__


@pytest.mark.parametrize("module", sorted(MODULES_401))
def test_each_401_module_imports_with_its_names_and_one_warning(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    qualified = f"qelos_integrator_fastapi.{module}"
    monkeypatch.delitem(sys.modules, qualified, raising=False)
    with pytest.warns(DeprecationWarning) as caught:
        imported = importlib.import_module(qualified)
    [warning] = [w for w in caught.list if qualified in str(w.message)]
    assert f"the module {qualified} is deprecated" in str(warning.message)
    for name in MODULES_401[module]:
        assert getattr(imported, name) is not None, name
    assert sorted(imported.__all__) == sorted(MODULES_401[module])


def test_the_middleware_aliases_take_4_0_1_s_flat_keywords() -> None:
    from qelos_integrator_fastapi.testing import FakeQelos

    fake = FakeQelos()
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi import QelosMiddleware, qelos_middleware
    assert QelosMiddleware is QelosIntegratorMiddleware and qelos_middleware is QelosIntegratorMiddleware
    layer = QelosMiddleware(
        FastAPI(), app_url=fake.url, api_token=None, require_auth=True, skip_paths=["/health"], disable_proxy=True
    )
    assert layer.config.disable_proxy is True and layer.config.require_auth is True
    with pytest.raises(TypeError, match="not both"):
        QelosMiddleware(FastAPI(), config=QelosConfig(app_url=fake.url), app_url=fake.url)


def test_the_4_0_1_skip_helpers_match_whole_segments_as_the_middleware_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.requests import Request as StarletteRequest

    monkeypatch.delitem(sys.modules, "qelos_integrator_fastapi.middleware", raising=False)
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi.middleware import effective_skip_paths, should_skip

    def at(path: str) -> StarletteRequest:
        return StarletteRequest({"type": "http", "path": path, "headers": [], "query_string": b""})

    config = QelosConfig(app_url="https://qelos.test", skip_paths=["/health/"])
    assert effective_skip_paths(config) == ["/health"]
    assert [should_skip(at(p), ["/health/"]) for p in ("/health", "/health/live", "/healthz")] == [True, True, False]


def test_disable_proxy_is_validated() -> None:
    assert QelosConfig(app_url="https://qelos.test").disable_proxy is False
    with pytest.raises(QelosConfigError, match="disable_proxy"):
        QelosConfig(app_url="https://qelos.test", disable_proxy="yes")  # type: ignore[arg-type]


def _legacy_app(config: QelosConfig) -> FastAPI:
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi import get_qelos_sdk, get_qelos_user
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/me")
    async def me(user: Any = Depends(get_qelos_user)) -> Dict[str, Any]:  # noqa: B008 (4.0.1 style; a local name)
        return {
            name: getattr(user, name)
            for name in (
                "id",
                "username",
                "email",
                "full_name",
                "first_name",
                "last_name",
                "birth_date",
                "roles",
                "metadata",
            )
        }

    @app.get("/sdk")
    async def sdk(request: Request, qelos_sdk: Any = Depends(get_qelos_sdk)) -> Dict[str, Any]:  # noqa: B008
        return {"same": qelos_sdk is request.state.qelos.sdk}

    return app


async def test_get_qelos_user_answers_the_4_0_1_attributes_and_401_when_anonymous(world: World) -> None:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(_legacy_app(config_for(world.fake))) as http:
        signed_in = await http.get("/me", headers=bearer(pair.access_token))
        anonymous = await http.get("/me")
        sdk = await http.get("/sdk", headers=bearer(pair.access_token))
    assert signed_in.status_code == 200
    body = signed_in.json()
    assert body["id"] == world.alice.id and body["username"] == "alice" and body["full_name"] == "Alice Liddell"
    assert body["first_name"] == "Alice" and body["last_name"] == "Liddell" and body["email"] == "alice@example.com"
    assert body["roles"] == ["user"] and "birth_date" in body and "metadata" in body
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": {"code": "UNAUTHORIZED"}}
    assert sdk.json() == {"same": True}


def test_the_cookie_domain_helpers_behave_as_in_4_0_1() -> None:
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi import rewrite_set_cookie_domain, rewrite_set_cookie_domains
    cookie = "qlt_0=v; Domain=qelos.test; Path=/api; HttpOnly"
    assert rewrite_set_cookie_domain(cookie, "app.test:8000") == "qlt_0=v; Domain=app.test; Path=/api; HttpOnly"
    assert rewrite_set_cookie_domain(cookie, None) == "qlt_0=v; Path=/api; HttpOnly"
    assert rewrite_set_cookie_domain("a=b; Path=/", "app.test") == "a=b; Path=/"
    assert rewrite_set_cookie_domains([cookie, "a=b"], "[::1]:80") == [
        "qlt_0=v; Domain=::1; Path=/api; HttpOnly",
        "a=b",
    ]


def test_resolve_qelos_proxy_target_reads_the_4_0_1_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi import resolve_qelos_proxy_target
    for name in ("QELOS_PROXY_TARGET", "QELOS_IP", "QELOS_API_IP"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_qelos_proxy_target(QelosConfig(app_url="https://qelos.test")) == "https://qelos.test"
    monkeypatch.setenv("QELOS_IP", "http://10.1.2.3:3000")
    assert resolve_qelos_proxy_target(QelosConfig(app_url="https://qelos.test")) == "http://10.1.2.3:3000"


async def test_create_request_sdk_gives_the_request_s_sdk_behind_the_middleware(world: World) -> None:
    with pytest.warns(DeprecationWarning):
        from qelos_integrator_fastapi import create_request_sdk
    config = config_for(world.fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/products")
    async def products(request: Request) -> Dict[str, Any]:
        sdk = create_request_sdk(config, request)
        entities = await sdk.blueprints.entities_of("products").get_list()
        return {"same": sdk is request.state.qelos.sdk, "count": len(entities)}

    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(app) as http:
        response = await http.get("/products", headers=bearer(pair.access_token))
    assert response.json() == {"same": True, "count": 0}


@pytest.fixture
def served_fake() -> Iterator[FakeQelos]:
    """FakeQelos on a loopback port: the 4.0.1 apps below know nothing of transports."""
    listener = loopback_listener()
    fake = make_world(url=f"http://127.0.0.1:{listener.getsockname()[1]}").fake
    with served_on_loopback(listener, uvicorn.Config(fake, log_level="warning", lifespan="off")):
        yield fake


def _load(path: Path) -> Any:
    """Run a 4.0.1 example file unchanged; only DeprecationWarnings may come of it."""
    namespace: Dict[str, Any] = {"__name__": path.stem}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    assert [w.category for w in caught] == [DeprecationWarning] * len(caught)
    return namespace["app"], caught


@pytest.mark.filterwarnings("error")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("example", [README_APP, DOCSTRING_APP], ids=["readme", "docstring"])
async def test_the_4_0_1_readme_app_runs_unchanged_and_me_answers_the_signed_in_user(
    monkeypatch: pytest.MonkeyPatch, served_fake: FakeQelos, example: Path
) -> None:
    # 4.0.1's own development override points the unchanged app_url at the loopback FakeQelos.
    monkeypatch.setenv("QELOS_PROXY_TARGET", served_fake.url)
    app, caught = _load(example)
    if example is DOCSTRING_APP:
        assert {str(w.message).split(" is ")[0] for w in caught} == {
            "qelos_integrator_fastapi.qelos_middleware",
            "qelos_integrator_fastapi.get_qelos_user",
        }
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as http:
        # Signed in through the app's own /api proxy (README app) or straight at Qelos, as a browser would.
        signin = {"username": "alice", "password": "alice-pass", "authType": "cookie"}
        async with httpx.AsyncClient(base_url=served_fake.url) as qelos:
            cookie = (await qelos.post("/api/signin", json=signin)).cookies[served_fake.session_cookie_name]
        me = await http.get("/me", headers={"cookie": f"{served_fake.session_cookie_name}={cookie}"})
        anonymous = await http.get("/me")
    # httpx's ASGITransport runs no lifespan, so the app's shutdown never closes its pool: close it here.
    await find_middleware(app).backend.client.aclose()
    assert me.status_code == 200, me.text
    if example is README_APP:
        assert me.json()["user"]["username"] == "alice"
        assert anonymous.json() == {"user": None}
    else:
        assert me.json() == {"name": "Alice Liddell"}
        assert anonymous.status_code == 401


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_readme_app_s_proxy_signs_a_browser_in(
    monkeypatch: pytest.MonkeyPatch, served_fake: FakeQelos
) -> None:
    monkeypatch.setenv("QELOS_PROXY_TARGET", served_fake.url)
    app, _ = _load(README_APP)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as http:
        signed_in = await http.post(
            "/api/signin", json={"username": "alice", "password": "alice-pass", "authType": "cookie"}
        )
        assert signed_in.status_code == 200
        # The relayed cookie is the app's own now: the client keeps it and sends it to /me.
        me = await http.get("/me")
    await find_middleware(app).backend.client.aclose()
    assert me.json()["user"]["username"] == "alice"
