"""Upstream call counts, with and without the opt-in identity cache."""

from __future__ import annotations

import base64
import copy
import json
import tracemalloc
from typing import Any, Callable, Dict, List

import anyio
import pytest
from starlette.requests import Request

from qelos_integrator_fastapi import QelosEvent, QelosUnavailable, create_qelos_auth_router
from qelos_integrator_fastapi._cache import IdentityCache, _key, read_only

from ..support import (
    bearer,
    client,
    config_for,
    cookie_header,
    fastapi_app,
    find_middleware,
    make_world,
    set_cookie_headers,
)

pytestmark = pytest.mark.anyio


async def test_uncached_requests_make_two_calls_and_anonymous_none() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    async with client(fastapi_app(config_for(world.fake))) as http:
        for _ in range(3):
            await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
        for _ in range(3):
            await http.get("/me")
    assert world.fake.count("GET /api/me") == 3
    assert world.fake.count("GET /api/workspaces") == 3
    assert len(world.fake.requests) == 6


async def test_without_a_ttl_there_is_no_cache_and_no_cache_events() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    events: List[QelosEvent] = []
    app = fastapi_app(config_for(world.fake), on_event=events.append)
    async with client(app) as http:
        for _ in range(2):
            await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert world.fake.count("GET /api/me") == 2
    assert [e.name for e in events] == ["identity_resolved"] * 2
    assert find_middleware(app).backend.cache is None


async def test_cache_hits_make_no_upstream_call_and_emit_events() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    events: List[QelosEvent] = []
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=60), on_event=events.append)
    async with client(app) as http:
        bodies = [
            (await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})).json() for _ in range(5)
        ]
    assert len(world.fake.requests) == 2
    assert all(body == bodies[0] for body in bodies)
    assert [e.name for e in events if e.name.startswith("cache")] == ["cache_miss"] + ["cache_hit"] * 4
    assert all(e.user_id == world.alice.id for e in events if e.name == "identity_resolved")


async def test_cache_entries_expire_and_failures_are_not_cached() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    now = [0.0]
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=30))
    async with client(app) as http:
        await http.get("/me")  # builds the middleware stack
        cache = IdentityCache[Any](30, 100, clock=lambda: now[0])
        find_middleware(app).backend.cache = cache
        world.fake.inject("GET /api/me", status=500, times=1)
        auth = {"Authorization": f"Bearer {pair.access_token}"}
        assert (await http.get("/me", headers=auth)).json()["error"] == "QELOS_UNAVAILABLE"
        assert (await http.get("/me", headers=auth)).json()["user"]["_id"] == world.alice.id
        assert (await http.get("/me", headers=auth)).json()["user"]["_id"] == world.alice.id
        assert world.fake.count("GET /api/me") == 2
        now[0] = 31.0
        await http.get("/me", headers=auth)
        assert world.fake.count("GET /api/me") == 3


async def test_cache_lifetime_is_capped_by_the_token_exp() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    from qelos_integrator_fastapi._credentials import unverified_claims

    exp = unverified_claims(pair.access_token)["exp"]
    now = [0.0]
    cache = IdentityCache[str](3600, 10, clock=lambda: now[0], wall_clock=lambda: exp - 10)

    async def fetch() -> str:
        return "identity"

    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", False)
    now[0] = 9.0
    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", True)
    now[0] = 11.0
    assert await cache.get_or_fetch(pair.access_token, fetch) == ("identity", False)


async def test_concurrent_misses_share_one_lookup() -> None:
    calls: List[str] = []
    release = anyio.Event()
    cache = IdentityCache[str](60, 2)

    async def fetch() -> str:
        calls.append("same")
        await release.wait()
        return "same"

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(cache.get_or_fetch, "same", fetch)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == ["same"]


async def test_a_waiter_asks_qelos_itself_when_the_shared_lookup_fails() -> None:
    cache = IdentityCache[str](60, 10)
    release = anyio.Event()
    calls: List[str] = []
    results: List[Any] = []

    async def failing() -> str:
        calls.append("shared")
        await release.wait()
        raise QelosUnavailable("Qelos is down")

    async def working() -> str:
        calls.append("own")
        return "identity"

    async def first() -> None:
        with pytest.raises(QelosUnavailable):
            await cache.get_or_fetch("k", failing)

    async def second() -> None:
        results.append(await cache.get_or_fetch("k", working))

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == ["shared", "own"]
    assert results == [("identity", False)]


async def test_after_a_failed_lookup_concurrent_misses_share_one_again() -> None:
    cache = IdentityCache[str](60, 10)
    calls: List[str] = []
    release = anyio.Event()

    async def failing() -> str:
        raise QelosUnavailable("Qelos is down")

    async def fetch() -> str:
        calls.append("k")
        await release.wait()
        return "identity"

    with pytest.raises(QelosUnavailable):
        await cache.get_or_fetch("k", failing)
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(cache.get_or_fetch, "k", fetch)
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert calls == ["k"]


