"""Several apps (each with its own middleware, as separate workers have) sharing one real redis-server."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import AsyncExitStack
from typing import Any, Dict, Iterator, List, Optional, Tuple, cast

import anyio
import httpx
import pytest
import redis
from fastapi import FastAPI, Request
from starlette.types import Message

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosConfigError,
    QelosEvent,
    QelosIntegratorMiddleware,
    TokenPair,
    create_qelos_auth_router,
)
from qelos_integrator_fastapi._redis_store import RedisLink, RedisSuccessorStore
from qelos_integrator_fastapi._refresh import SuccessorMemory, fingerprint
from qelos_integrator_fastapi.testing import FakeClock, FakeTokenPair

from ..support import RedisServer, World, client, config_for, cookie_header, cookie_value, free_port, make_world

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


def worker(world: World, redis_url: Optional[str], **options: Any) -> FastAPI:
    """One worker's app: its own middleware (own refresher, memory and cache), Redis shared."""
    config = config_for(world.fake, redis_url=redis_url, **options.pop("config", {}))
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config, **options)
    app.include_router(create_qelos_auth_router(config, mode="token", providers=()))

    @app.get("/me")
    async def me(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        return {"user": qelos.user["username"] if qelos.user else None}

    @app.post("/sdk-logout")
    async def sdk_logout(request: Request) -> Dict[str, int]:
        response = await request.state.qelos.sdk.authentication.logout()
        return {"status": response.status_code}

    return app


async def closing(stack: AsyncExitStack, app: FastAPI) -> httpx.AsyncClient:
    """A client of ``app``; leaving ``stack`` closes it and the app's Qelos and Redis clients."""
    http = await stack.enter_async_context(client(app))

    async def close_middleware() -> None:
        await middleware_of(app).aclose()

    stack.push_async_callback(close_middleware)
    return http


def middleware_of(app: FastAPI) -> QelosIntegratorMiddleware:
    layer: Any = app.middleware_stack
    while not isinstance(layer, QelosIntegratorMiddleware):
        layer = layer.app
    return layer


def expired_pair(world: World) -> FakeTokenPair:
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 1)
    return pair


async def get_me(http: httpx.AsyncClient, access: Optional[str], refresh: Optional[str]) -> httpx.Response:
    cookies = {name: value for name, value in (("q_access_token", access), ("q_refresh_token", refresh)) if value}
    response = await http.get("/me", headers=cookie_header(**cookies))
    http.cookies.clear()  # each request says which cookies it carries
    return response


def successor(response: httpx.Response) -> Tuple[Optional[str], Optional[str]]:
    """The (access, refresh) pair the response set in the browser's cookies."""
    return cookie_value(response, "q_access_token"), cookie_value(response, "q_refresh_token")


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as connection:
        yield connection


def everything_in(connection: redis.Redis) -> bytes:
    """Every key and value Redis holds, as one blob to search."""
    blob = b""
    for key in connection.keys("*"):
        blob += cast(bytes, key) + b"\0" + cast(bytes, connection.get(key) or b"") + b"\0"
    return blob


@asyncio_only
async def test_a_spent_refresh_token_is_answered_by_every_worker_with_one_refresh(redis_url: str) -> None:
    world = make_world()
    pair = expired_pair(world)
    async with AsyncExitStack() as stack:
        workers = [await closing(stack, worker(world, redis_url)) for _ in range(3)]
        answers = [await get_me(http, pair.access_token, pair.refresh_token) for http in workers]
    assert [a.json() for a in answers] == [{"user": "alice"}] * 3
    assert world.fake.count("POST /api/token/refresh") == 1
    pairs = {successor(a) for a in answers}
    assert len(pairs) == 1 and next(iter(pairs))[1] not in (None, pair.refresh_token)


@asyncio_only
async def test_a_parallel_burst_over_workers_makes_one_refresh_and_gets_one_pair(redis_url: str) -> None:
    world = make_world()
    pair = expired_pair(world)
    # Slow enough that every request of the burst arrives while the one refresh is in flight.
    world.fake.inject("POST /api/token/refresh", latency=0.3)
    answers: List[httpx.Response] = []
    async with AsyncExitStack() as stack:
        workers = [await closing(stack, worker(world, redis_url)) for _ in range(3)]

        async def one(http: httpx.AsyncClient) -> None:
            answers.append(await get_me(http, pair.access_token, pair.refresh_token))

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(one, workers[i % 3])
    assert [a.json() for a in answers] == [{"user": "alice"}] * 12
    assert world.fake.count("POST /api/token/refresh") == 1
    assert len({successor(a) for a in answers}) == 1


