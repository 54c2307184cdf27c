from __future__ import annotations

import pytest

from ..support import REFRESH_SECRET, bearer, claims, make_world, oauth_signin, upstream

pytestmark = pytest.mark.anyio


async def test_refresh_rotates_and_is_single_use() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        first = await oauth_signin(http, "alice", "alice-pass")
        refreshed = await http.post("/api/token/refresh", headers=bearer(first["refreshToken"]))
        replayed = await http.post("/api/token/refresh", headers=bearer(first["refreshToken"]))
        again = await http.post("/api/token/refresh", headers=bearer(refreshed.json()["payload"]["refreshToken"]))

    assert refreshed.status_code == 200
    payload = refreshed.json()["payload"]
    assert payload["user"] == {"email": "alice@example.com", "roles": ["user"]}
    assert payload["refreshToken"] != first["refreshToken"]
    assert replayed.status_code == 401
    assert replayed.content == b""
    assert "content-type" not in replayed.headers
    assert again.status_code == 200


async def test_refresh_degrades_the_workspace_claim() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        first = await oauth_signin(http, "alice", "alice-pass")
        second = (await http.post("/api/token/refresh", headers=bearer(first["refreshToken"]))).json()["payload"]
        third = (await http.post("/api/token/refresh", headers=bearer(second["refreshToken"]))).json()["payload"]
        me_second = (await http.get("/api/me", headers=bearer(second["token"]))).json()
        me_third = (await http.get("/api/me", headers=bearer(third["token"]))).json()

    # `getSignedToken` gives the bare `{_id}` it is handed an empty name.
    assert claims(second["token"])["workspace"] == {"_id": world.acme.id, "name": ""}
    assert "workspace" not in claims(second["refreshToken"], REFRESH_SECRET)
    assert me_second["workspace"] == {"_id": world.acme.id, "name": ""}
    assert "workspace" not in me_third


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Bearer {access}", "Bearer {expired}"],
)
async def test_every_refresh_failure_is_an_empty_401(authorization: object) -> None:
    world = make_world(refresh_token_ttl=60)
    old = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(61)
    fresh = world.fake.issue_tokens(world.alice)
    headers = {}
    if isinstance(authorization, str):
        headers["authorization"] = authorization.format(access=fresh.access_token, expired=old.refresh_token)
    async with upstream(world.fake) as http:
        response = await http.post("/api/token/refresh", headers=headers)

    assert response.status_code == 401
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_refresh_reads_the_second_word_whatever_the_scheme() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with upstream(world.fake) as http:
        response = await http.post("/api/token/refresh", headers={"authorization": f"Token {pair.refresh_token}"})

    assert response.status_code == 200


async def test_access_tokens_expire_on_the_fake_clock() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        fresh = await http.get("/api/me", headers=bearer(pair.access_token))
        world.fake.clock.advance(18000)
        expired = await http.get("/api/me", headers=bearer(pair.access_token))

    assert fresh.status_code == 200
    assert expired.status_code == 401
    assert expired.json() == {"message": "authorization token is not valid."}


async def test_bearer_logout_forgets_the_related_refresh_token_only() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        logout = await http.post("/api/logout", headers=bearer(pair.access_token))
        still_valid = await http.get("/api/me", headers=bearer(pair.access_token))
        refresh = await http.post("/api/token/refresh", headers=bearer(pair.refresh_token))

    assert logout.status_code == 200
    assert logout.content == b""
    assert "content-type" not in logout.headers
    assert logout.headers.get_list("set-cookie") == []
    assert still_valid.status_code == 200
    assert refresh.status_code == 401


async def test_issue_tokens_without_workspace_has_no_workspace_claim() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)

    assert "workspace" not in claims(pair.access_token)
    assert "workspace" not in claims(pair.refresh_token, REFRESH_SECRET)
    assert repr(pair) == "FakeTokenPair(access_token='***', refresh_token='***')"