async def test_a_ttl_under_a_second_still_caches() -> None:
    now = [0.0]
    cache = IdentityCache[str](0.5, 10, clock=lambda: now[0])

    async def fetch() -> str:
        return "identity"

    await cache.get_or_fetch("k", fetch)
    now[0] = 0.4
    assert await cache.get_or_fetch("k", fetch) == ("identity", True)


# Mutants judged equivalent (no difference a caller can observe beyond an extra or a saved upstream call):
# * a waiter not breaking out after a failed shared lookup loops once more and either asks Qelos itself
#   or joins a retry another waiter started: the same identities, at most fewer upstream calls;
# * deleting the pending marker without checking it is ours, or not moving a re-stored key to the end,
#   differs only when two lookups of one key overlap a third, and changes upstream call counts, not identities.


async def test_the_least_recently_used_entry_is_evicted() -> None:
    cache = IdentityCache[str](60, 2)

    async def hit(key: str) -> bool:
        async def fetch() -> str:
            return key

        value, from_memory = await cache.get_or_fetch(key, fetch)
        assert value == key
        return from_memory

    assert [await hit(key) for key in ("a", "b", "a", "c")] == [False, False, True, False]
    # "b" was the least recently used when "c" arrived: "a" had been used after it.
    assert [await hit(key) for key in ("a", "c", "b")] == [True, True, False]
    assert len(cache) == 2