@asyncio_only
async def test_redis_holds_no_usable_token_and_no_readable_identity(redis_url: str, store: redis.Redis) -> None:
    world = make_world()
    pair = expired_pair(world)
    async with AsyncExitStack() as stack:
        http = await closing(stack, worker(world, redis_url, config={"identity_cache_ttl": 60}))
        new = successor(await get_me(http, pair.access_token, pair.refresh_token))
        await get_me(http, new[0], new[1])
    blob = everything_in(store)
    assert store.keys("qelos-integrator:succ:*") and store.keys("qelos-integrator:identity:*")
    for secret in (pair.access_token, pair.refresh_token, new[0], new[1]):
        assert secret and secret.encode() not in blob
        assert secret.split(".")[2].encode() not in blob  # not even a JWT's signature
    for readable in (b"alice", b"Liddell", b"Acme"):
        assert readable not in blob


@asyncio_only
@pytest.mark.parametrize("logout", ["/auth/logout", "/sdk-logout"])
async def test_logout_on_one_worker_revokes_the_spent_token_on_every_worker(redis_url: str, logout: str) -> None:
    world = make_world()
    pair = expired_pair(world)
    async with AsyncExitStack() as stack:
        first, second = [await closing(stack, worker(world, redis_url)) for _ in range(2)]
        new = successor(await get_me(first, pair.access_token, pair.refresh_token))
        assert (await get_me(second, pair.access_token, pair.refresh_token)).json() == {"user": "alice"}
        out = await second.post(
            logout, headers=cookie_header(q_access_token=new[0] or "", q_refresh_token=new[1] or "")
        )
        second.cookies.clear()
        assert out.status_code == 200, out.text
        for http in (first, second):
            again = await get_me(http, pair.access_token, pair.refresh_token)
            assert again.json() == {"user": None}
            assert cookie_value(again, "q_access_token") is None


@asyncio_only
async def test_the_identity_cache_is_shared_bounded_by_exp_and_dropped_on_logout(
    redis_url: str, store: redis.Redis
) -> None:
    # The access token expires in 30 s of real time (the cache's clock); the cache alone would keep it 60 s.
    world = make_world(clock=FakeClock(time.time() - ACCESS_TTL + 30))
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with AsyncExitStack() as stack:
        first, second = [
            await closing(stack, worker(world, redis_url, config={"identity_cache_ttl": 60})) for _ in range(2)
        ]
        answers = [(await get_me(http, pair.access_token, None)).json() for http in (first, second, first)]
        assert answers == [{"user": "alice"}] * 3
        assert world.fake.count("GET /api/me") == 1
        (key,) = store.keys("qelos-integrator:identity:*")
        assert 0 < store.pttl(key) <= 30_000
        out = await second.post("/auth/logout", headers=cookie_header(q_access_token=pair.access_token))
        second.cookies.clear()
        assert out.status_code == 200
        assert store.keys("qelos-integrator:identity:*") == []
        # Qelos itself honours a Bearer access token until its exp (contract §1.6); the cache no longer answers it.
        await get_me(first, pair.access_token, None)
        assert world.fake.count("GET /api/me") == 2


@asyncio_only
async def test_a_lock_holder_that_died_blocks_nobody_past_its_lease(redis_url: str, store: redis.Redis) -> None:
    world = make_world()
    pair = expired_pair(world)
    # What a worker killed mid-refresh leaves behind: its lock, with a short lease, and no answer ever.
    store.set(f"qelos-integrator:lock:{fingerprint(pair.refresh_token)}", "dead-worker", px=300)
    async with AsyncExitStack() as stack:
        http = await closing(stack, worker(world, redis_url, config={"refresh_timeout": 20}))
        started = time.monotonic()
        answer = await get_me(http, pair.access_token, pair.refresh_token)
    assert answer.json() == {"user": "alice"}
    assert world.fake.count("POST /api/token/refresh") == 1
    assert time.monotonic() - started < 10  # the lease (0.3 s), not refresh_timeout (20 s)


@asyncio_only
async def test_waiters_are_woken_by_the_holder_not_by_polling(redis_url: str, store: redis.Redis) -> None:
    world = make_world()
    pair = expired_pair(world)
    world.fake.inject("POST /api/token/refresh", latency=1.0)
    store.config_resetstat()
    async with AsyncExitStack() as stack:
        workers = [await closing(stack, worker(world, redis_url)) for _ in range(4)]
        async with anyio.create_task_group() as tg:
            for http in workers:
                tg.start_soon(get_me, http, pair.access_token, pair.refresh_token)
    stats = store.info("commandstats")
    # Per worker: a few lookups before and after its wait, none during the second the refresh takes.
    assert stats["cmdstat_get"]["calls"] <= 4 * 4
    assert stats["cmdstat_subscribe"]["calls"] >= 3
    assert world.fake.count("POST /api/token/refresh") == 1


