"""Where FakeQelos once answered differently from Qelos (qelos-io/qelos 4b6bcd01), pinned (issue 11)."""

from __future__ import annotations

import pytest

from ..support import bearer, make_world, session, set_cookie_headers, upstream

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
