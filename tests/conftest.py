from __future__ import annotations

from typing import Iterator

# Imported before any app's lifespan startup runs gc.freeze(): frozen objects are invisible to
# gc.get_referrers, which hypothesis (loaded late, at the end of a run) uses to check trio's Random.
import hypothesis  # noqa: F401
import pytest

from .support import RedisServer, free_port, redis_executable


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session; tests that stop it start their own (``fresh_redis``)."""
    server = RedisServer(redis_executable(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    assert redis_server.command("FLUSHALL") == "+OK"
    return redis_server.url


@pytest.fixture
def fresh_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill and start again on the same port."""
    server = RedisServer(redis_executable(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()
