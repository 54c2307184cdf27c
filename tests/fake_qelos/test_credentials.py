from __future__ import annotations

import pytest

from ..support import bearer, make_world, session, upstream

pytestmark = pytest.mark.anyio


async def test_api_key_wins_over_cookie_and_bearer() -> None:
    world = make_world()
    key = world.fake.add_api_token(world.bob)
    cookie = world.fake.issue_session_cookie(world.alice)
    pair = world.fake.issue_tokens(world.root)
    async with upstream(world.fake) as http:
        response = await http.get(
            "/api/me", headers={"x-api-key": key, **session(world.fake, cookie), **bearer(pair.access_token)}
        )

    assert response.json()["username"] == "bob"


async def test_cookie_wins_over_bearer() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    pair = world.fake.issue_tokens(world.bob)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers={**session(world.fake, cookie), **bearer(pair.access_token)})

    assert response.json()["username"] == "alice"


@pytest.mark.parametrize("authorization", ["Bearer nonsense", "Bearer", "Bearer {refresh}"])
async def test_a_bad_bearer_is_401_on_auth_routes(authorization: str) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get(
            "/api/workspaces", headers={"authorization": authorization.format(refresh=pair.refresh_token)}
        )

    assert response.status_code == 401
    assert response.json() == {"message": "authorization token is not valid."}


async def test_no_credentials_is_401_must_be_logged_in() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.get("/api/me")

    assert response.status_code == 401
    assert response.json() == {"message": "you are not authorized. must be logged in."}


async def test_api_token_payload_and_usage() -> None:
    world = make_world()
    key = world.fake.add_api_token(world.alice, workspace=world.acme)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers={"x-api-key": key})

    assert key.startswith("ql_")
    assert len(key) == 67
    body = response.json()
    assert body["workspace"] == {
        "_id": world.acme.id,
        "name": "Acme%20%26%20Co",
        "roles": ["admin", "user"],
        "labels": ["retail"],
    }
    assert body["fullName"] == "Alice Liddell"
    assert "isApiToken" not in body


@pytest.mark.parametrize("case", ["unknown", "not-ql", "expired", "other-tenant", "left-workspace"])
async def test_bad_api_tokens_are_401(case: str) -> None:
    world = make_world()
    key = world.fake.add_api_token(world.bob, workspace=world.acme, expires_in=60)
    headers = {"x-api-key": key}
    if case == "unknown":
        headers["x-api-key"] = "ql_" + "0" * 64
    elif case == "not-ql":
        headers["x-api-key"] = key[3:]
    elif case == "expired":
        world.fake.clock.advance(60)
    elif case == "other-tenant":
        headers["tenant"] = "1"
    else:
        world.fake.remove_member(world.acme, world.bob)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": "Invalid or expired API token"}


async def test_an_empty_api_key_header_is_ignored() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers={"x-api-key": "", **bearer(pair.access_token)})

    assert response.json()["username"] == "bob"


async def test_api_key_logout_is_a_no_op() -> None:
    world = make_world()
    key = world.fake.add_api_token(world.bob)
    async with upstream(world.fake) as http:
        logout = await http.post("/api/logout", headers={"x-api-key": key})
        after = await http.get("/api/me", headers={"x-api-key": key})

    assert (logout.status_code, after.status_code) == (200, 200)
