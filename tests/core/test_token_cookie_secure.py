"""Token cookies written over https carry Secure, whatever app_url says."""

from __future__ import annotations

from typing import Any, List

import pytest
from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from qelos_integrator_fastapi import QelosIntegratorMiddleware, create_qelos_auth_router

from ..support import client, config_for, cookie_header, fastapi_app, make_world, set_cookie_headers

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000


def token_cookies(headers: List[str]) -> List[str]:
    cookies = [h for h in headers if h.startswith(("q_access_token=", "q_refresh_token="))]
    assert len(cookies) == 2, headers
    return cookies


async def refresh_through(app: Any, base_url: str, **headers: str) -> List[str]:
    async with client(app, base_url=base_url) as http:
        response = await http.get("/me", headers=headers)
    assert response.json()["user"] is not None, response.text
    return token_cookies(set_cookie_headers(response))


async def test_a_refresh_over_https_sets_secure_cookies_when_app_url_is_http() -> None:
    world = make_world(url="http://qelos.test")
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    app = fastapi_app(config_for(world.fake))
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    for header in await refresh_through(app, "https://app.example.com", **cookies):
        assert "; Secure" in header, header


async def test_behind_a_trusted_tls_proxy_the_cookies_are_secure() -> None:
    world = make_world(url="http://qelos.test")
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    # What uvicorn --proxy-headers does: the forwarded scheme becomes the request's own.
    app = ProxyHeadersMiddleware(fastapi_app(config_for(world.fake)), trusted_hosts="127.0.0.1")  # type: ignore[arg-type]
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    for header in await refresh_through(app, "http://app.example.com", **cookies, **{"x-forwarded-proto": "https"}):
        assert "; Secure" in header, header


async def test_plain_http_development_keeps_cookies_without_secure() -> None:
    world = make_world(url="http://qelos.test")
    pair = world.fake.issue_tokens(world.alice)
    world.fake.clock.advance(ACCESS_TTL + 1)
    app = fastapi_app(config_for(world.fake))
    cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
    for header in await refresh_through(app, "http://localhost:8000", **cookies):
        assert "Secure" not in header, header


async def test_the_auth_router_signs_in_with_secure_cookies_over_https() -> None:
    world = make_world(url="http://qelos.test")
    config = config_for(world.fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, mode="token", providers=()))
    async with client(app, base_url="https://app.example.com") as http:
        response = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
    assert response.status_code == 200, response.text
    for header in token_cookies(set_cookie_headers(response)):
        assert "; Secure" in header, header
