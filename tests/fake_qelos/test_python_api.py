from __future__ import annotations

import pytest

import qelos_integrator_fastapi.testing as testing
from qelos_integrator_fastapi.testing import FakeClock, FakeQelos

from ..support import bearer, claims, make_world, upstream

pytestmark = pytest.mark.anyio


def test_all_is_sorted_and_complete() -> None:
    assert testing.__all__ == sorted(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_clock() -> None:
    clock = FakeClock()
    assert clock.now() == 1_800_000_000.0
    clock.advance(2.5)
    assert FakeClock(start=10).now() == 10.0
    assert repr(clock) == "FakeClock(now=1800000002.5)"
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_defaults_and_reprs() -> None:
    fake = FakeQelos(url="http://qelos.test/")
    user = fake.add_user("amy", "amy-pass", "amy@example.com")
    workspace = fake.add_workspace("W")
    assert fake.url == "http://qelos.test"
    assert fake.tenant == "0"
    assert fake.session_cookie_name == "qlt_0"
    assert fake.transport is fake.transport
    assert len(user.id) == 24
    assert int(user.id, 16) >= 0
    assert user.roles == ["user"]
    assert repr(fake) == "FakeQelos(tenant='0', url='http://qelos.test')"
    assert "amy-pass" not in repr(user)
    # https by default, as a real Qelos is served: Secure cookies then travel as they would there.
    assert FakeQelos().url == "https://qelos.test"
    assert repr(workspace) == f"FakeWorkspace(id={workspace.id!r}, name='W')"


def test_seeding_rejects_duplicates_and_foreign_objects() -> None:
    world = make_world()
    other = make_world()
    with pytest.raises(ValueError):
        world.fake.add_user("ALICE", "x", "new@example.com")
    with pytest.raises(ValueError):
        world.fake.issue_tokens(other.alice)
    with pytest.raises(ValueError):
        world.fake.add_api_token(world.alice, workspace=other.acme)
    with pytest.raises(ValueError):
        world.fake.set_social_user(other.bob)
    with pytest.raises(ValueError):
        world.fake.add_blueprint("x", properties={"a": "color"})
    with pytest.raises(ValueError):
        world.fake.add_blueprint("x", properties={}, permission_scope="galaxy")
    with pytest.raises(KeyError):
        world.fake.add_entity("nope", {})


async def test_add_member_changes_roles_and_claims_follow() -> None:
    world = make_world()
    world.fake.add_member(world.acme, world.bob, ["admin"])
    pair = world.fake.issue_tokens(world.bob, workspace=world.acme)
    async with upstream(world.fake) as http:
        listed = await http.get("/api/workspaces", headers=bearer(pair.access_token))

    assert claims(pair.access_token)["workspace"]["roles"] == ["admin"]
    assert listed.json()[0]["isPrivilegedUser"] is True


async def test_demo_seed() -> None:
    fake = FakeQelos.demo()
    async with upstream(fake) as http:
        signin = await http.post(
            "/api/signin", json={"username": "alice", "password": "alice-pass", "authType": "oauth"}
        )
        token = signin.json()["payload"]["token"]
        workspaces = await http.get("/api/workspaces", headers=bearer(token))
        products = await http.get("/api/blueprints/products/entities", headers=bearer(token))
        bob = await http.post("/api/signin", json={"username": "bob", "password": "bob-pass"})
        social = await http.get("/api/auth/google", params={"returnUrl": "/"})

    assert [w["isPrivilegedUser"] for w in workspaces.json()] == [True, True]
    assert [p["name"] for p in products.json()] == ["Anvil", "Rocket skates", "Giant magnet"]
    assert bob.status_code == 200
    assert social.status_code == 302
    assert len(fake.entities("products")) == 4


def test_a_wall_clock_follows_real_time_and_can_still_be_advanced() -> None:
    import time

    from qelos_integrator_fastapi.testing import FakeClock

    clock = FakeClock.wall()
    before = time.time()
    assert before - 1 <= clock.now() <= time.time() + 1
    clock.advance(3600)
    assert clock.now() >= before + 3600
    assert FakeClock().now() == FakeClock().now()  # the default clock stands still
