"""No token, cookie value, refresh token or API key in any log record, at any level, from any logger.

FakeQelos runs behind uvicorn on loopback so that the real network stack (httpx over httpcore) is in
the path: httpcore logs every response's headers at DEBUG, Set-Cookie included. Every record of every
logger is captured at DEBUG through password sign-in (session and token modes), session-cookie rotation,
a refresh, social callbacks (both modes), request-SDK calls, an API-token app and sign-out, and each
record's message, arguments and exception text are searched for every secret issued along the way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import AsyncIterator, Iterator, List, Set

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, create_qelos_auth_routes
from qelos_integrator_fastapi._log_redaction import LOGGERS
from qelos_integrator_fastapi.testing import FakeQelos, FakeUser

from ..support import find_middleware, loopback_listener, served_on_loopback

pytestmark = pytest.mark.anyio

SECRET = "no-secrets-in-logs-test-secret"
APP = "http://app.example.com"


@dataclass
class LoopbackQelos:
    fake: FakeQelos
    alice: FakeUser
    thread: threading.Thread


@pytest.fixture(scope="module")
def qelos() -> Iterator[LoopbackQelos]:
    listener = loopback_listener()
    port = listener.getsockname()[1]
    # Every cookie-authenticated call rotates the session cookie, so Set-Cookie answers are the norm.
    fake = FakeQelos(url=f"http://127.0.0.1:{port}", cookie_rotation_after=0.0, website_urls=[APP])
    alice = fake.add_user("alice", "alice-pass", "alice@example.com", first_name="Alice")
    fake.add_workspace("Acme", members={alice: ["admin"]})
    fake.set_social_user(alice)
    config = uvicorn.Config(fake, log_level="warning", access_log=False, lifespan="off")
    with served_on_loopback(listener, config) as thread:
        yield LoopbackQelos(fake, alice, thread)


class Everything(logging.Handler):
    """Every record, whatever its logger, formatted as a handler would format it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.texts: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.texts.append(f"{record.name}: {self.format(record)} args={record.args!r} exc={record.exc_text!r}")


@pytest.fixture
def captured() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    names = [*logging.Logger.manager.loggerDict, *LOGGERS]
    levels = {name: logging.getLogger(name).level for name in names}
    root_level = root.level
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def app(config: QelosConfig, mode: str = "") -> Starlette:
    async def sdk(request: Request) -> JSONResponse:
        qelos = request.state.qelos
        if not request.user.is_authenticated:
            return JSONResponse({"user": None})
        workspaces = await qelos.sdk.workspaces.get_list()
        me = await qelos.sdk.authentication.get_logged_in_user()
        return JSONResponse({"user": me["username"], "workspaces": len(workspaces)})

    routes = create_qelos_auth_routes(config, secret_key=SECRET, mode=mode) if mode else []
    application = Starlette(routes=[*routes, Route("/sdk", sdk)])
    application.add_middleware(QelosIntegratorMiddleware, config=config)
    return application


@contextlib.asynccontextmanager
async def browser(application: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(application), base_url=APP) as http:
            yield http
    finally:
        await find_middleware(application).aclose()  # the pool's sockets to the fake


def cookie_values(response: httpx.Response) -> Set[str]:
    values = set()
    for header in response.headers.get_list("set-cookie"):
        value = header.split(";", 1)[0].partition("=")[2]
        if value:
            values.add(value)
    return values


async def social_login(http: httpx.AsyncClient, fake: FakeQelos) -> httpx.Response:
    start = await http.get("/auth/github", params={"next": "/sdk"})
    async with httpx.AsyncClient(transport=fake.transport) as browser_at_qelos:
        back = (await browser_at_qelos.get(start.headers["location"])).headers["location"]
    return await http.get(back)


