from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from ..support import (
    REFRESH_SECRET,
    claims,
    cookie_names,
    cookie_value,
    make_world,
    session,
    set_cookie_headers,
    upstream,
)

pytestmark = pytest.mark.anyio


async def test_unknown_provider_and_disabled_social_login() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        unknown = await http.get("/api/auth/twitter")
        disabled = await http.get("/api/auth/github")

    assert (unknown.status_code, unknown.json()) == (400, {"message": "Twitter social login does not exist"})
    assert (disabled.status_code, disabled.json()) == (400, {"message": "GitHub social login is not enabled"})


async def test_sdk_flow_redirects_to_return_url_with_a_refresh_token_and_state() -> None:
    world = make_world()
    world.fake.set_social_user(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get("/api/auth/google", params={"returnUrl": "/auth/done?x=1", "state": "s 1"})

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert location.path == "/auth/done"
    query = parse_qs(location.query)
    assert query["x"] == ["1"]
    assert query["state"] == ["s 1"]
    refresh = claims(query["rt"][0], REFRESH_SECRET)
    assert refresh["sub"] == world.alice.id
    assert refresh["workspace"] == world.acme.id
    assert set_cookie_headers(response) == []


@pytest.mark.parametrize(
    ("return_url", "allowed"),
    [
        ("https://app.example.com/cb", True),
        ("https://app.example.com:443/cb", True),
        ("https://app.example.com:8443/cb", True),
        ("/cb", True),
        # Qelos lets `/\` through, which browsers read as `//`: the app's own return paths must be checked.
        ("/\\evil.example.com/cb", True),
        ("https://evil.example.com/cb", False),
        ("//evil.example.com/cb", False),
        ("javascript:alert(1)", False),
        ("app.example.com/cb", False),
    ],
)
async def test_an_unsafe_return_url_gets_the_browser_flow(return_url: str, allowed: bool) -> None:
    world = make_world()
    world.fake.set_social_user(world.bob)
    async with upstream(world.fake) as http:
        response = await http.get("/api/auth/linkedin", params={"returnUrl": return_url})

    assert response.status_code == 302
    if allowed:
        assert response.headers["location"].startswith(return_url + "?rt=")
        assert set_cookie_headers(response) == []
    else:
        # Qelos completes its own browser flow: a session cookie for its host and the app root.
        assert response.headers["location"] == "/"
        assert cookie_value(response, "qlt_0") is not None


async def test_absolute_return_url_without_website_urls() -> None:
    world = make_world(website_urls=[])
    world.fake.set_social_user(world.bob)
    async with upstream(world.fake) as http:
        absolute = await http.get("/api/auth/facebook", params={"returnUrl": "https://app.example.com/"})
        relative = await http.get("/api/auth/facebook", params={"returnUrl": "/done"})

    assert (absolute.headers["location"], cookie_names(absolute)) == ("/", ["qlt_0"])
    assert relative.headers["location"].startswith("/done?rt=")


async def test_browser_flow_sets_a_cookie_that_never_rotates() -> None:
    world = make_world()
    world.fake.set_social_user(world.alice)
    async with upstream(world.fake) as http:
        response = await http.get("/api/auth/github")
        cookie = cookie_value(response, "qlt_0")
        assert cookie is not None
        world.fake.clock.advance(3600)
        me = await http.get("/api/me", headers=session(world.fake, cookie))

    assert (response.status_code, response.headers["location"]) == (302, "/")
    assert me.status_code == 200
    assert set_cookie_headers(me) == []


async def test_callback_exchanges_the_refresh_token_once_for_a_short_cookie() -> None:
    world = make_world()
    world.fake.set_social_user(world.alice)
    async with upstream(world.fake) as http:
        redirect = await http.get("/api/auth/google", params={"returnUrl": "/done"})
        refresh = parse_qs(urlsplit(redirect.headers["location"]).query)["rt"][0]
        exchanged = await http.post("/api/auth/callback", params={"rt": refresh})
        replayed = await http.post("/api/auth/callback", params={"rt": refresh})

    assert exchanged.status_code == 200
    payload = exchanged.json()["payload"]
    assert payload["workspace"] == {"_id": world.acme.id}
    assert payload["user"]["_id"] == world.alice.id
    assert "password" not in payload["user"]
    cookie = cookie_value(exchanged, "qlt_0")
    assert cookie is not None
    assert "Max-Age=2592000" in set_cookie_headers(exchanged)[0]
    cookie_claims = claims(cookie)
    assert cookie_claims["exp"] - cookie_claims["iat"] == 18000
    # The body keeps the bare `{_id}`; `getSignedToken` adds an empty name to the claim.
    assert cookie_claims["workspace"] == {"_id": world.acme.id, "name": ""}
    assert replayed.status_code == 401
    assert replayed.json() == {"errors": {"general": "Refresh token not valid"}}


async def test_callback_cookie_is_upgraded_by_rotation_within_its_lifetime() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.bob)
    async with upstream(world.fake) as http:
        exchanged = await http.post("/api/auth/callback", params={"rt": pair.refresh_token})
        cookie = cookie_value(exchanged, "qlt_0")
        assert cookie is not None
        world.fake.clock.advance(1800)
        rotated = cookie_value(await http.get("/api/me", headers=session(world.fake, cookie)), "qlt_0")

    assert rotated is not None
    assert claims(rotated)["exp"] - claims(rotated)["iat"] == 30 * 86400


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        ("", 401, None),
        ("?rt=", 401, None),
        ("?rt=%20%20", 400, {"error": "Refresh token is missing"}),
        ("?rt=not-a-jwt", 401, {"error": "Invalid refresh token"}),
    ],
)
async def test_callback_errors(query: str, status: int, body: object) -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/auth/callback" + query)

    assert response.status_code == status
    if body is None:
        assert response.content == b""
    else:
        assert response.json() == body


async def test_callback_for_an_unknown_user() -> None:
    world = make_world()
    elsewhere = make_world()
    pair = elsewhere.fake.issue_tokens(elsewhere.bob)
    async with upstream(world.fake) as http:
        response = await http.post("/api/auth/callback", params={"rt": pair.refresh_token})

    assert response.json() == {"errors": {"general": "User not found"}}
