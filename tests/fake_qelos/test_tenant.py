"""Tenant resolution as Qelos's gateway does it: a mapped host, else the `tenant` header, else "0"."""

from __future__ import annotations

import httpx
import pytest

from qelos_integrator_fastapi.testing import FakeQelos

from ..support import bearer, make_world, oauth_signin, set_cookie_headers, upstream

pytestmark = pytest.mark.anyio

TENANT = "5f0a1b2c3d4e5f60"
SIGNIN = {"username": "alice", "password": "alice-pass"}


async def test_a_request_without_tenant_is_tenant_0() -> None:
    world = make_world(tenant=TENANT)
    default = make_world()
    async with upstream(world.fake) as http, upstream(default.fake) as on_default:
        without = await http.post("/api/signin", json=SIGNIN)
        as_zero = await http.post("/api/signin", json=SIGNIN, headers={"tenant": "0"})
        with_tenant = await http.post("/api/signin", json=SIGNIN, headers={"tenant": TENANT})
        zero = await on_default.post("/api/signin", json=SIGNIN)
    # Tenant "0" has no users on a fake serving another tenant: the same answer as a wrong password.
    assert without.status_code == as_zero.status_code == 401
    assert without.json() == as_zero.json() == {"errors": {"general": {"message": "Invalid username or password"}}}
    assert with_tenant.status_code == 200
    assert set_cookie_headers(with_tenant)[0].startswith("qlt_5f0a1b2c=")
    assert zero.status_code == 200
    assert set_cookie_headers(zero)[0].startswith("qlt_0=")


async def test_a_session_cookie_named_for_another_tenant_is_not_seen() -> None:
    world = make_world(tenant=TENANT)
    cookie = {"cookie": f"qlt_5f0a1b2c={world.fake.issue_session_cookie(world.alice, workspace=world.acme)}"}
    async with upstream(world.fake) as http:
        without = await http.get("/api/me", headers=cookie)
        entities = await http.get("/api/blueprints/products/entities", headers=cookie)
        with_tenant = await http.get("/api/me", headers={**cookie, "tenant": TENANT})
    assert without.status_code == 401
    assert without.json() == {"message": "you are not authorized. must be logged in."}
    assert entities.status_code == 404
    assert entities.json() == {"message": "blueprint not found"}
    assert with_tenant.json()["username"] == "alice"


async def test_a_bearer_claim_sets_the_auth_services_tenant_but_not_no_codes() -> None:
    world = make_world(tenant=TENANT)
    token = world.fake.issue_tokens(world.alice, workspace=world.acme).access_token
    async with upstream(world.fake) as http:
        me = await http.get("/api/me", headers=bearer(token))
        workspaces = await http.get("/api/workspaces", headers=bearer(token))
        entities = await http.get("/api/blueprints/products/entities", headers=bearer(token))
        in_tenant = await http.get("/api/blueprints/products/entities", headers={**bearer(token), "tenant": TENANT})
    # The auth service trusts the verified claim; the gateway forwards tenant "0" to no-code.
    assert me.json()["tenant"] == TENANT
    assert [w["name"] for w in workspaces.json()] == ["Acme & Co", "Globex"]
    assert entities.status_code == 404
    assert entities.json() == {"message": "blueprint not found"}
    assert in_tenant.status_code == 200


async def test_the_claims_tenant_names_what_the_auth_service_writes() -> None:
    world = make_world(tenant=TENANT)
    token = world.fake.issue_tokens(world.alice, workspace=world.acme).access_token
    legacy = world.fake.issue_session_cookie(world.alice, workspace=world.acme)
    world.fake.clock.advance(31 * 60)
    async with upstream(world.fake) as http:
        created = await http.post("/api/workspaces", json={"name": "Initech"}, headers=bearer(token))
        rotated = await http.get("/api/me", headers={"cookie": f"token={legacy}"})
    assert created.json()["tenant"] == TENANT
    # The legacy cookie is read under any tenant; its rotation is named for the claim's tenant.
    assert rotated.json()["username"] == "alice"
    assert set_cookie_headers(rotated)[0].startswith("qlt_5f0a1b2c=")


async def test_an_api_token_is_looked_up_in_the_requests_tenant() -> None:
    world = make_world(tenant=TENANT)
    key = {"x-api-key": world.fake.add_api_token(world.alice)}
    async with upstream(world.fake) as http:
        without = await http.get("/api/me", headers=key)
        with_tenant = await http.get("/api/me", headers={**key, "tenant": TENANT})
    assert without.status_code == 401
    assert without.json() == {"message": "Invalid or expired API token"}
    assert with_tenant.json()["username"] == "alice"


async def test_tokens_minted_for_the_tenant_refresh_without_the_header() -> None:
    world = make_world(tenant=TENANT)
    async with upstream(world.fake, tenant=TENANT) as http:
        pair = await oauth_signin(http, **SIGNIN)
    async with upstream(world.fake) as http:
        refreshed = await http.post("/api/token/refresh", headers=bearer(pair["refreshToken"]))
    # Qelos finds the user by the refresh token's own tenant claim.
    assert refreshed.status_code == 200


async def test_a_mapped_host_wins_over_the_tenant_header() -> None:
    world = make_world(tenant=TENANT, hosts={"acme.qelos.test": TENANT})
    token = world.fake.issue_tokens(world.alice, workspace=world.acme).access_token
    async with httpx.AsyncClient(transport=world.fake.transport, base_url="https://acme.qelos.test") as http:
        signin = await http.post("/api/signin", json=SIGNIN)
        header_ignored = await http.post("/api/signin", json=SIGNIN, headers={"tenant": "0"})
        entities = await http.get("/api/blueprints/products/entities", headers=bearer(token))
    async with upstream(world.fake) as default_host:
        on_default_host = await default_host.get("/api/blueprints/products/entities", headers=bearer(token))
    assert signin.status_code == header_ignored.status_code == 200
    assert set_cookie_headers(signin)[0].startswith("qlt_5f0a1b2c=")
    assert "Domain=acme.qelos.test" in set_cookie_headers(signin)[0]
    assert entities.status_code == 200
    assert on_default_host.json() == {"message": "blueprint not found"}


async def test_the_in_process_transport_answers_at_mapped_hosts_only() -> None:
    fake = FakeQelos(hosts={"acme.qelos.test:443": "5f0a"})
    async with httpx.AsyncClient(transport=fake.transport) as http:
        mapped = await http.post("https://ACME.qelos.test/api/signin", json=SIGNIN)
        with pytest.raises(httpx.ConnectError, match=r"nothing answers at other\.qelos\.test"):
            await http.post("https://other.qelos.test/api/signin", json=SIGNIN)
    assert mapped.status_code == 401