@asyncio_only
async def test_an_unreadable_entry_is_a_fault_not_a_500(
    redis_url: str, store: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    pair = expired_pair(world)
    store.set(f"qelos-integrator:succ:{fingerprint(pair.refresh_token)}", b"\x00not what the package wrote", px=60_000)
    async with AsyncExitStack() as stack:
        http = await closing(stack, worker(world, redis_url))
        with caplog.at_level(logging.WARNING, logger="qelos_integrator_fastapi"):
            answer = await get_me(http, pair.access_token, pair.refresh_token)
    assert answer.status_code == 200 and answer.json() == {"user": "alice"}
    assert any("Redis at" in r.getMessage() for r in caplog.records)


@asyncio_only
async def test_without_redis_a_lone_refresh_signs_in_fast_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    events: List[QelosEvent] = []
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    async with AsyncExitStack() as stack:
        http = await closing(stack, worker(world, nobody, on_event=events.append))
        with caplog.at_level(logging.WARNING, logger="qelos_integrator_fastapi"):
            started = time.monotonic()
            for _ in range(5):
                pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
                world.fake.clock.advance(ACCESS_TTL + 1)
                answer = await get_me(http, pair.access_token, pair.refresh_token)
                assert answer.json() == {"user": "alice"}
                assert cookie_value(answer, "q_refresh_token")
            elapsed = time.monotonic() - started
    assert elapsed < 5
    warnings = [r.getMessage() for r in caplog.records if "Redis at" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1" in warnings[0]
    assert [e.name for e in events if e.name.startswith("redis")] == ["redis_unavailable"]


@asyncio_only
async def test_redis_killed_mid_run_then_restarted(fresh_redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    events: List[QelosEvent] = []
    async with AsyncExitStack() as stack:
        first, second = [await closing(stack, worker(world, fresh_redis.url, on_event=events.append)) for _ in range(2)]

        async def shared_once() -> bool:
            """A refresh on one worker, then its spent token on the other: answered only through Redis."""
            pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
            world.fake.clock.advance(ACCESS_TTL + 1)
            answer = await get_me(first, pair.access_token, pair.refresh_token)
            assert answer.status_code == 200 and answer.json() == {"user": "alice"}
            other = await get_me(second, pair.access_token, pair.refresh_token)
            assert other.status_code == 200
            return bool(other.json() == {"user": "alice"} and successor(other) == successor(answer))

        assert await shared_once()
        fresh_redis.kill()
        with caplog.at_level(logging.WARNING, logger="qelos_integrator_fastapi"):
            for _ in range(10):
                assert not await shared_once()  # answered, without coordination
            fresh_redis.start()  # empty, on the same address
            deadline = time.monotonic() + 10
            while not await shared_once():
                assert time.monotonic() < deadline, "coordination did not resume"
                await anyio.sleep(0.2)
    down = [r.getMessage() for r in caplog.records if "failed" in r.getMessage() and "Redis at" in r.getMessage()]
    assert len(down) == 2  # once per worker (process), not per request
    names = sorted(e.name for e in events if e.name.startswith("redis"))
    assert names == ["redis_recovered"] * 2 + ["redis_unavailable"] * 2


def test_redis_url_as_a_flat_keyword_is_validated_and_kept_out_of_reprs() -> None:
    world = make_world()
    url = "redis://:s3cret-password@redis.internal:6379/2"
    middleware = QelosIntegratorMiddleware(FastAPI(), app_url=world.fake.url, redis_url=url)
    assert middleware.config.redis_url == url
    assert "s3cret" not in repr(middleware.config)
    for wrong in ("http://redis.internal", "redis.internal:6379", 6379):
        with pytest.raises(QelosConfigError, match="redis_url must be a redis://"):
            QelosConfig(app_url=world.fake.url, redis_url=wrong)  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", ["redis", "cryptography"])
def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(QelosConfigError) as raised:
        QelosConfig(app_url="https://qelos.test", redis_url="redis://localhost:6379/0")
    assert "pip install 'qelos-integrator-fastapi[redis]'" in str(raised.value)
    assert missing in str(raised.value)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_on_trio_redis_url_fails_at_startup_with_the_reason() -> None:
    world = make_world()
    app = worker(world, "redis://127.0.0.1:6379/0")  # never reached: the refusal comes first
    sent: List[Message] = []
    incoming = iter([{"type": "lifespan.startup"}])

    async def receive() -> Message:
        return next(incoming)

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.raises(QelosConfigError):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "redis-py" in sent[0]["message"] and "trio" in sent[0]["message"]
    # Served without lifespan, the first request says the same instead of half-working.
    pair = expired_pair(world)
    with pytest.raises(QelosConfigError, match="no trio support"):
        async with client(app) as http:
            await get_me(http, pair.access_token, pair.refresh_token)


@asyncio_only
async def test_a_refresh_finished_between_the_look_and_the_lock_is_not_made_again(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = TokenPair("access-2", "refresh-2")
    holder = RedisSuccessorStore(RedisLink(redis_url), SuccessorMemory(60, 10, time.monotonic), ttl=60, wait=5)
    late = RedisSuccessorStore(RedisLink(redis_url), SuccessorMemory(60, 10, time.monotonic), ttl=60, wait=5)
    try:
        # `late` looked (nothing yet); then the holder remembered and unlocked before `late` took the lock.
        await holder.remember("refresh-1", done)
        real = late._recall_with
        looks: List[str] = []

        async def first_look_misses(r: Any, spent: str) -> Optional[TokenPair]:
            looks.append(spent)
            return None if len(looks) == 1 else await real(r, spent)

        monkeypatch.setattr(late, "_recall_with", first_look_misses)

        async def refresh(spent: str) -> TokenPair:
            raise AssertionError("refreshed a token whose successor is remembered")

        got = await late.exchange("refresh-1", refresh)
    finally:
        await holder._link.aclose()
        await late._link.aclose()
    assert (got.access_token, got.refresh_token) == ("access-2", "refresh-2")


@asyncio_only
async def test_a_slow_redis_costs_a_request_its_short_timeout_not_refresh_timeout(
    fresh_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world()
    pair = expired_pair(world)
    async with AsyncExitStack() as stack:
        http = await closing(stack, worker(world, fresh_redis.url, config={"refresh_timeout": 30}))
        # Redis holds every command for 5 s, as a server stalled by a big job would.
        assert fresh_redis.command("CLIENT", "PAUSE", "5000", "ALL") == "+OK"
        with caplog.at_level(logging.WARNING, logger="qelos_integrator_fastapi"):
            started = time.monotonic()
            answer = await get_me(http, pair.access_token, pair.refresh_token)
            elapsed = time.monotonic() - started
    assert answer.status_code == 200 and answer.json() == {"user": "alice"}
    assert cookie_value(answer, "q_refresh_token")
    assert elapsed < 3, elapsed
    warnings = [r.getMessage() for r in caplog.records if "Redis at" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].endswith("may race a refresh")


@asyncio_only
async def test_logout_revokes_a_whole_chain_of_refreshes_made_on_other_workers(redis_url: str) -> None:
    world = make_world()
    first = expired_pair(world)
    async with AsyncExitStack() as stack:
        a, b, c = [await closing(stack, worker(world, redis_url)) for _ in range(3)]
        second = successor(await get_me(a, first.access_token, first.refresh_token))
        world.fake.clock.advance(ACCESS_TTL + 1)
        third = successor(await get_me(b, None, second[1]))
        assert third[1] and third[1] != second[1]
        out = await c.post(
            "/auth/logout", headers=cookie_header(q_access_token=third[0] or "", q_refresh_token=third[1])
        )
        c.cookies.clear()
        assert out.status_code == 200
        for http in (a, b, c):
            assert (await get_me(http, first.access_token, first.refresh_token)).json() == {"user": None}
            assert (await get_me(http, None, second[1])).json() == {"user": None}


@asyncio_only
async def test_an_identity_from_redis_is_read_only_as_a_local_one(redis_url: str, store: redis.Redis) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    refused: List[str] = []
    async with AsyncExitStack() as stack:
        apps = [worker(world, redis_url, config={"identity_cache_ttl": 60}) for _ in range(2)]
        for app in apps:

            @app.get("/vandal")
            async def vandal(request: Request) -> Dict[str, Any]:
                qelos = request.state.qelos
                try:
                    qelos.user["roles"].append("admin")
                except TypeError as exc:
                    refused.append(str(exc))
                return {"roles": list(qelos.user["roles"])}

        first, second = [await closing(stack, app) for app in apps]
        headers = cookie_header(q_access_token=pair.access_token)
        # The first worker resolves and shares; the second is served from Redis.
        answers = [(await http.get("/vandal", headers=headers)).json() for http in (first, second, second)]
    assert answers == [{"roles": ["user"]}] * 3
    assert world.fake.count("GET /api/me") == 1
    assert len(refused) == 3 and all("read-only" in reason for reason in refused)
