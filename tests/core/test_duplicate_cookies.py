"""A credential cookie sent twice (cookie tossing from a sibling subdomain) is refused, never "the last one wins"."""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import httpx
import pytest

from ..support import World, bearer, client, config_for, fastapi_app, make_world

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


def access_tokens(world: World) -> Tuple[str, str]:
    return world.fake.issue_tokens(world.alice).access_token, world.fake.issue_tokens(world.bob).access_token


def refresh_tokens(world: World) -> Tuple[str, str]:
    return world.fake.issue_tokens(world.alice).refresh_token, world.fake.issue_tokens(world.bob).refresh_token


def session_cookies(world: World) -> Tuple[str, str]:
    return world.fake.issue_session_cookie(world.alice), world.fake.issue_session_cookie(world.bob)


CASES: Dict[str, Callable[[World], Tuple[str, str]]] = {
    "q_access_token": access_tokens,
    "q_refresh_token": refresh_tokens,
    "qlt_0": session_cookies,
}


@pytest.mark.parametrize("split", [False, True], ids=["one-header", "two-headers"])
@pytest.mark.parametrize("name", sorted(CASES))
async def test_a_credential_cookie_sent_twice_is_refused(
    name: str, split: bool, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    victim, attacker = CASES[name](world)
    if split:  # HTTP/2 clients may send each cookie in a header of its own
        headers: List[Tuple[str, str]] = [("cookie", f"{name}={victim}"), ("cookie", f"{name}={attacker}")]
    else:
        headers = [("cookie", f"{name}={victim}; {name}={attacker}")]
    caplog.set_level("INFO", logger="qelos_integrator_fastapi")
    async with client(fastapi_app(config_for(world.fake))) as http:
        response = await http.get("/me", headers=httpx.Headers(headers))
    assert response.json()["user"] is None
    assert world.fake.requests == [], "a doubtful credential is never sent upstream"
    lines = [r.getMessage() for r in caplog.records if r.name == "qelos_integrator_fastapi"]
    assert lines == [f"ignored a credential on GET /me: cookie {name} sent more than once"]
    assert all(r.levelname == "INFO" for r in caplog.records)
    assert victim not in caplog.text and attacker not in caplog.text


async def test_a_duplicate_cookie_refuses_every_cookie_credential() -> None:
    world = make_world()
    alice = world.fake.issue_tokens(world.alice)
    bob = world.fake.issue_tokens(world.bob)
    world.fake.clock.advance(ACCESS_TTL + 1)
    # A planted second access cookie must not let the refresh cookie beside it sign anyone in either.
    cookie = (
        f"q_access_token={alice.access_token}; q_access_token={bob.access_token}; q_refresh_token={bob.refresh_token}"
    )
    async with client(fastapi_app(config_for(world.fake))) as http:
        response = await http.get("/me", headers={"cookie": cookie})
    assert response.json()["user"] is None
    assert world.fake.count("POST /api/token/refresh") == 0


async def test_a_bearer_header_still_counts_beside_duplicate_cookies() -> None:
    world = make_world()
    alice = world.fake.issue_tokens(world.alice)
    cookie = "q_access_token=one; q_access_token=two"
    async with client(fastapi_app(config_for(world.fake))) as http:
        response = await http.get("/me", headers={**bearer(alice.access_token), "cookie": cookie})
    assert response.json()["user"]["_id"] == world.alice.id


async def test_distinct_cookies_of_one_name_each_are_fine() -> None:
    world = make_world()
    alice = world.fake.issue_tokens(world.alice)
    cookie = f"other=1; other=2; q_access_token={alice.access_token}"
    async with client(fastapi_app(config_for(world.fake))) as http:
        response = await http.get("/me", headers={"cookie": cookie})
    assert response.json()["user"]["_id"] == world.alice.id
