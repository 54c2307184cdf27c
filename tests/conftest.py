from __future__ import annotations

# Imported before any app's lifespan startup runs gc.freeze(): frozen objects are invisible to
# gc.get_referrers, which hypothesis (loaded late, at the end of a run) uses to check trio's Random.
import hypothesis  # noqa: F401
import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend
