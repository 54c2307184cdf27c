"""The seed README's FastAPI usage, driven through a real ASGI app against FakeQelos."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Optional

import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosEvent,
    QelosIntegratorMiddleware,
    QelosRequestContext,
    get_qelos,
    require_user,
)

from ..support import client, config_for, fastapi_app, make_world

pytestmark = pytest.mark.anyio


def seed_app(config: QelosConfig, **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config, **options)

    @app.get("/me")
    async def me(qelos: Annotated[Optional[QelosRequestContext], Depends(get_qelos)]) -> Dict[str, Any]:
        return {
            "user": qelos.user if qelos else None,
            "workspace": qelos.workspace if qelos else None,
        }

    @app.get("/private")
    async def private(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> Optional[Dict[str, Any]]:
        return qelos.user

    @app.get("/me-raw")
    async def me_raw(request: Request) -> Dict[str, Any]:
        qelos = getattr(request.state, "qelos", None)
        return {"user": qelos.user if qelos else None}

    @app.get("/products")
    async def list_products(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> List[Dict[str, Any]]:
        products: List[Dict[str, Any]] = await qelos.sdk.entities("products").get_list({"status": "active"})
        return products

    @app.post("/products", status_code=201)
    async def create_product(
        body: Dict[str, Any], qelos: Annotated[QelosRequestContext, Depends(require_user)]
    ) -> Dict[str, Any]:
        created: Dict[str, Any] = await qelos.sdk.entities("products").create(body)
        return created

    @app.get("/health")
    async def health(request: Request) -> Dict[str, Any]:
        return {"qelos": request.state.qelos, "authenticated": request.user.is_authenticated}

    return app


async def test_bearer_token_resolves_user_and_active_workspace() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.globex)
    async with client(seed_app(config_for(world.fake))) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["_id"] == world.alice.id
    assert body["user"]["username"] == "alice"
    # The workspace the user has active in Qelos wins over the first one of the list.
    assert body["workspace"]["_id"] == world.globex.id
    assert world.fake.count("GET /api/me") == 1
    assert world.fake.count("GET /api/workspaces") == 1


async def test_access_cookie_resolves_user_and_falls_back_to_first_workspace() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with client(seed_app(config_for(world.fake))) as http:
        http.cookies.set("q_access_token", pair.access_token)
        response = await http.get("/me-raw")
        me = await http.get("/me")
    assert response.json()["user"]["_id"] == world.bob.id
    assert me.json()["workspace"]["_id"] == world.acme.id


async def test_anonymous_request_makes_no_upstream_call() -> None:
    world = make_world()
    async with client(seed_app(config_for(world.fake))) as http:
        me = await http.get("/me")
        private = await http.get("/private")
    assert me.json() == {"user": None, "workspace": None}
    assert private.status_code == 401
    assert private.json() == {"detail": {"code": "UNAUTHORIZED"}}
    assert private.headers["www-authenticate"] == "Bearer"
    assert world.fake.requests == []


async def test_invalid_bearer_is_anonymous_and_require_user_answers_401() -> None:
    world = make_world()
    async with client(seed_app(config_for(world.fake))) as http:
        me = await http.get("/me", headers={"Authorization": "Bearer not-a-jwt"})
        private = await http.get("/private", headers={"Authorization": "Bearer not-a-jwt"})
    assert me.json()["user"] is None
    assert private.status_code == 401


async def test_require_auth_answers_401_before_the_app_runs() -> None:
    world = make_world()
    reached: List[str] = []
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake, require_auth=True))

    @app.get("/anything")
    async def anything() -> str:
        reached.append("yes")
        return "ok"

    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        denied = await http.get("/anything")
        allowed = await http.get("/anything", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert denied.status_code == 401
    assert denied.json() == {"code": "UNAUTHORIZED"}
    assert allowed.status_code == 200
    assert reached == ["yes"]


async def test_skip_paths_leave_no_context_and_call_nothing_upstream() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    app = seed_app(config_for(world.fake, skip_paths=["/health", "/metrics"], require_auth=True))
    async with client(app) as http:
        response = await http.get("/health", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 200
    assert response.json() == {"qelos": None, "authenticated": False}
    assert world.fake.requests == []


async def test_skip_paths_match_whole_segments_only() -> None:
    config = QelosConfig(app_url="https://qelos.test", skip_paths=["/health", "/static/"])
    assert config.is_skipped("/health")
    assert config.is_skipped("/health/live")
    assert not config.is_skipped("/healthz")
    assert config.is_skipped("/static/app.js")
    assert not config.is_skipped("/")


async def test_resolve_workspace_sync_and_async() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)

    def sync_resolver(request: Any, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        target = request.headers.get("x-qelos-workspace")
        return next((w for w in workspaces if w["_id"] == target), workspaces[0] if workspaces else None)

    async def async_resolver(request: Any, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        return sync_resolver(request, user, workspaces)

    for resolver in (sync_resolver, async_resolver):
        app = seed_app(config_for(world.fake), resolve_workspace=resolver)
        async with client(app) as http:
            response = await http.get(
                "/me",
                headers={"Authorization": f"Bearer {pair.access_token}", "x-qelos-workspace": world.globex.id},
            )
        assert response.json()["workspace"]["_id"] == world.globex.id


async def test_handler_sdk_reads_and_writes_the_callers_entities() -> None:
    world = make_world()
    alice = world.fake.issue_tokens(world.alice, workspace=world.acme)
    bob = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with client(seed_app(config_for(world.fake))) as http:
        auth = {"Authorization": f"Bearer {alice.access_token}"}
        created = await http.post("/products", json={"name": "Anvil", "price": 10, "status": "active"}, headers=auth)
        assert created.status_code == 201, created.text
        assert created.json()["name"] == "Anvil"
        listed = await http.get("/products", headers=auth)
        assert [p["name"] for p in listed.json()] == ["Anvil"]
        assert listed.json()[0]["user"] == world.alice.id
        # Bob shares the workspace, so the workspace-scoped blueprint shows him Alice's product too.
        seen_by_bob = await http.get("/products", headers={"Authorization": f"Bearer {bob.access_token}"})
        assert [p["name"] for p in seen_by_bob.json()] == ["Anvil"]
    entity_calls = [r for r in world.fake.requests if r.path.startswith("/api/blueprints/")]
    assert [r.headers["authorization"] for r in entity_calls] == [
        f"Bearer {alice.access_token}",
        f"Bearer {alice.access_token}",
        f"Bearer {bob.access_token}",
    ]


async def test_api_token_mode_identifies_the_token_owner_and_ignores_browser_credentials() -> None:
    world = make_world()
    key = world.fake.add_api_token(world.bob)
    browser = world.fake.issue_tokens(world.alice)
    app = fastapi_app(config_for(world.fake, api_token=key))
    async with client(app) as http:
        http.cookies.set("q_access_token", browser.access_token)
        response = await http.get("/me")
    assert response.json()["user"]["_id"] == world.bob.id
    assert response.json()["mode"] == "api_token"
    me_call = world.fake.requests[0]
    assert me_call.headers["x-api-key"] == key
    assert "authorization" not in me_call.headers
    assert "cookie" not in me_call.headers
    assert world.fake.count("/api/token/refresh") == 0


async def test_flat_keyword_options_are_accepted() -> None:
    world = make_world()
    app = FastAPI()
    app.add_middleware(
        QelosIntegratorMiddleware, app_url=world.fake.url, transport=world.fake.transport, require_auth=True
    )

    @app.get("/")
    async def index() -> str:
        return "ok"

    async with client(app) as http:
        assert (await http.get("/")).status_code == 401


async def test_config_and_flat_options_together_are_refused() -> None:
    with pytest.raises(TypeError, match="either config= or flat options"):
        QelosIntegratorMiddleware(FastAPI(), config=QelosConfig(app_url="http://q.test"), require_auth=True)


async def test_camel_case_sdk_options_reach_the_request_sdk() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    config = config_for(world.fake, sdk_options={"extraQueryParams": lambda: {"source": "integrator"}})
    async with client(seed_app(config)) as http:
        response = await http.get("/products", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.status_code == 200
    (entity_call,) = [r for r in world.fake.requests if r.path.startswith("/api/blueprints/")]
    assert "source=integrator" in entity_call.query


async def test_a_failing_on_event_hook_is_logged_and_never_breaks_the_request(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    seen: List[str] = []

    def broken_metrics(event: QelosEvent) -> None:
        seen.append(event.name)
        raise RuntimeError("the metrics backend is down")

    app = fastapi_app(config_for(world.fake), on_event=broken_metrics)
    token = world.fake.issue_tokens(world.alice, workspace=world.acme).access_token
    caplog.set_level("ERROR", "qelos_integrator_fastapi")
    async with client(app) as http:
        response = await http.get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice"
    assert seen == ["identity_resolved"]
    [record] = caplog.records
    assert record.getMessage() == "on_event hook raised for identity_resolved"
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert token not in caplog.text
