from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest

from ..support import bearer, make_world, session, upstream

pytestmark = pytest.mark.anyio

FLAT = {"$flat": "True"}


async def test_crud_in_the_flat_shape() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    auth = bearer(pair.access_token)
    async with upstream(world.fake) as http:
        created = await http.post(
            "/api/blueprints/products/entities", params=FLAT, json={"name": "Anvil", "price": 10}, headers=auth
        )
        identifier = created.json()["identifier"]
        path = f"/api/blueprints/products/entities/{identifier}"
        fetched = await http.get(path, params=FLAT, headers=auth)
        listed = await http.get("/api/blueprints/products/entities", params=FLAT, headers=auth)
        updated = await http.put(path, params=FLAT, json={"metadata": {"price": 12}}, headers=auth)
        deleted = await http.delete(path, params=FLAT, headers=auth)
        gone = await http.get(path, params=FLAT, headers=auth)

    assert created.status_code == 200
    entity = created.json()
    assert entity == {
        "tenant": "0",
        "identifier": identifier,
        "blueprint": "products",
        "user": world.bob.id,
        "workspace": world.acme.id,
        "metadata": {"name": "Anvil", "price": 10},
        "indexes": [],
        "created": "2027-01-15T08:00:00.000Z",
        "updated": "2027-01-15T08:00:00.000Z",
        "__v": 0,
        "id": identifier,
        "name": "Anvil",
        "price": 10,
    }
    assert identifier[14] == "7"
    assert fetched.json() == entity
    assert listed.json() == [{k: v for k, v in entity.items() if k != "__v"}]
    assert updated.json()["metadata"] == {"name": "Anvil", "price": 12}
    assert deleted.status_code == 200
    assert deleted.json()["price"] == 12
    assert (gone.status_code, gone.json()) == (404, {"message": "entity not found"})


async def test_wrapped_shape_is_deprecated() -> None:
    world = make_world()
    world.fake.add_entity("products", {"name": "A"}, user=world.bob, workspace=world.acme)
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with upstream(world.fake) as http:
        wrapped = await http.get(
            "/api/blueprints/products/entities", params={"$flat": "FALSE"}, headers=bearer(pair.access_token)
        )
        forced = await http.get(
            "/api/blueprints/products/entities",
            params={"$flat": "0"},
            headers={**bearer(pair.access_token), "accept-version": "v1"},
        )

    assert "name" not in wrapped.json()[0]
    assert wrapped.headers["deprecation"] == "true"
    assert 'rel="deprecation"' in wrapped.headers["link"]
    assert forced.json()[0]["name"] == "A"
    assert "deprecation" not in forced.headers


async def test_validation_failures_are_406() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    cases = [
        ({"price": 1}, "Property name must be a string"),
        ({"name": ""}, "Property name is required"),
        ({"name": 5}, "Property name must be a string"),
        ({"name": "A", "price": "cheap"}, "Property price must be a number"),
        ({"name": "A", "active": "yes"}, "Property active must be a boolean"),
    ]
    async with upstream(world.fake) as http:
        for body, expected in cases:
            response = await http.post(
                "/api/blueprints/products/entities", json=body, headers=bearer(pair.access_token)
            )
            assert (response.status_code, response.json()) == (406, {"message": expected})


async def test_unknown_blueprint_and_anonymous_and_bad_credentials() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        unknown = await http.get("/api/blueprints/nope/entities")
        anonymous = await http.get("/api/blueprints/products/entities")
        bad_bearer = await http.get("/api/blueprints/products/entities", headers=bearer("garbage"))
        bad_key = await http.get("/api/blueprints/products/entities", headers={"x-api-key": "ql_nope"})
        bad_cookie = await http.get("/api/blueprints/products/entities", headers=session(world.fake, "x"))
        count = await http.get("/api/blueprints/products/charts/count")

    assert (unknown.status_code, unknown.json()) == (404, {"message": "blueprint not found"})
    for response in (anonymous, bad_bearer, bad_key, bad_cookie):
        assert (response.status_code, response.json()) == (403, {"message": "not permitted"})
    assert (count.status_code, count.content) == (401, b"")


async def test_workspace_scope_isolates_workspaces() -> None:
    world = make_world()
    world.fake.add_entity("products", {"name": "in acme"}, user=world.alice, workspace=world.acme)
    world.fake.add_entity("products", {"name": "in globex"}, user=world.alice, workspace=world.globex)
    in_acme = world.fake.issue_tokens(world.alice, workspace=world.acme)
    in_globex = world.fake.issue_tokens(world.alice, workspace=world.globex)
    nowhere = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        acme = await _names(http, in_acme.access_token)
        globex = await _names(http, in_globex.access_token)
        no_workspace = await http.get("/api/blueprints/products/entities", headers=bearer(nowhere.access_token))
        identifier = world.fake.entities("products")[0]["id"]
        get_one = await http.get(
            f"/api/blueprints/products/entities/{identifier}", headers=bearer(nowhere.access_token)
        )
        other = await http.get(
            f"/api/blueprints/products/entities/{identifier}", headers=bearer(in_globex.access_token)
        )

    assert (acme, globex) == (["in acme"], ["in globex"])
    assert (no_workspace.status_code, no_workspace.json()) == (403, {"message": "user is not connected to a workspace"})
    assert (get_one.status_code, get_one.json()) == (500, {"message": "something went wrong with entity"})
    assert other.status_code == 404


