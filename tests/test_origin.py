"""The one origin comparison (scheme, host, effective port), and the auth router's use of it."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from qelos_integrator_fastapi import (
    QelosConfig,
    QelosConfigError,
    QelosIntegratorMiddleware,
    create_qelos_auth_router,
)
from qelos_integrator_fastapi._origin import cross_origin, origin_of, request_origin

from .support import client, config_for, make_world

APP = "https://app.example.com"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://app.example.com", "https://app.example.com:443"),
        ("https://APP.example.com:443/", "https://app.example.com:443"),
        ("http://app.example.com", "http://app.example.com:80"),
        ("http://app.example.com:443", "http://app.example.com:443"),
        ("https://app.example.com:8443/path?q=1", "https://app.example.com:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("null", None),
        ("", None),
        ("app.example.com", None),
        ("ftp://app.example.com", None),
        ("https://user@app.example.com", None),
        ("https://app.example.com:99999", None),
        ("https://app.example.com:port", None),
    ],
)
def test_origin_of(url: str, origin: Optional[str]) -> None:
    assert origin_of(url) == origin


header_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=80)
origin_headers = st.sampled_from(["origin", "referer", "sec-fetch-site", "host"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(origin_headers, header_text), max_size=5), st.sampled_from(["http", "https", "ws", "wss"]))
def test_hostile_origin_headers_never_raise(headers: List[Tuple[str, str]], scheme: str) -> None:
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers]
    problem = cross_origin({"type": "http", "scheme": scheme, "headers": raw}, ["https://app.example.com:443"])
    assert problem is None or isinstance(problem, str)


def test_trusted_origins_are_validated_and_normalised() -> None:
    config = QelosConfig(app_url="https://q.test", trusted_origins=["https://Front.example.com:443/"])
    assert config.trusted_origins == ("https://front.example.com:443",)
    bad_values: List[Any] = [
        ["front.example.com"],
        ["https://front.example.com/app"],
        "https://front.example.com",
        [None],
    ]
    for bad in bad_values:
        with pytest.raises(QelosConfigError, match="trusted_origins"):
            QelosConfig(app_url="https://q.test", trusted_origins=bad)
    with pytest.raises(QelosConfigError, match="csrf_check"):
        QelosConfig(app_url="https://q.test", csrf_check="no")  # type: ignore[arg-type]


def router_app(**router_options: Any) -> FastAPI:
    world = make_world()
    config = config_for(world.fake)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)
    app.include_router(create_qelos_auth_router(config, mode="token", providers=(), **router_options))
    return app


async def login(app: FastAPI, headers: Dict[str, str]) -> httpx.Response:
    async with client(app, base_url=APP) as http:
        return await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"}, headers=headers)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [{"origin": APP, "host": "app.example.com:443"}, {"origin": "https://app.example.com:443"}],
    ids=["host-with-default-port", "origin-with-default-port"],
)
async def test_the_router_treats_default_ports_as_the_same_origin(headers: Dict[str, str]) -> None:
    response = await login(router_app(), headers)
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_a_trusted_origin_written_with_its_default_port_matches() -> None:
    app = router_app(trusted_origins=["https://front.example.com:443"])
    response = await login(app, {"origin": "https://front.example.com", "sec-fetch-site": "same-site"})
    assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_the_router_refuses_the_plain_http_origin_of_an_https_app() -> None:
    response = await login(router_app(), {"origin": "http://app.example.com"})
    assert response.status_code == 403
    assert response.json()["code"] == "CROSS_SITE_REQUEST"
    assert "set-cookie" not in response.headers


@pytest.mark.anyio
async def test_the_router_also_honours_the_configs_trusted_origins() -> None:
    world = make_world()
    config = config_for(world.fake, trusted_origins=["https://front.example.com"])
    app = FastAPI()
    app.include_router(create_qelos_auth_router(config, mode="token", providers=()))
    response = await login(app, {"origin": "https://front.example.com"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("scope", "origin"),
    [
        ({"scheme": "https", "headers": [(b"host", b"app.example.com")]}, "https://app.example.com:443"),
        ({"headers": [(b"host", b"app.example.com")]}, "http://app.example.com:80"),  # ASGI's default scheme
        ({"scheme": "ws", "headers": [(b"host", b"app.example.com")]}, "http://app.example.com:80"),
        ({"scheme": "wss", "headers": [(b"host", b"app.example.com:8443")]}, "https://app.example.com:8443"),
        # An HTTP/1.0 request without Host: the address the server listens on, as the server reports it.
        ({"scheme": "https", "headers": [], "server": ("app.example.com", 8443)}, "https://app.example.com:8443"),
        ({"scheme": "https", "headers": [], "server": ("app.example.com", None)}, "https://app.example.com:443"),
        ({"scheme": "http", "headers": [], "server": ("/run/app.sock", None)}, None),  # a unix socket
        ({"scheme": "https", "headers": [], "server": None}, None),
        ({"scheme": "https", "headers": [(b"host", b"app.example.com")], "server": ("10.0.0.5", 8443)}, APP + ":443"),
        ({"scheme": "https", "headers": [(b"host", b"APP.EXAMPLE.COM")]}, "https://app.example.com:443"),
        ({"scheme": "https", "headers": [(b"host", b"evil.example.com/@app.example.com")]}, None),
    ],
)
def test_request_origin(scope: Dict[str, Any], origin: Optional[str]) -> None:
    assert request_origin({"type": "http", **scope}) == origin