async def test_no_secret_reaches_any_log_record(qelos: LoopbackQelos, captured: Everything) -> None:
    fake = qelos.fake
    secrets: Set[str] = set()
    api_token = fake.add_api_token(qelos.alice)
    secrets.add(api_token)
    for mode in ("session", "token"):
        # No transport=: the real network stack, httpx over httpcore, to the fake on loopback.
        config = QelosConfig(app_url=fake.url, timeout=5.0)
        async with browser(app(config, mode)) as http:
            login = await http.post("/auth/login", json={"username": "alice", "password": "alice-pass"})
            assert login.status_code == 200, login.text
            secrets |= cookie_values(login)
            rotated = await http.get("/sdk")
            assert rotated.json()["user"] == "alice"
            secrets |= cookie_values(rotated)
            social = await social_login(http, fake)
            assert social.status_code == 303, social.text
            secrets |= cookie_values(social)
            secrets |= cookie_values(await http.get("/sdk"))
            signed_out = await http.post("/auth/logout")
            assert signed_out.json()["revoked"] is True
        pair = fake.issue_tokens(qelos.alice)
        secrets |= {pair.access_token, pair.refresh_token}
        async with browser(app(config, mode)) as http:
            refreshed = await http.get("/sdk", headers={"cookie": f"q_refresh_token={pair.refresh_token}"})
            assert refreshed.json()["user"] == "alice"
            secrets |= cookie_values(refreshed)
    keyed = QelosConfig(app_url=fake.url, api_token=api_token)
    async with browser(app(keyed)) as http:
        assert (await http.get("/sdk")).json()["user"] == "alice"

    ours = [r for r in captured.records if r.thread != qelos.thread.ident]
    assert any(r.name.startswith("httpcore") for r in ours), "the capture must see httpcore's DEBUG records"
    assert any("set-cookie" in r.getMessage().lower() for r in ours), "and its response-header records"
    # httpx's INFO line per request comes from the request SDK's calls; the middleware's and the router's
    # own calls (the rt-bearing /api/auth/callback among them) go to the pool directly and log none.
    assert any(r.name == "httpx" and "/api/" in r.getMessage() for r in ours)
    assert not any(r.name == "httpx" and "/api/auth/callback" in r.getMessage() for r in ours)
    assert len(secrets) >= 12
    texts = [
        text
        for record, text in zip(captured.records, captured.texts, strict=True)
        if record.thread != qelos.thread.ident
    ]
    # What precedes each leak, never the secret itself (this assertion's message is a log too).
    leaks = [text[: text.index(secret)][-160:] for secret in secrets for text in texts if secret in text]
    assert leaks == []
    # A JWT's signature alone is as good as the JWT for nobody, but is still never logged.
    signatures = {secret.rsplit(".", 1)[-1] for secret in secrets if secret.count(".") == 2}
    assert not [s for s in signatures for text in texts if len(s) > 16 and s in text]


def test_a_configured_api_token_is_masked_in_any_message(captured: Everything) -> None:
    token = "ql_" + "5f" * 32  # not a JWT: masked because the middleware was configured with it
    QelosIntegratorMiddleware(Starlette(), app_url="https://qelos.example.com", api_token=token)
    logging.getLogger("qelos_integrator_fastapi").warning("an upstream message quoting %s", token)
    logging.getLogger("httpx").info("x-api-key: %s", token)
    assert len(captured.texts) == 2
    assert not [text for text in captured.texts if token in text]
    assert "an upstream message quoting [redacted]" in captured.texts[0]


def test_the_app_servers_access_log_keeps_its_shape_without_the_callbacks_refresh_token() -> None:
    from uvicorn.logging import AccessFormatter

    rt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLW9mLXRoZS1ydA"
    access = logging.getLogger("uvicorn.access")  # uvicorn's own config stops it propagating to the root
    handler = Everything()
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/auth/callback?rt={rt}&s=1", "1.1", 303)
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    (record,) = handler.records
    line = AccessFormatter("%(message)s", use_colors=False).format(record)  # unpacks the five arguments
    assert line == '127.0.0.1:5000 - "GET /auth/callback?rt=***&s=1 HTTP/1.1" 303'
    assert rt not in handler.texts[0]


def test_every_library_logger_has_the_filter() -> None:
    from qelos_integrator_fastapi._log_redaction import RedactSecrets

    for name in [*LOGGERS, "httpcore.http11", "httpcore.connection", "httpx"]:
        assert any(isinstance(f, RedactSecrets) for f in logging.getLogger(name).filters), name
