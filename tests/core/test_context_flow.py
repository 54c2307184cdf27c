"""The per-request flow of request.state.qelos, seen from outside: events, log lines, workspaces, its parts."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Dict, List, Optional

import pytest
from fastapi import Depends, FastAPI, Request
from qelos_sdk import QelosAPIError
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from qelos_integrator_fastapi import (
    QelosEvent,
    QelosIntegratorMiddleware,
    QelosRequestContext,
    TokenPair,
    TokenRefreshContext,
    WorkspaceSwitchError,
    require_user,
    write_token_cookies,
)

from ..support import World, client, config_for, cookie_header, fastapi_app, make_world

pytestmark = pytest.mark.anyio

ACCESS_TTL = 18000
LOGGER = "qelos_integrator_fastapi"


def messages(caplog: pytest.LogCaptureFixture, level: int) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def events_app(world: World, events: List[QelosEvent], **options: Any) -> FastAPI:
    return fastapi_app(config_for(world.fake, **options), on_event=events.append)


async def test_a_resolved_token_caller_is_one_event_with_mode_path_and_user() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert events == [QelosEvent("identity_resolved", "token", "/me", user_id=world.alice.id)]


async def test_a_session_caller_is_reported_as_session_on_its_own_path() -> None:
    world = make_world()
    session = world.fake.issue_session_cookie(world.bob, workspace=world.acme)
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        await http.get("/whoami", headers=cookie_header(qlt_0=session))
    assert events == [QelosEvent("identity_resolved", "session", "/whoami", user_id=world.bob.id)]


async def test_a_rejected_credential_is_identity_anonymous_and_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.inject("GET /api/me", status=401, body={"message": "authorization token is not valid."})
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        body = (await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
    assert (body["user"], body["error"]) == (None, None)
    assert events == [QelosEvent("identity_anonymous", "token", "/me", code="UNAUTHORIZED")]
    assert messages(caplog, logging.DEBUG) == ["Qelos rejected the token credential; the request is anonymous"]


async def test_qelos_down_is_upstream_error_with_the_reason_and_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.inject("GET /api/me", status=502, body={"message": "bad gateway"})
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        body = (await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
    assert body["error"] == "QELOS_UNAVAILABLE"
    reason = "GET /api/me answered 502 (bad gateway)"
    assert events == [QelosEvent("upstream_error", "token", "/me", code="QELOS_UNAVAILABLE", detail=reason)]
    assert messages(caplog, logging.WARNING) == [f"could not resolve the Qelos user: {reason}"]


async def test_a_refresh_is_token_refreshed_then_resolved_and_an_info_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 1)
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        assert (await http.get("/me", headers=cookies)).json()["user"]["_id"] == world.alice.id
    assert events == [
        QelosEvent("token_refreshed", "token", "/me"),  # before /api/me answered: no user yet
        QelosEvent("identity_resolved", "token", "/me", user_id=world.alice.id),
    ]
    assert messages(caplog, logging.INFO) == ["refreshed the caller's Qelos tokens"]


async def test_a_refused_refresh_token_is_refresh_rejected_then_anonymous() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 1)
    events: List[QelosEvent] = []
    async with client(events_app(world, events)) as http:
        cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token="forged.refresh.token")
        assert (await http.get("/me", headers=cookies)).json()["user"] is None
    assert events == [
        QelosEvent("refresh_rejected", "token", "/me", code="UNAUTHORIZED"),
        QelosEvent("identity_anonymous", "token", "/me", code="UNAUTHORIZED"),
    ]


async def test_a_refused_refresh_after_a_handlers_401_is_an_event_and_an_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    events: List[QelosEvent] = []
    app = events_app(world, events)

    @app.get("/later")
    async def later(request: Request) -> Dict[str, str]:
        world.fake.clock.advance(ACCESS_TTL + 1)  # the access token expires while the handler runs
        world.fake.inject("POST /api/token/refresh", status=401, body={"message": "invalid refresh token"})
        try:
            await request.state.qelos.sdk.workspaces.get_list()
        except QelosAPIError as exc:
            return {"error": str(exc)}
        return {"error": ""}

    async with client(app) as http:
        cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        assert (await http.get("/later", headers=cookies)).json() == {"error": "authorization token is not valid."}
    assert events == [
        QelosEvent("identity_resolved", "token", "/later", user_id=world.alice.id),
        QelosEvent("refresh_rejected", "token", "/later", user_id=world.alice.id, code="UNAUTHORIZED"),
    ]
    assert messages(caplog, logging.INFO) == ["refresh after a 401 from Qelos failed: UNAUTHORIZED"]


async def test_a_handlers_401_without_a_refresh_token_tries_no_refresh(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    events: List[QelosEvent] = []
    app = events_app(world, events)

    @app.get("/later")
    async def later(request: Request) -> Dict[str, str]:
        world.fake.clock.advance(ACCESS_TTL + 1)
        try:
            await request.state.qelos.sdk.workspaces.get_list()
        except QelosAPIError as exc:
            return {"error": str(exc)}
        return {"error": ""}

    async with client(app) as http:
        response = await http.get("/later", headers={"Authorization": f"Bearer {pair.access_token}"})
    assert response.json() == {"error": "authorization token is not valid."}
    assert [e.name for e in events] == ["identity_resolved"]
    assert world.fake.count("POST /api/token/refresh") == 0
    assert not [r for r in caplog.records if r.name == LOGGER and "refresh" in r.getMessage()]


async def test_an_ignored_credential_is_logged_with_method_path_and_reason_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(fastapi_app(config_for(world.fake))) as http:
        bearer = ("authorization", f"Bearer {pair.access_token}")
        await http.get("/whoami", headers=[bearer, bearer])
        await http.post("/me", headers={"Authorization": f"Basic {pair.access_token}"})
    assert messages(caplog, logging.INFO) == [
        "ignored a credential on GET /whoami: several Authorization headers",
        "ignored a credential on POST /me: Authorization scheme is not Bearer",
    ]
    assert pair.access_token not in caplog.text


def test_an_ignored_credential_on_a_websocket_is_logged_as_ws(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    world = make_world()

    async def feed(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.state.qelos.user})
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/feed", feed)])
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))
    with TestClient(app) as http, http.websocket_connect("/feed", headers={"Authorization": "Token abc"}) as ws:
        assert ws.receive_json() == {"user": None}
    assert messages(caplog, logging.INFO) == ["ignored a credential on WS /feed: Authorization scheme is not Bearer"]


def activation_app(world: World) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.post("/activate/{workspace_id}")
    async def activate(workspace_id: str, request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        try:
            answer = await qelos.activate_workspace(workspace_id)
        except WorkspaceSwitchError as exc:
            return {"code": exc.code, "message": str(exc)}
        return {"answer": answer, "workspace": qelos.workspace, "user_workspace": qelos.user["workspace"]}

    return app


async def test_activating_a_listed_workspace_takes_its_listed_entry_and_moves_the_users_claim() -> None:
    world = make_world()
    session = world.fake.issue_session_cookie(world.bob, workspace=world.acme)
    world.fake.add_member(world.globex, world.bob, ["user"])
    async with client(activation_app(world)) as http:
        body = (await http.post(f"/activate/{world.globex.id}", headers=cookie_header(qlt_0=session))).json()
    assert body["answer"]["name"] == "Globex"
    # The list entry (with the caller's privilege flag), not Qelos's answer to the activation.
    assert body["workspace"]["_id"] == world.globex.id
    assert body["workspace"]["isPrivilegedUser"] is False
    assert "isPrivilegedUser" not in body["answer"]
    assert body["user_workspace"] == {"_id": world.globex.id, "name": "Globex"}


async def test_activating_an_unlisted_workspace_takes_qelos_answer() -> None:
    world = make_world()
    # root is a Qelos admin: he may activate a workspace he is no member of, so it is not in his list.
    initech = world.fake.add_workspace("Initech", members={world.bob: ["user"]})
    session = world.fake.issue_session_cookie(world.root)
    async with client(activation_app(world)) as http:
        body = (await http.post(f"/activate/{initech.id}", headers=cookie_header(qlt_0=session))).json()
    assert body["workspace"] == body["answer"]
    assert body["workspace"]["_id"] == initech.id
    assert body["user_workspace"] == {"_id": initech.id, "name": "Initech"}


async def test_token_callers_are_told_how_to_get_another_workspace() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    async with client(activation_app(world)) as http:
        body = (
            await http.post(f"/activate/{world.globex.id}", headers={"Authorization": f"Bearer {pair.access_token}"})
        ).json()
    assert body == {
        "code": "WORKSPACE_SWITCH_NEEDS_SESSION",
        "message": "Qelos activates workspaces for session-cookie callers only; this request used token "
        "credentials. Sign in again with {'workspace': <id>} to get tokens for another workspace.",
    }


async def test_resolve_workspace_is_given_the_request_the_user_and_the_list() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    seen: List[Any] = []

    def last_one(conn: Any, user: Dict[str, Any], workspaces: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
        seen.append((conn.url.path, user["username"], sorted(w["name"] for w in workspaces)))
        return workspaces[-1]

    app = fastapi_app(config_for(world.fake), resolve_workspace=last_one)
    async with client(app) as http:
        body = (await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
    assert seen == [("/me", "alice", ["Acme & Co", "Globex"])]
    assert body["workspace"]["_id"] == body["workspaces"][-1]


async def test_an_on_token_refresh_hook_calls_qelos_through_the_requests_sdk_on_the_new_tokens() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    world.fake.clock.advance(ACCESS_TTL + 1)
    listed: List[int] = []

    async def hook(refreshed: TokenRefreshContext) -> None:
        await write_token_cookies(refreshed)
        listed.append(len(await refreshed.sdk.workspaces.get_list()))

    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake), on_token_refresh=hook)

    @app.get("/sdk")
    async def sdk(request: Request) -> Dict[str, Any]:
        return {"access": request.state.qelos.tokens.access_token}

    async with client(app) as http:
        cookies = cookie_header(q_access_token=pair.access_token, q_refresh_token=pair.refresh_token)
        access = (await http.get("/sdk", headers=cookies)).json()["access"]
    assert listed == [2]
    calls = world.fake.requests
    refreshed_at = next(i for i, r in enumerate(calls) if r.path == "/api/token/refresh")
    from_hook = next(r for r in calls[refreshed_at:] if r.path == "/api/workspaces")
    assert from_hook.headers["authorization"] == f"Bearer {access}"
    assert access != pair.access_token


async def test_the_identity_cache_never_answers_a_session_cookie_from_a_bearer_with_the_same_value() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    events: List[QelosEvent] = []
    async with client(events_app(world, events, identity_cache_ttl=60)) as http:
        await http.get("/me", headers={"Authorization": f"Bearer {pair.access_token}"})
        await http.get("/me", headers=cookie_header(qlt_0=pair.access_token))
    assert world.fake.count("GET /api/me") == 2
    assert [e.name for e in events if e.name.startswith("cache")] == ["cache_miss", "cache_miss"]


def test_qelos_override_keeps_the_workspaces_mode_and_sdk_it_was_given(qelos_override: Any) -> None:
    app = FastAPI()
    sdk = object()

    @app.get("/pinned")
    async def pinned(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> Dict[str, Any]:
        return {
            "mode": qelos.mode.value,
            "workspaces": [w["_id"] for w in qelos.workspaces],
            "workspace": (qelos.workspace or {}).get("_id"),
            "own_sdk": qelos.sdk is sdk,
            "tokens": [qelos.tokens.access_token, qelos.tokens.refresh_token],
        }

    user = {"_id": "u1", "username": "pinned"}
    qelos_override(app, user=user, workspace={"_id": "w2"}, workspaces=[{"_id": "w1"}, {"_id": "w2"}], sdk=sdk)
    with TestClient(app) as http:
        assert http.get("/pinned").json() == {
            "mode": "token",
            "workspaces": ["w1", "w2"],
            "workspace": "w2",
            "own_sdk": True,
            "tokens": [None, None],
        }


def test_a_pinned_context_with_an_outage_makes_require_user_answer_503(qelos_override: Any) -> None:
    app = FastAPI()

    @app.get("/private")
    async def private(qelos: Annotated[QelosRequestContext, Depends(require_user)]) -> str:
        return "never"

    qelos_override(app, QelosRequestContext(error="QELOS_UNAVAILABLE"))
    with TestClient(app) as http:
        response = http.get("/private")
    assert response.status_code == 503
    assert response.json()["detail"]["code"] == "QELOS_UNAVAILABLE"


async def test_the_context_repr_names_user_workspace_and_counts_without_a_token() -> None:
    world = make_world()
    pair = world.fake.issue_tokens(world.alice, workspace=world.acme)
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config_for(world.fake))

    @app.get("/repr")
    async def show(request: Request) -> str:
        return repr(request.state.qelos)

    async with client(app) as http:
        signed_in = (await http.get("/repr", headers={"Authorization": f"Bearer {pair.access_token}"})).json()
        anonymous = (await http.get("/repr")).json()
    tokens = repr(TokenPair(pair.access_token, None))
    assert signed_in == (
        f"QelosRequestContext(mode=token, user={world.alice.id!r}, workspace={world.acme.id!r}, workspaces=2, "
        f"tokens={tokens}, error=None)"
    )
    assert pair.access_token not in signed_in
    assert anonymous == (
        "QelosRequestContext(mode=anonymous, user=None, workspace=None, workspaces=0, "
        "tokens=TokenPair(access_token=None, refresh_token=None), error=None)"
    )
    assert repr(QelosRequestContext()) == anonymous  # the constructor's defaults are an anonymous request's
    # It has no config, so no tenant: it refuses to build upstream headers rather than send none.
    with pytest.raises(RuntimeError) as refused:
        QelosRequestContext().upstream_headers()
    assert str(refused.value) == "this QelosRequestContext was built without the middleware; it has no Qelos config"
    # What a hand-built context is given, it keeps (qelos_override and the auth router build them so).
    given = TokenPair("a.b.c", "r.s.t")
    assert QelosRequestContext(tokens=given).tokens is given