async def test_user_scope_and_admin_bypass() -> None:
    world = make_world()
    world.fake.add_blueprint("notes", properties={"text": "string"}, permission_scope="user")
    world.fake.add_entity("notes", {"text": "alice's"}, user=world.alice)
    world.fake.add_entity("notes", {"text": "bob's"}, user=world.bob)
    alice = world.fake.issue_tokens(world.alice)
    root = world.fake.issue_tokens(world.root)
    async with upstream(world.fake) as http:
        own = await _names(http, alice.access_token, "notes", "text")
        everything = await _names(http, root.access_token, "notes", "text")
        bypassed = await http.get(
            "/api/blueprints/notes/entities", params={"bypassAdmin": "true"}, headers=bearer(root.access_token)
        )

    assert own == ["alice's"]
    assert everything == ["alice's", "bob's"]
    assert bypassed.json() == []


async def test_tenant_scope_and_explicit_permissions() -> None:
    world = make_world()
    world.fake.add_blueprint(
        "posts",
        properties={"title": "string"},
        permission_scope="workspace",
        permissions=[
            {"scope": "tenant", "operation": "read", "guest": True},
            {"scope": "workspace", "operation": "create", "workspaceRoleBased": ["admin"]},
        ],
    )
    alice = world.fake.issue_tokens(world.alice, workspace=world.acme)
    bob = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with upstream(world.fake) as http:
        by_admin = await http.post(
            "/api/blueprints/posts/entities", json={"title": "hi"}, headers=bearer(alice.access_token)
        )
        by_member = await http.post(
            "/api/blueprints/posts/entities", json={"title": "no"}, headers=bearer(bob.access_token)
        )
        public = await http.get("/api/blueprints/posts/entities")

    assert by_admin.status_code == 200
    assert (by_member.status_code, by_member.json()) == (403, {"message": "not permitted"})
    assert [post["title"] for post in public.json()] == ["hi"]


async def test_filters_sort_limit_page_and_count() -> None:
    world = make_world()
    for name, price, active in (("a", 5, True), ("b", 30, False), ("c", 20, True), ("d", 10, True)):
        world.fake.add_entity(
            "products", {"name": name, "price": price, "active": active}, user=world.bob, workspace=world.acme
        )
        world.fake.clock.advance(1)
    token = world.fake.issue_tokens(world.bob, workspace=world.acme).access_token
    async with upstream(world.fake) as http:
        assert await _names(http, token, params={"active": "TRUE"}) == ["a", "c", "d"]
        assert await _names(http, token, params={"price": "20"}) == ["c"]
        assert await _names(http, token, params={"price[$gte]": "10", "$sort": "-price"}) == ["b", "c", "d"]
        assert await _names(http, token, params={"$sort": "-created", "$limit": "2"}) == ["d", "c"]
        assert await _names(http, token, params={"$limit": "2", "$page": "2"}) == ["c", "d"]
        assert await _names(http, token, params={"$q": "B", "$qProps": "name"}) == ["b"]
        assert await _names(http, token, params={"name[$regex]": "^[ab]"}) == ["a", "b"]
        assert await _names(http, token, params={"name[$ne]": "a", "price[$lt]": "20"}) == ["d"]
        count = await http.get(
            "/api/blueprints/products/charts/count", params={"active": "true"}, headers=bearer(token)
        )
        skip = await http.get("/api/blueprints/products/entities", params={"$skip": "1"}, headers=bearer(token))

    assert count.json() == {"count": 3}
    assert (skip.status_code, skip.json()) == (500, {"message": "something went wrong with entities"})


async def test_admin_may_set_user_and_workspace_on_create() -> None:
    world = make_world()
    root = world.fake.issue_tokens(world.root)
    async with upstream(world.fake) as http:
        created = await http.post(
            "/api/blueprints/products/entities",
            json={"metadata": {"name": "seeded"}, "name": "ignored", "user": world.bob.id, "workspace": world.acme.id},
            headers=bearer(root.access_token),
        )

    assert created.json()["user"] == world.bob.id
    assert created.json()["workspace"] == world.acme.id
    assert created.json()["name"] == "seeded"


async def _names(
    http: Any, token: str, key: str = "products", prop: str = "name", params: Optional[Dict[str, str]] = None
) -> List[Any]:
    response = await http.get(f"/api/blueprints/{key}/entities", params=params or {}, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [entity[prop] for entity in response.json()]
