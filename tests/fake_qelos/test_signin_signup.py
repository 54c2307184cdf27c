from __future__ import annotations

import httpx
import pytest

from ..support import DAY, claims, cookie_value, make_world, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio


async def test_cookie_signin_sets_the_qelos_session_cookie_and_no_token_in_the_body() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signin", json={"username": "alice", "password": "alice-pass"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {
        "payload": {
            "user": {
                "username": "alice",
                "email": "alice@example.com",
                "firstName": "Alice",
                "lastName": "Liddell",
                "name": "Alice Liddell",
                "roles": ["user"],
            },
            "workspace": {"_id": world.acme.id, "name": "Acme & Co", "roles": ["admin", "user"], "labels": ["retail"]},
        }
    }
    [cookie] = set_cookie_headers(response)
    token = cookie_value(response, "qlt_0")
    assert token is not None
    assert cookie == (
        f"qlt_0={token}; Max-Age=2592000; Domain=qelos.test; Path=/api; "
        "Expires=Sun, 14 Feb 2027 08:00:00 GMT; HttpOnly; Secure; SameSite=None"
    )
    payload = claims(token)
    assert payload["exp"] - payload["iat"] == 30 * DAY
    assert payload["tokenIdentifier"].startswith("1800000000000:")


async def test_cookie_domain_follows_tenanthost_and_drops_the_port() -> None:
    world = make_world()
    # Straight to the ASGI app: fake.transport answers only at the fake's own origin.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.fake)) as raw:
        on_host = await raw.post(
            "http://qelos.test:8443/api/signin", json={"username": "alice", "password": "alice-pass"}
        )
    async with upstream(world.fake) as http:
        on_tenanthost = await http.post(
            "/api/signin",
            json={"username": "alice", "password": "alice-pass"},
            headers={"tenanthost": "tenant.example.com:3000"},
        )

    assert "; Domain=qelos.test;" in set_cookie_headers(on_host)[0]
    assert "; Domain=tenant.example.com;" in set_cookie_headers(on_tenanthost)[0]


async def test_oauth_signin_returns_both_tokens_and_sets_no_cookie() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post(
            "/api/signin",
            json={"username": "alice", "password": "alice-pass", "authType": "oauth", "workspace": world.globex.id},
        )

    body = response.json()["payload"]
    assert set(body) == {"token", "refreshToken", "user", "workspace"}
    assert body["workspace"] == {"_id": world.globex.id, "name": "Globex", "roles": ["user"], "labels": []}
    assert set_cookie_headers(response) == []
    access = claims(body["token"])
    assert access["exp"] - access["iat"] == 18000
    assert "tokenIdentifier" not in access
    assert access["workspace"] == {"_id": world.globex.id, "name": "Globex", "roles": ["user"], "labels": []}
    refresh = claims(body["refreshToken"], "refresh-secret-of-the-fake-qelos-test-suite")
    assert set(refresh) == {"sub", "tenant", "workspace", "tokenIdentifier", "iat", "exp"}
    assert refresh["workspace"] == world.globex.id


async def test_signin_remembers_the_last_workspace() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        await http.post(
            "/api/signin", json={"username": "alice", "password": "alice-pass", "workspace": world.globex.id}
        )
        again = await http.post("/api/signin", json={"username": "alice", "password": "alice-pass"})

    assert again.json()["payload"]["workspace"]["_id"] == world.globex.id


async def test_user_without_workspace_gets_no_workspace_key() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signin", json={"username": "root", "password": "root-pass"})

    assert "workspace" not in response.json()["payload"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"username": "alice"}, {"password": {"code": "EMPTY_PASSWORD"}}),
        ({"username": "alice", "password": ""}, {"password": {"code": "EMPTY_PASSWORD"}}),
        ({"password": "alice-pass"}, {"password": "password is incorrect"}),
        ({"username": "alice", "password": "nope"}, {"general": {"message": "Invalid username or password"}}),
        ({"username": "nobody", "password": "x"}, {"general": {"message": "Invalid username or password"}}),
        (
            {"username": "alice", "password": "alice-pass", "roles": ["admin"]},
            {"general": {"message": "Invalid username or password"}},
        ),
    ],
)
async def test_signin_failures_answer_401_with_the_real_error_bodies(body: object, errors: object) -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signin", json=body)

    assert response.status_code == 401
    assert response.json() == {"errors": errors}


async def test_signin_by_email_rewrites_the_username_to_the_email() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post("/api/signin", json={"username": "bob@example.com", "password": "bob-pass"})

    assert response.json()["payload"]["user"]["username"] == "bob@example.com"
    assert world.bob.username == "bob@example.com"


async def test_signin_with_an_unknown_auth_type_never_answers() -> None:
    world = make_world()
    magic = {"username": "alice", "password": "alice-pass", "authType": "magic"}
    async with upstream(world.fake) as http:
        wrong_password = await http.post("/api/signin", json={**magic, "password": "nope"})
        # Qelos's async login strategy throws INVALID_AUTH_TYPE where nothing catches it: no answer comes.
        with pytest.raises(httpx.RemoteProtocolError, match=r"Server disconnected without sending a response\."):
            await http.post("/api/signin", json=magic)
        falsy = await http.post("/api/signin", json={**magic, "authType": ""})

    assert wrong_password.status_code == 401
    assert [entry.status for entry in world.fake.requests] == [401, None, 200]
    assert cookie_value(falsy, "qlt_0") is not None


async def test_signup_validation_failures_answer_200_with_errors() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post(
            "/api/signup", json={"username": "x", "email": "not-an-email", "firstName": "R2-D2", "password": "short"}
        )

    assert response.status_code == 200
    assert response.json() == {
        "errors": {
            "email": {"code": "INVALID_EMAIL"},
            "firstName": {"code": "INVALID_NAME"},
            "password": {"code": "INVALID_PASSWORD"},
        }
    }


async def test_signup_of_an_existing_user_fails_the_form() -> None:
    world = make_world()
    async with upstream(world.fake) as http:
        response = await http.post(
            "/api/signup",
            json={"username": "ALICE", "email": "alice2@example.com", "firstName": "Alice", "password": "long enough"},
        )

    assert response.status_code == 200
    assert response.json() == {"errors": {"": "FORM_SUBMISSION_FAILED"}}


async def test_signup_creates_a_user_and_signs_it_in() -> None:
    world = make_world()
    signup = {
        "username": "Carol",
        "email": "carol@example.com",
        "firstName": "Carol",
        "lastName": "Danvers",
        "password": "carol-password",
        "authType": "oauth",
    }
    async with upstream(world.fake) as http:
        response = await http.post("/api/signup", json=signup)
        cookie_signin = await http.post("/api/signin", json={"username": "carol", "password": "carol-password"})

    payload = response.json()["payload"]
    assert payload["user"] == {
        "username": "carol",
        # The form's email is not saved: Qelos derives one from the username.
        "email": "carol@null",
        "firstName": "Carol",
        "lastName": "Danvers",
        "name": "Carol Danvers",
        "fullName": "Carol Danvers",
        "roles": ["user"],
    }
    assert "workspace" not in payload
    assert claims(payload["token"])["username"] == "carol"
    assert cookie_signin.status_code == 200
