from __future__ import annotations

import pytest

from qelos_integrator_fastapi.testing import FakeQelos

from ..support import bearer, claims, cookie_value, make_world, session, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio

ROTATION = 1800


async def test_a_young_cookie_authenticates_without_rotation() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    world.fake.clock.advance(ROTATION - 1)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=session(world.fake, cookie))

    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert set_cookie_headers(response) == []


async def test_an_old_cookie_is_rotated_on_that_same_response() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    world.fake.clock.advance(ROTATION)
    world.alice.first_name = "Alicia"
    async with upstream(world.fake) as http:
        response = await http.get("/api/workspaces", headers=session(world.fake, cookie))

    assert response.status_code == 200
    rotated = cookie_value(response, "qlt_0")
    assert rotated is not None
    assert "; Max-Age=2592000; Domain=qelos.test; Path=/api; " in set_cookie_headers(response)[0]
    old, new = claims(cookie), claims(rotated)
    assert new["tokenIdentifier"] != old["tokenIdentifier"]
    assert new["tokenIdentifier"].startswith("1800001800000:")
    assert new["workspace"] == old["workspace"]
    assert new["firstName"] == "Alicia"
    assert new["exp"] == 1_800_001_800 + 30 * 86400


async def test_rotation_happens_once_and_old_cookies_keep_working_until_exp() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    world.fake.clock.advance(ROTATION)
    async with upstream(world.fake) as http:
        first = await http.get("/api/me", headers=session(world.fake, cookie))
        near = await http.get("/api/me", headers=session(world.fake, cookie))
        world.fake.clock.advance(60)
        later = await http.get("/api/me", headers=session(world.fake, cookie))
        world.fake.clock.advance(30 * 86400)
        expired = await http.get("/api/me", headers=session(world.fake, cookie))

    assert len(set_cookie_headers(first)) == 1
    assert (near.status_code, set_cookie_headers(near)) == (200, [])
    assert (later.status_code, set_cookie_headers(later)) == (200, [])
    assert expired.status_code == 401
    assert expired.json() == {"message": "you are not authorized. must be logged in."}


async def test_rotation_threshold_is_configurable() -> None:
    world = make_world(cookie_rotation_after=10)
    cookie = world.fake.issue_session_cookie(world.bob)
    world.fake.clock.advance(10)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers=session(world.fake, cookie))

    assert cookie_value(response, "qlt_0") is not None


async def test_an_invalid_cookie_is_anonymous_and_hides_a_valid_bearer() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get("/api/me", headers={**session(world.fake, "garbage"), **bearer(pair.access_token)})

    assert response.status_code == 401
    assert response.json() == {"message": "you are not authorized. must be logged in."}


async def test_the_legacy_token_cookie_is_read_after_qlt() -> None:
    world = make_world()
    alice = world.fake.issue_session_cookie(world.alice)
    bob = world.fake.issue_session_cookie(world.bob)
    async with upstream(world.fake) as http:
        legacy = await http.get("/api/me", headers={"cookie": f"token={bob}"})
        both = await http.get("/api/me", headers={"cookie": f"token={bob}; qlt_0={alice}"})

    assert legacy.json()["username"] == "bob"
    assert both.json()["username"] == "alice"


async def test_cookie_name_uses_the_first_eight_characters_of_the_tenant() -> None:
    fake = FakeQelos(tenant="very-long-tenant")
    user = fake.add_user("dora", "dora-pass", "dora@example.com")
    async with upstream(fake) as http:
        response = await http.post(
            "/api/signin", json={"username": "dora", "password": "dora-pass"}, headers={"tenant": fake.tenant}
        )
        other_tenant = await http.post("/api/signin", json={"username": "dora", "password": "dora-pass"})

    assert fake.session_cookie_name == "qlt_very-lon"
    assert set_cookie_headers(response)[0].startswith("qlt_very-lon=")
    assert claims(fake.issue_session_cookie(user), "fake-qelos-jwt-secret-for-tests-only!")["tenant"] == (
        "very-long-tenant"
    )
    assert other_tenant.status_code == 401


async def test_cookie_logout_clears_the_cookie_but_the_jwt_lives_on() -> None:
    world = make_world()
    cookie = world.fake.issue_session_cookie(world.alice)
    async with upstream(world.fake) as http:
        logout = await http.post("/api/logout", headers=session(world.fake, cookie))
        world.fake.clock.advance(ROTATION)
        after = await http.get("/api/me", headers=session(world.fake, cookie))
        anonymous = await http.post("/api/logout")

    assert logout.status_code == 200
    assert logout.content == b""
    assert set_cookie_headers(logout) == [
        "qlt_0=; Max-Age=-1; Domain=qelos.test; Path=/api; Expires=Fri, 15 Jan 2027 07:59:59 GMT; "
        "HttpOnly; Secure; SameSite=None"
    ]
    assert after.status_code == 200
    assert set_cookie_headers(after) == []
    assert anonymous.status_code == 401


async def test_cookie_signin_then_cookie_calls() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        signin = await http.post("/api/signin", json={"username": "bob", "password": "bob-pass"})
        token = cookie_value(signin, "qlt_0")
        assert token is not None
        me = await http.get("/api/me", headers=session(world.fake, token))

    assert me.json()["workspace"]["_id"] == world.acme.id
