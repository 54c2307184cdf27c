from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any, Dict, List

import httpx
import pytest
from fastapi import FastAPI
from qelos_sdk import QelosSDK
from starlette.requests import Request

from qelos_integrator_fastapi import (
    QelosAuthBackend,
    QelosConfig,
    QelosIntegratorMiddleware,
    QelosRequestContext,
    TokenPair,
)
from qelos_integrator_fastapi._client import QelosClient
from qelos_integrator_fastapi._sdk import RequestSdkFactory, _modules, _prototypes

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self) -> None:
        self.requests: List[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/entities"):
            return httpx.Response(200, json=[{"id": "1"}])
        return httpx.Response(200, json={"_id": "u1"})


def started(config: QelosConfig, client: QelosClient, tokens: TokenPair) -> QelosRequestContext:
    # A context as the middleware starts it for a request (it knows the app's tenant and api_token).
    ctx = QelosAuthBackend(config, client=client).start({"type": "http", "scheme": "https"})
    ctx.tokens = tokens
    return ctx


def build(recorder: Recorder, tokens: TokenPair, **options: Any) -> tuple[QelosSDK, QelosClient]:
    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(recorder), **options)
    client = QelosClient(config)
    return started(config, client, tokens).sdk, client


async def test_request_sdk_is_a_real_sdk_with_every_module_on_one_client() -> None:
    recorder = Recorder()
    sdk, client = build(recorder, TokenPair("access-1", "refresh-1"))
    assert isinstance(sdk, QelosSDK)
    # Modules are cloned on first use: a fresh request SDK holds none of them.
    assert _modules(sdk) == [sdk]
    entities = sdk.entities("products")
    for name in ("blocks", "app_configurations", "authentication", "workspaces", "invites", "ai", "lambdas"):
        getattr(sdk, name)
    for name in ("payments", "permissions", "events"):
        getattr(sdk, name)
    modules = _modules(sdk)
    assert len(modules) >= 16
    assert len({id(m._client) for m in modules}) == 1
    assert entities in modules
    assert sdk.entities("orders") is not entities
    assert sdk.entities("products") is entities
    await entities.get_list()
    await sdk.authentication.get_logged_in_user()
    await sdk.entities("orders").create({"n": 1})
    await sdk.workspaces.get_list()
    assert [r.url.path for r in recorder.requests] == [
        "/api/blueprints/products/entities",
        "/api/me",
        "/api/blueprints/orders/entities",
        "/api/workspaces",
    ]
    # Every module, entity managers built on demand included, talks to the configured Qelos.
    assert {str(r.url.copy_with(path="/", query=None)) for r in recorder.requests} == {"https://qelos.test/"}
    assert all(r.headers["authorization"] == "Bearer access-1" for r in recorder.requests)
    assert all(r.headers["tenant"] == "0" for r in recorder.requests)
    assert not client.http.is_closed  # the pool outlives the request SDK
    await client.aclose()


async def test_each_request_gets_its_own_sdk_and_headers() -> None:
    recorder = Recorder()
    first, client = build(recorder, TokenPair("access-1"))
    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(recorder))
    second = RequestSdkFactory(config, lambda: client.transport).build(started(config, client, TokenPair("access-2")))
    first.set_custom_header("x-trace", "one")
    await first.workspaces.get_list()
    await second.workspaces.get_list()
    assert recorder.requests[0].headers["authorization"] == "Bearer access-1"
    assert recorder.requests[0].headers["x-trace"] == "one"
    assert recorder.requests[1].headers["authorization"] == "Bearer access-2"
    assert "x-trace" not in recorder.requests[1].headers
    await client.aclose()


async def test_sdk_follows_tokens_mutated_after_construction() -> None:
    recorder = Recorder()
    tokens = TokenPair("old")
    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(recorder))
    client = QelosClient(config)
    ctx = started(config, client, tokens)
    sdk = RequestSdkFactory(config, lambda: client.transport).build(ctx)
    tokens.access_token = "new"
    await sdk.authentication.get_logged_in_user()
    assert recorder.requests[0].headers["authorization"] == "Bearer new"
    await client.aclose()


async def test_no_credentials_on_signin_and_refresh_endpoints() -> None:
    recorder = Recorder()
    sdk, client = build(recorder, TokenPair("access-1"), tenant="5f0a")
    await sdk.authentication.signup({"username": "x"})
    assert "authorization" not in recorder.requests[0].headers
    assert recorder.requests[0].headers["tenant"] == "5f0a"
    await client.aclose()


async def test_api_token_mode_sends_the_key() -> None:
    recorder = Recorder()
    sdk, client = build(recorder, TokenPair(), api_token="ql_service")
    await sdk.workspaces.get_list()
    assert recorder.requests[0].headers["x-api-key"] == "ql_service"
    assert "authorization" not in recorder.requests[0].headers
    await client.aclose()


async def test_sdk_calls_time_out_even_though_qelos_sdk_passes_none() -> None:
    recorder = Recorder()
    sdk, client = build(recorder, TokenPair("a"), timeout=2.5)
    await sdk.workspaces.get_list()
    assert recorder.requests[0].extensions["timeout"] == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}
    await client.aclose()


async def test_an_unknown_sdk_shape_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import qelos_integrator_fastapi._sdk as sdk_module

    prototype, _ = sdk_module._prototypes()
    # A future SDK whose module is not a BaseSDK: the clone would share the prototype's client.
    rogue = SimpleNamespace(_client=httpx.AsyncClient(transport=httpx.MockTransport(Recorder())))
    monkeypatch.setattr(prototype, "events", rogue)
    recorder = Recorder()
    caplog.set_level(logging.WARNING, "qelos_integrator_fastapi")
    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(recorder))
    client = QelosClient(config)
    factory = RequestSdkFactory(config, lambda: client.transport)
    sdks = [factory.build(started(config, client, TokenPair("a"))) for _ in range(2)]
    warnings = [r for r in caplog.records if "shape this integrator does not know" in r.getMessage()]
    assert len(warnings) == 1
    await sdks[0].workspaces.get_list()
    assert recorder.requests[0].headers["authorization"] == "Bearer a"
    await rogue._client.aclose()
    await client.aclose()


async def test_request_sdks_build_no_httpx_client_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    _prototypes()  # built once per process (at lifespan startup in a server)
    made: List[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def counting(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if not isinstance(kwargs.get("transport"), httpx.ASGITransport):
            made.append(self)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
    recorder = Recorder()
    app = FastAPI()
    config = QelosConfig(app_url="https://qelos.test", transport=httpx.MockTransport(recorder))
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/use")
    async def use(request: Request) -> Dict[str, int]:
        sdk = request.state.qelos.sdk
        await sdk.workspaces.get_list()
        return {"products": len(await sdk.entities("products").get_list())}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as http:
        for _ in range(30):
            assert (await http.get("/use")).json() == {"products": 1}
    # The middleware's pool client and the one client shared by every request SDK; none per request.
    assert len(made) == 2
    assert len(recorder.requests) == 60
    for client in made:
        await client.aclose()
