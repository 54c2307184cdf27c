"""The Starlette contract: QelosUser's fields, workspace roles as scopes (the caller's own membership, else
the token's claim, in the claim's workspace only), and the backend on its own."""

from __future__ import annotations

import logging
from typing import Any, Dict, List

import httpx
import pytest
from qelos_sdk import QelosAPIError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qelos_integrator_fastapi import QelosAuthBackend, QelosConfig, QelosUser
from qelos_integrator_fastapi._client import QelosClient

from ..support import bearer, client, config_for, fastapi_app, make_world, oauth_signin, upstream

pytestmark = pytest.mark.anyio


async def test_workspace_roles_come_from_the_callers_own_membership() -> None:
    world = make_world()
    # A full workspace document, as GET /api/workspaces/{id} returns it: every member, a peer first.
    members = [{"user": world.alice.id, "roles": ["admin", "user"]}, {"user": world.bob.id, "roles": ["user"]}]

    def with_all_members(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        return {**workspaces[0], "members": members}

    app = fastapi_app(config_for(world.fake), resolve_workspace=with_all_members)
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with client(app) as http:
        body = (await http.get("/whoami", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
    assert sorted(body["scopes"]) == ["authenticated", "role:user", "workspace", "workspace:user"]


@pytest.mark.parametrize(("chosen", "expected"), [("acme", ["workspace:admin", "workspace:user"]), ("globex", [])])
async def test_the_tokens_workspace_roles_apply_to_that_workspace_only(chosen: str, expected: List[str]) -> None:
    world = make_world()
    target = getattr(world, chosen)

    def without_members(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        workspace = next(w for w in workspaces if w["_id"] == target.id)
        return {key: value for key, value in workspace.items() if key != "members"}

    app = fastapi_app(config_for(world.fake), resolve_workspace=without_members)
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)  # the claim carries Acme's roles
    async with client(app) as http:
        body = (await http.get("/whoami", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
    assert sorted(s for s in body["scopes"] if s.startswith("workspace:")) == expected
    assert "workspace" in body["scopes"]


async def test_user_workspace_roles_come_from_the_claim_when_the_workspace_lists_no_members() -> None:
    world = make_world()
    seen: Dict[str, Any] = {}

    def without_members(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        workspace = next(w for w in workspaces if w["_id"] == world.acme.id)
        return {key: value for key, value in workspace.items() if key != "members"}

    app = fastapi_app(config_for(world.fake), resolve_workspace=without_members)

    @app.get("/roles")
    async def roles(request: Request) -> Dict[str, Any]:
        seen["roles"] = request.user.workspace_roles
        return {}

    # Bob is only a user of Acme; his token's claim says so, and nothing else names his roles.
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with client(app) as http:
        await http.get("/roles", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert seen["roles"] == ("user",)


async def test_after_a_second_refresh_no_workspace_roles_are_granted_where_qelos_acts_in_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "qelos_integrator_fastapi")
    world = make_world()
    async with upstream(world.fake) as http:
        first = await oauth_signin(http, "alice", "alice-pass")
        once = (await http.post("/api/token/refresh", headers=bearer(first["refreshToken"]))).json()["payload"]
        twice = (await http.post("/api/token/refresh", headers=bearer(once["refreshToken"]))).json()["payload"]
    app = fastapi_app(config_for(world.fake))

    @app.get("/state")
    async def state(request: Request) -> Dict[str, Any]:
        try:
            listed: Any = len(await request.state.qelos.sdk.entities("products").get_list())
        except QelosAPIError as exc:
            listed = str(exc)
        return {
            "workspace": request.state.qelos.workspace["name"],
            "roles": list(request.user.workspace_roles),
            "scopes": sorted(s for s in request.auth.scopes if s.startswith("workspace")),
            "sdk": listed,
        }

    async with client(app) as http:
        after_one = (await http.get("/state", headers=bearer(once["token"]))).json()
        assert not [r for r in caplog.records if "names no workspace" in r.getMessage()]
        after_two = (await http.get("/state", headers=bearer(twice["token"]))).json()
    # One refresh keeps the workspace id (Qelos acts in Acme), the second drops it.
    assert after_one == {
        "workspace": "Acme & Co",
        "roles": ["admin", "user"],
        "scopes": ["workspace", "workspace:admin", "workspace:user"],
        "sdk": 0,
    }
    # The seed's default still names the first workspace, but nothing grants a role in it.
    assert after_two == {
        "workspace": "Acme & Co",
        "roles": [],
        "scopes": ["workspace"],
        "sdk": "user is not connected to a workspace",
    }
    assert [(r.levelname, r.getMessage()) for r in caplog.records if "names no workspace" in r.getMessage()] == [
        (
            "INFO",
            "the Qelos credential names no workspace (Qelos drops it from oauth tokens on their second refresh); "
            "request.state.qelos.workspace falls back to the first one, where Qelos does not act: no workspace "
            "roles are granted and SDK calls run without a workspace. Sign in again with {'workspace': <id>}, or "
            "call activate_workspace (session callers)",
        )
    ]


async def test_a_resolver_choosing_another_workspace_than_the_tokens_gets_no_workspace_roles() -> None:
    world = make_world()

    def globex(conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Any:
        return next(w for w in workspaces if w["_id"] == world.globex.id)  # alice's membership is listed

    app = fastapi_app(config_for(world.fake), resolve_workspace=globex)
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)  # Qelos acts in Acme
    async with client(app) as http:
        body = (await http.get("/whoami", headers=bearer(pair.access_token))).json()
    assert sorted(s for s in body["scopes"] if s.startswith("workspace")) == ["workspace"]


def test_a_qelos_user_built_from_me_json_keeps_only_well_typed_fields() -> None:
    acme = {"_id": "w1", "members": [{"user": "u1", "roles": ["admin", 7]}]}
    raw = {"_id": "u1", "username": "", "email": 42, "fullName": "", "name": None, "firstName": ["A"], "roles": "admin"}
    raw["workspace"] = {"_id": "w1"}  # the claim: Qelos acts in w1, so the membership's roles count
    user = QelosUser(raw, acme)
    assert (user.username, user.email, user.full_name, user.first_name, user.last_name) == (None,) * 5
    # A string is not a list of roles: "admin" must not become the roles a, d, m, i, n.
    assert user.roles == ()
    assert user.display_name == "u1"
    assert user.raw is raw
    assert user.workspace is acme
    assert user.workspace_roles == ("admin",)


async def test_a_backend_given_a_client_asks_qelos_through_it() -> None:
    world = make_world()
    shared = QelosClient(config_for(world.fake))
    # The backend's own config reaches nothing that answers: every call must go through the shared client.
    config = QelosConfig(app_url=world.fake.url, transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    backend = QelosAuthBackend(config, client=shared)
    assert backend.config is config and backend.client is shared

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name})

    app = Starlette(routes=[Route("/", whoami)], middleware=[Middleware(AuthenticationMiddleware, backend=backend)])
    pair = world.fake.issue_tokens(world.alice)
    async with client(app) as http:
        response = await http.get("/", headers={"Authorization": f"Bearer {pair.access_token}"})
    await shared.aclose()
    assert response.json() == {"user": "Alice Liddell"}
    assert world.fake.count("GET /api/me") == 1


async def test_a_caller_in_no_workspace_is_not_told_about_a_fallback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "qelos_integrator_fastapi")
    world = make_world()
    pair = world.fake.issue_tokens(world.root)  # root belongs to no workspace: there is nothing to fall back to
    async with client(fastapi_app(config_for(world.fake))) as http:
        body = (await http.get("/me", headers=bearer(pair.access_token))).json()
    assert (body["user"]["username"], body["workspace"]) == ("root", None)
    assert not [r for r in caplog.records if "names no workspace" in r.getMessage()]
