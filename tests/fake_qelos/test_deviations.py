"""Where FakeQelos once answered differently from Qelos (qelos-io/qelos 4b6bcd01), pinned (issue 11)."""

from __future__ import annotations

from typing import Dict

import pytest

from ..support import bearer, claims, cookie_value, make_world, oauth_signin, session, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio


async def test_a_permission_without_scope_counts_as_user_scope() -> None:
    world = make_world()
    world.fake.add_blueprint(
        "notes",
        properties={"text": "string"},
        permissions=[{"operation": operation, "roleBased": ["user"]} for operation in ("create", "read")],
    )
    bob = bearer(world.fake.issue_tokens(world.bob, workspace=world.acme).access_token)
    async with upstream(world.fake) as http:
        created = await http.post("/api/blueprints/notes/entities", json={"metadata": {"text": "mine"}}, headers=bob)
        listed = await http.get("/api/blueprints/notes/entities", headers=bob)

    assert created.status_code == 200
    assert [note["metadata"]["text"] for note in listed.json()] == ["mine"]


async def test_cookie_refresh_is_not_routed_by_the_gateway() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    async with upstream(world.fake) as http:
        response = await http.post("/api/cookie/refresh", headers=session(world.fake, cookie))

    assert (response.status_code, response.json()) == (404, {"message": "Cannot POST /api/cookie/refresh"})
    assert set_cookie_headers(response) == []


async def test_activate_becomes_the_workspace_of_the_next_signin() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        first = await http.post("/api/signin", json={"username": "alice", "password": "alice-pass"})
        cookie = cookie_value(first, "qlt_0")
        assert cookie is not None
        await http.post(f"/api/workspaces/{world.globex.id}/activate", headers=session(world.fake, cookie))
        http.cookies.clear()
        again = await oauth_signin(http, "alice", "alice-pass")

    assert first.json()["payload"]["workspace"]["_id"] == world.acme.id
    assert again["workspace"]["_id"] == world.globex.id


async def test_a_requested_workspace_the_user_is_not_in_gives_no_workspace() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        await oauth_signin(http, "bob", "bob-pass", workspace=world.acme.id)
        stranger = await oauth_signin(http, "bob", "bob-pass", workspace=world.globex.id)

    # Only the first truthy candidate is tried: neither the last login's Acme nor a first membership.
    assert "workspace" not in stranger
    assert "workspace" not in claims(stranger["token"])


async def test_a_last_login_workspace_the_user_left_gives_no_workspace() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        await oauth_signin(http, "alice", "alice-pass", workspace=world.globex.id)
        world.fake.remove_member(world.globex, world.alice)
        after = await oauth_signin(http, "alice", "alice-pass")

    assert "workspace" not in claims(after["token"])


async def test_a_global_admin_gets_the_roles_of_the_membership() -> None:
    world = make_world()
    world.fake.add_member(world.globex, world.root, ["user"])
    async with upstream(world.fake) as http:
        signin = await oauth_signin(http, "root", "root-pass")

    assert signin["workspace"]["roles"] == ["user"]
    assert claims(signin["token"])["workspace"]["roles"] == ["user"]


@pytest.mark.parametrize(
    ("login", "password", "status"),
    [
        ({"username": "alice"}, "alice-pass", 200),
        ({"username": "  alice "}, "  alice-pass\t", 200),
        ({"username": "Alice"}, "alice-pass", 401),
        ({"username": "bob@example.com"}, "bob-pass", 200),
        ({"username": "BOB@example.com"}, "bob-pass", 401),
        ({"username": " ", "email": " bob@example.com "}, "bob-pass", 200),
        ({"username": "alice"}, "Alice-pass", 401),
    ],
)
async def test_signin_matches_exactly_and_trims(login: Dict[str, str], password: str, status: int) -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signin", json={**login, "password": password})

    assert response.status_code == status