async def test_a_handler_cannot_change_a_cached_identity_and_hits_share_it_without_copying() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=60))
    seen: List[Any] = []
    refusals: List[str] = []

    @app.get("/vandal")
    async def vandal(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        seen.append((qelos.user, qelos.workspaces))
        attempts: List[Callable[[], Any]] = [
            lambda: qelos.user.__setitem__("roles", ["admin"]),
            lambda: qelos.user.update(email="mallory@example.com"),
            lambda: qelos.user["roles"].append("admin"),
            lambda: qelos.user["workspace"].pop("roles"),
            lambda: qelos.workspaces.clear(),
            lambda: qelos.workspaces[0]["members"][0]["roles"].__iadd__(["owner"]),
            lambda: qelos.workspace.setdefault("name", "x"),
        ]
        for attempt in attempts:
            try:
                attempt()
            except TypeError as exc:
                refusals.append(str(exc))
        mine = copy.deepcopy(qelos.user)
        mine["roles"].append("admin")  # a copy is a plain, mutable dict
        return {"roles": list(qelos.user["roles"]), "mine": mine["roles"]}

    async with client(app) as http:
        answers = [(await http.get("/vandal", headers=bearer(pair.access_token))).json() for _ in range(3)]
    assert answers == [{"roles": ["user"], "mine": ["user", "admin"]}] * 3
    assert len(refusals) == 3 * 7 and all("read-only" in r for r in refusals)
    assert world.fake.count("GET /api/me") == 1
    # The two hits got the very objects the miss stored: nothing was copied.
    assert seen[1][0] is seen[0][0] and seen[2][0] is seen[0][0]
    assert seen[1][1] is seen[0][1]
    assert isinstance(seen[0][0], dict) and isinstance(seen[0][1], list)
    assert json.loads(json.dumps(seen[0][0]))["email"] == "alice@example.com"


def test_an_entry_for_me_and_two_workspaces_weighs_what_docs_performance_says() -> None:
    # The marginal memory of 200 entries, each a distinct user of the same shape, measured by tracemalloc.
    me = {
        "_id": "6b49d20048ce12c0509e82f3", "tenant": "0", "username": "alice", "email": "alice@example.com",
        "phone": "+100", "name": "Alice Liddell", "firstName": "Alice", "lastName": "Liddell",
        "fullName": "Alice Liddell", "roles": ["user"], "metadata": {},
        "workspace": {"_id": "6b49d200d528289d119e82f6", "name": "Acme%20%26%20Co", "roles": ["admin", "user"],
                      "labels": ["retail"]},
    }  # fmt: skip
    member = {"user": me["_id"], "roles": ["user"], "created": "2027-01-15T08:00:00.000Z"}
    workspaces = [
        {"_id": "6b49d200d528289d119e82f6", "name": "Acme & Co", "tenant": "0", "isPrivilegedUser": True,
         "members": [{**member, "roles": ["admin", "user"], "_id": "6b49d200134299940e9e82f7"}]},
        {"_id": "6b49d2001a6375826c9e82f9", "name": "Globex", "logo": "https://img.test/globex.png", "tenant": "0",
         "isPrivilegedUser": False, "members": [{**member, "_id": "6b49d20064c13cdc849e82fa"}]},
    ]  # fmt: skip
    as_json = json.dumps([me, workspaces])
    # Each entry decodes its own JSON, as each lookup does.
    texts = [as_json.replace("82f3", f"{n:04x}").replace("alice", f"u{n:04x}") for n in range(200)]

    def per_entry(freeze: Callable[[Any, Dict[str, str]], Any]) -> float:
        cache = IdentityCache[Any](60, 1000, wall_clock=lambda: 0.0)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for n, text in enumerate(texts):
                user, spaces = json.loads(text)
                strings: Dict[str, str] = {}
                value = (freeze(user, strings), freeze(spaces, strings))
                cache._store(_key("token", f"token-{n}"), f"token-{n}", value)
            return (tracemalloc.get_traced_memory()[0] - before) / len(texts)
        finally:
            tracemalloc.stop()

    plain = per_entry(lambda value, strings: value)
    stored = per_entry(read_only)
    # docs/performance.md: about 3.5 KB an entry, against 5.5 KB for the JSON as decoded.
    assert stored < 3700 and stored < 0.75 * plain, (stored, plain)


async def test_one_credential_of_two_kinds_is_two_entries() -> None:
    cache = IdentityCache[str](60, 10)

    async def as_token() -> str:
        return "token identity"

    async def as_session() -> str:
        return "session identity"

    assert await cache.get_or_fetch("same-string", as_token, kind="token") == ("token identity", False)
    assert await cache.get_or_fetch("same-string", as_session, kind="session") == ("session identity", False)
    assert await cache.get_or_fetch("same-string", as_session, kind="token") == ("token identity", True)


async def test_session_cookie_users_never_share_a_cache_entry() -> None:
    world = make_world()
    cookies = {user.id: world.fake.issue_session_cookie(user) for user in (world.alice, world.bob)}
    app = fastapi_app(config_for(world.fake, identity_cache_ttl=60))
    async with client(app) as http:
        for _ in range(2):
            for user_id, cookie in cookies.items():
                body = (await http.get("/me", headers=cookie_header(qlt_0=cookie))).json()
                assert (body["mode"], body["user"]["_id"]) == ("session", user_id)
    assert world.fake.count("GET /api/me") == 2  # one miss per user, then hits


async def test_fifty_concurrent_requests_with_one_expired_pair_refresh_once() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(18001)
    world.fake.inject("POST /api/token/refresh", latency=0.05)
    app = fastapi_app(config_for(world.fake))
    responses: List[Any] = []
    async with client(app) as http:

        async def one() -> None:
            headers = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
            responses.append(await http.get("/me", headers=headers))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(one)
    assert world.fake.count("POST /api/token/refresh") == 1
    assert [r.json()["user"]["_id"] for r in responses] == [world.alice.id] * 50
    assert len({tuple(sorted(set_cookie_headers(r))) for r in responses}) == 1


def unsigned_jwt(**claims: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


async def test_an_entry_is_gone_exactly_ttl_seconds_after_it_was_stored() -> None:
    now = [0.0]
    cache = IdentityCache[str](30, 10, clock=lambda: now[0])

    async def fetch() -> str:
        return "identity"

    await cache.get_or_fetch("k", fetch)
    now[0] = 29.999
    assert await cache.get_or_fetch("k", fetch) == ("identity", True)
    now[0] = 30.0
    assert await cache.get_or_fetch("k", fetch) == ("identity", False)


async def test_a_credential_expiring_now_is_not_stored_and_evicts_nothing() -> None:
    cache = IdentityCache[str](60, 1, wall_clock=lambda: 1000.0)

    async def fetch() -> str:
        return "identity"

    await cache.get_or_fetch("live", fetch)
    assert await cache.get_or_fetch(unsigned_jwt(exp=1000), fetch) == ("identity", False)
    assert await cache.get_or_fetch("live", fetch) == ("identity", True)


async def test_an_exp_claim_that_is_not_a_number_leaves_the_ttl() -> None:
    cache = IdentityCache[str](60, 10, wall_clock=lambda: 1000.0)

    async def fetch() -> str:
        return "identity"

    token = unsigned_jwt(exp=True)
    await cache.get_or_fetch(token, fetch)
    assert await cache.get_or_fetch(token, fetch) == ("identity", True)


async def test_logout_drops_the_cached_identity_of_the_signed_out_token() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    config = config_for(world.fake, identity_cache_ttl=60)
    app = fastapi_app(config)
    app.include_router(create_qelos_auth_router(config, mode="token", providers=()))
    cookies = cookie_header(q_access_token=pair.access_token)
    async with client(app) as http:
        for _ in range(2):
            assert (await http.get("/me", headers=cookies)).json()["user"]["username"] == "alice"
            http.cookies.clear()
        assert world.fake.count("GET /api/me") == 1
        assert (await http.post("/auth/logout", headers=cookies)).status_code == 200
        http.cookies.clear()
        await http.get("/me", headers=cookies)
    # Qelos honours a Bearer access token until its exp (contract §1.6); the cache no longer answers it.
    assert world.fake.count("GET /api/me") == 2
