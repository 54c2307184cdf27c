"""Workspace roles as scopes: the caller's own membership, else the token's claim for that workspace only."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from starlette.requests import HTTPConnection, Request

from ..support import client, config_for, fastapi_app, make_world

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
