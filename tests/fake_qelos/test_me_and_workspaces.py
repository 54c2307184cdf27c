from __future__ import annotations

import pytest

from ..support import bearer, claims, cookie_value, make_world, session, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio


async def test_me_shape_with_encoded_workspace_name() -> None:
    world = make_world()
    world.alice.metadata["plan"] = "pro"
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=bearer(pair.access_token))

    assert response.json() == {
        "_id": world.alice.id,
        "tenant": "0",
        "username": "alice",
        "email": "alice@example.com",
        "phone": "+100",
        "name": "Alice Liddell",
        "firstName": "Alice",
        "lastName": "Liddell",
        "fullName": "Alice Liddell",
        "roles": ["user"],
        "metadata": {"plan": "pro"},
        "workspace": {
            "_id": world.acme.id,
            "name": "Acme%20%26%20Co",
            "roles": ["admin", "user"],
            "labels": ["retail"],
        },
    }


async def test_names_are_uri_encoded_in_claims_and_decoded_by_me() -> None:
    world = make_world()
    user = world.fake.add_user("zoe", "zoe-pass", "zoe@example.com", first_name="Zoë", last_name="O'Brien Smith")
    pair = world.fake.issue_tokens(user)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=bearer(pair.access_token))

    assert claims(pair.access_token)["firstName"] == "Zo%C3%AB"
    assert claims(pair.access_token)["lastName"] == "O'Brien%20Smith"
    assert response.json()["fullName"] == "Zoë O'Brien Smith"
    assert response.json()["metadata"] == {}
    assert "workspace" not in response.json()


async def test_post_me_updates_names_but_not_email_or_metadata() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    changes = {"firstName": "Robert", "email": "x@example.com", "metadata": {"a": 1}, "username": "bobby"}
    async with upstream(world.fake) as http:
        updated = await http.post("/api/me", json=changes, headers=bearer(pair.access_token))
        again = await http.get("/api/me", headers=bearer(pair.access_token))
        password = await http.post("/api/me", json={"password": "new-pass!"}, headers=bearer(pair.access_token))
        signin = await http.post("/api/signin", json={"username": "bob", "password": "new-pass!"})

    body = updated.json()
    assert (body["firstName"], body["fullName"], body["email"], body["metadata"]) == (
        "Robert",
        "Robert Builder",
        "bob@example.com",
        {},
    )
    assert body["username"] == "bobby"
    assert again.json()["username"] == "bob"
    assert again.json()["firstName"] == "Robert"
    assert claims(pair.access_token)["firstName"] == "Bob"
    assert set_cookie_headers(updated) == []
    assert (password.status_code, signin.status_code) == (200, 200)


async def test_workspace_list_items_have_only_the_own_membership() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get("/api/workspaces", headers=bearer(pair.access_token))

    acme, globex = response.json()
    assert set(acme) == {"_id", "name", "tenant", "members", "isPrivilegedUser"}
    assert acme["name"] == "Acme & Co"
    assert [m["user"] for m in acme["members"]] == [world.alice.id]
    assert set(acme["members"][0]) == {"user", "roles", "created", "_id"}
    assert acme["isPrivilegedUser"] is True
    assert globex["logo"] == "https://img.test/globex.png"
    assert globex["isPrivilegedUser"] is False


async def test_get_workspace_for_members_admins_and_strangers() -> None:
    world = make_world()
    bob = world.fake.issue_tokens(world.bob)
    alice = world.fake.issue_tokens(world.alice)
    root = world.fake.issue_tokens(world.root)
    path = f"/api/workspaces/{world.acme.id}"
    async with upstream(world.fake) as http:
        as_member = (await http.get(path, headers=bearer(bob.access_token))).json()
        as_ws_admin = (await http.get(path, headers=bearer(alice.access_token))).json()
        as_privileged = (await http.get(path, headers=bearer(root.access_token))).json()
        stranger = await http.get(f"/api/workspaces/{world.globex.id}", headers=bearer(bob.access_token))
        malformed = await http.get("/api/workspaces/not-an-id", headers=bearer(bob.access_token))

    assert as_member == {
        "_id": world.acme.id,
        "name": "Acme & Co",
        "labels": ["retail"],
        "members": [world.acme.members[1].as_json()],
    }
    assert len(as_ws_admin["members"]) == 2
    assert as_ws_admin["invites"] == []
    assert len(as_privileged["members"]) == 2
    assert stranger.status_code == 404
    assert stranger.json() == {"message": "workspace not found", "from": "get-workspace"}
    assert malformed.status_code == 500
    assert malformed.json() == {"message": "failed to load workspace data"}


async def test_create_workspace_makes_the_caller_admin_without_activating() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with upstream(world.fake) as http:
        created = await http.post("/api/workspaces", json={"name": "Bob's"}, headers=bearer(pair.access_token))
        listed = await http.get("/api/workspaces", headers=bearer(pair.access_token))
        nameless = await http.post("/api/workspaces", json={}, headers=bearer(pair.access_token))

    body = created.json()
    assert created.status_code == 200
    assert set(body) == {"_id", "name", "tenant", "labels", "invites", "members", "created", "__v"}
    assert body["members"][0]["roles"] == ["admin", "user"]
    assert len(listed.json()) == 2
    assert "workspace" not in claims(pair.access_token)
    assert nameless.status_code == 400


async def test_activate_sets_a_new_cookie_for_cookie_sessions() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    async with upstream(world.fake) as http:
        response = await http.post(f"/api/workspaces/{world.globex.id}/activate", headers=session(world.fake, cookie))

    assert response.status_code == 200
    assert response.json()["_id"] == world.globex.id
    activated = cookie_value(response, "qlt_0")
    assert activated is not None
    assert claims(activated)["workspace"] == {"_id": world.globex.id, "name": "Globex", "roles": ["user"], "labels": []}


async def test_activate_fails_with_500_for_bearer_and_api_key_callers() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    key = world.fake.add_api_token(world.alice)
    path = f"/api/workspaces/{world.globex.id}/activate"
    async with upstream(world.fake) as http:
        with_bearer = await http.post(path, headers=bearer(pair.access_token))
        with_key = await http.post(path, headers={"x-api-key": key})

    for response in (with_bearer, with_key):
        assert response.status_code == 500
        assert response.json() == {"message": "failed to activate workspace"}
