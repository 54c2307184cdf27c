"""Where FakeQelos once answered differently from Qelos (qelos-io/qelos 4b6bcd01), pinned (issue 11)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ..support import bearer, claims, cookie_value, make_world, oauth_signin, session, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio

SIGNUP = {"email": "carol@example.com", "firstName": "Carol", "lastName": "Danvers", "password": "carol-password"}


async def test_signup_does_not_save_the_email_of_the_form() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        carol = await http.post("/api/signup", json={**SIGNUP, "username": "Carol", "authType": "oauth"})
        dave = await http.post(
            "/api/signup", json={**SIGNUP, "username": "Dave@Example.com", "firstName": "Dave", "authType": "oauth"}
        )
        me = await http.get("/api/me", headers=bearer(carol.json()["payload"]["token"]))

    # Qelos's save hook stores `<username>@null`, or the username itself when it has an `@`.
    assert me.json()["email"] == "carol@null"
    assert claims(carol.json()["payload"]["token"])["email"] == "carol@null"
    # The same form email twice is no conflict: only the username is unique.
    assert dave.json()["payload"]["user"]["email"] == "dave@example.com"


async def test_signup_with_a_blank_username_falls_back_to_the_email() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signup", json={**SIGNUP, "username": "  ", "email": " Carol@Example.com"})

    assert response.json()["payload"]["user"]["username"] == "carol@example.com"
    assert response.json()["payload"]["user"]["email"] == "carol@example.com"


@pytest.mark.parametrize("username", [None, ""])
async def test_signup_without_a_username_answers_an_empty_payload(username: Any) -> None:
    world = make_world()
    body: Dict[str, Any] = dict(SIGNUP) if username is None else {**SIGNUP, "username": username}
    async with upstream(world.fake) as http:
        response = await http.post("/api/signup", json=body)
        signin = await http.post("/api/signin", json={"username": "carol@example.com", "password": "carol-password"})

    assert (response.status_code, response.json()) == (200, {"payload": {}})
    assert set_cookie_headers(response) == []
    assert signin.status_code == 401


async def test_signup_without_a_full_name_or_last_name_stores_what_javascript_prints() -> None:
    world = make_world()
    form = {key: value for key, value in SIGNUP.items() if key != "lastName"}
    async with upstream(world.fake) as http:
        response = await http.post("/api/signup", json={**form, "username": "carol"})

    # Qelos's `${firstName} ${lastName}` with no last name.
    assert response.json()["payload"]["user"]["fullName"] == "Carol undefined"
    assert "lastName" not in response.json()["payload"]["user"]


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


async def test_the_activate_cookie_lacks_username_and_phone_until_it_rotates() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with upstream(world.fake) as http:
        activated = await http.post(f"/api/workspaces/{world.globex.id}/activate", headers=session(world.fake, cookie))
        fresh = cookie_value(activated, "qlt_0")
        assert fresh is not None
        me = await http.get("/api/me", headers=session(world.fake, fresh))
        world.fake.clock.advance(1800)
        rotated = await http.get("/api/me", headers=session(world.fake, fresh))

    assert "username" not in claims(fresh) and "phone" not in claims(fresh)
    assert "username" not in me.json() and "phone" not in me.json()
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["workspace"]["_id"] == world.globex.id
    assert (rotated.json()["username"], rotated.json()["phone"]) == ("alice", "+100")


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


async def test_missing_names_are_omitted_and_me_has_no_birth_date() -> None:
    world = make_world()
    world.fake.add_user("dora", "dora-pass", "dora@example.com", first_name="Dora", birth_date="1990-01-01")
    async with upstream(world.fake) as http:
        signin = await oauth_signin(http, "dora", "dora-pass")
        me = await http.get("/api/me", headers=bearer(signin["token"]))

    # `lastName: undefined` disappears from JSON, and the name is JavaScript's `${firstName} ${lastName}`.
    assert signin["user"] == {
        "username": "dora",
        "email": "dora@example.com",
        "firstName": "Dora",
        "name": "Dora undefined",
        "roles": ["user"],
    }
    # `/api/me` reads birthDate from the profile cache or the token, and neither has it.
    assert "birthDate" not in me.json() and "lastName" not in me.json()
