"""Hostile or broken input from clients: never forwarded, never trusted, never a 500."""

from __future__ import annotations

import logging
from typing import List, Tuple

import pytest
from fastapi import FastAPI, Request
from starlette.types import Message

from qelos_integrator_fastapi import QelosIntegratorMiddleware

from ..support import client, config_for, fastapi_app, make_world

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "headers",
    [
        [("authorization", "Bearer " + "a" * 10_000)],
        [("cookie", "q_access_token=" + "a" * 10_000)],
        [("cookie", "qlt_0=" + "b" * 10_000)],
        [("authorization", "Bearer")],
        [("authorization", "Bearer    ")],
        [("authorization", "Bearer abc def")],
        [("authorization", "Bearer a\u00e9b")],
        [("authorization", "Bearer abc"), ("authorization", "Bearer def")],
        [("cookie", 'q_access_token="unterminated')],
        [("cookie", ";;;=;q_access_token;=x; =; ===")],
        [("cookie", "q_access_token=a b c")],
        [("cookie", "qlt_0=x\x7fy")],
    ],
)
async def test_bad_credentials_are_rejected_before_any_upstream_call(headers: List[Tuple[str, str]]) -> None:
    world = make_world()
    app = fastapi_app(config_for(world.fake))
    raw = [(k.encode(), v.encode("utf-8")) for k, v in headers]
    status, body = await call_asgi(app, raw)
    assert status == 200
    assert b'"user":null' in body
    assert world.fake.requests == []


async def call_asgi(app: object, headers: List[Tuple[bytes, bytes]]) -> Tuple[int, bytes]:
    """Drive the app with raw header bytes no HTTP client library would send."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/me",
        "raw_path": b"/me",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.test"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("app.test", 80),
    }
    sent: List[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body


async def test_crlf_in_a_credential_is_never_forwarded() -> None:
    world = make_world()
    app = fastapi_app(config_for(world.fake))
    status, _ = await call_asgi(app, [(b"cookie", b"q_access_token=abc\r\nx-injected: 1")])
    assert status == 200
    assert world.fake.requests == []


async def test_forged_identity_headers_are_neither_trusted_nor_forwarded() -> None:
    world = make_world()
    forged = {
        "x-qelos-user-id": world.alice.id,
        "x-qelos-workspace-id": world.acme.id,
        "user": "eyJfaWQiOiAiYWRtaW4ifQ==",
        "tenant": "other",
        "x-api-key": "ql_forged",
        "x-impersonate-user": world.alice.id,
    }
    async with client(fastapi_app(config_for(world.fake))) as http:
        anonymous = await http.get("/me", headers=forged)
        pair = world.fake.issue_tokens(world.bob)
        signed_in = await http.get("/me", headers={**forged, "Authorization": f"Bearer {pair.access_token}"})
    assert anonymous.json()["user"] is None
    assert signed_in.json()["user"]["_id"] == world.bob.id
    for request in world.fake.requests:
        assert set(request.headers) & {"x-qelos-user-id", "x-qelos-workspace-id", "user", "x-api-key"} == set()
        assert "x-impersonate-user" not in request.headers
        assert request.headers["tenant"] == "0"


async def test_no_token_reaches_logs_or_reprs_through_a_full_refresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(18001)
    seen: List[str] = []

    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/debug")
    async def debug(request: Request) -> dict[str, str]:
        qelos = request.state.qelos
        seen.extend(
            [
                repr(qelos),
                repr(qelos.tokens),
                repr(request.user),
                repr(qelos.sdk),
            ]
        )
        logging.getLogger("app").debug("context %r", qelos)
        await qelos.sdk.workspaces.get_list()
        return {"ok": "yes"}

    async with client(app) as http:
        response = await http.get(
            "/debug", headers={"cookie": f"q_access_token={pair.access_token}; q_refresh_token={pair.refresh_token}"}
        )
    assert response.json() == {"ok": "yes"}
    new_tokens = [h.split(";")[0].split("=", 1)[1] for h in response.headers.get_list("set-cookie")]
    secrets = [pair.access_token, pair.refresh_token, *new_tokens]
    output = caplog.text + "\n".join(seen)
    assert "refreshed the caller's Qelos tokens" in caplog.text
    for secret in secrets:
        assert secret not in output
        assert secret[20:60] not in output


async def test_refresh_tokens_in_query_strings_are_masked_in_httpx_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    world = make_world()
    world.fake.set_social_user(world.bob)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/auth/callback")
    async def callback(rt: str, request: Request) -> dict[str, str]:
        await request.state.qelos.sdk.authentication.exchange_auth_callback(rt)
        return {"ok": "yes"}

    rt = world.fake.issue_tokens(world.bob).refresh_token
    async with client(app) as http:
        response = await http.get("/auth/callback", params={"rt": rt})
    assert response.json() == {"ok": "yes"}
    assert "/api/auth/callback?rt=***" in caplog.text
    assert rt not in caplog.text
