"""FakeQelos behind a few bench-only admin routes, for uvicorn: `uvicorn fake_server:app --app-dir benchmarks`.

GET /__stats (upstream calls by endpoint since the last reset), POST /__reset, POST /__mint?username=alice
(an oauth pair for the user's first workspace), POST /__advance?seconds=N (the fake's clock),
POST /__inject?endpoint=POST%20/api/token/refresh&latency=0.2 (also status=, malformed=1, drop=1, times=,
message=, and hostile=oversize|nested|bad-token|bad-cookie: answers FakeQelos never gives, see HOSTILE).
For fault_soak.py: POST /__api_token?username=alice (an x-api-key token for a year),
POST /__session?username=alice (a qlt_ session cookie), GET /__faults (injected and taken fault calls),
POST /__clear_faults, POST /__live?kind=refresh|cookie&token=... (is the credential valid, and is its
tokenIdentifier still recorded, i.e. not spent by a refresh or rotated away). Everything else is FakeQelos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from qelos_integrator_fastapi.testing import FakeQelos, FakeUser, FakeWorkspace
from qelos_integrator_fastapi.testing._endpoint import Endpoint

COUNTED = {
    "me": "GET /api/me",
    "workspaces": "GET /api/workspaces",
    "refresh": "POST /api/token/refresh",
    "entities": "GET /api/blueprints/*/entities",
}

# The demo seed (alice and bob, Acme and Globex Corporation, products), plus what the benchmarks add.
fake = FakeQelos.demo()
users: Dict[str, FakeUser] = {name: fake.user(name) for name in ("alice", "bob")}
home: Dict[str, FakeWorkspace] = {name: fake.workspace("Acme") for name in ("alice", "bob")}
# (endpoint, kind, times, fault object): what /__inject added, to tell injected from taken fault calls.
injected: List[Tuple[str, str, int, Any]] = []
YEAR = 365 * 86400.0

# Hostile answers (issue 18): what a broken proxy or a compromised upstream may send, FakeQelos never.
OVERSIZE = 1024 * 1024  # streamed, no Content-Length: over the apps' QELOS_MAX_UPSTREAM_BODY
NESTED = b"[" * 20_000 + b"]" * 20_000  # deeper than Python's recursion limit, under the cap
BAD_TOKEN = '{"payload": {"token": "\u4e2d\u6587", "refreshToken": "\u4e2d\u6587"}}'.encode()
HOSTILE = ("oversize", "nested", "bad-token", "bad-cookie")


@dataclass
class Hostile:
    endpoint: Endpoint
    kind: str
    remaining: int


hostile: List[Hostile] = []
# Upstream calls answered by a hostile fault without reaching FakeQelos (so not in fake.requests).
answered_hostile = [0]


def _take_hostile(method: str, path: str) -> Optional[Hostile]:
    for fault in reversed(hostile):
        if fault.endpoint.matches(method, path):
            fault.remaining -= 1
            if fault.remaining == 0:
                hostile.remove(fault)
            return fault
    return None


def _superscript_max_age(set_cookie: bytes) -> bytes:
    return re.sub(rb"(?i)max-age=\d+", "Max-Age=\u00b2".encode(), set_cookie)


async def _oversize() -> AsyncIterator[bytes]:
    chunk = b" " * 16384
    for _ in range(OVERSIZE // len(chunk)):
        yield chunk


async def _hostile_answer(fault: Hostile, scope: Scope, receive: Receive, send: Send) -> None:
    if fault.kind == "bad-cookie":
        # The real answer, with a session cookie no cookie jar could hold written before the fake's own, and
        # Max-Age=² on the fake's own rotation if it rotates (relayed, that cookie lasts the browser session).
        name = fake.session_cookie_name
        extra = [(b"set-cookie", f"{name}=\u4e2d\u6587; Path=/api".encode())]

        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [
                    (
                        key,
                        _superscript_max_age(value)
                        if key == b"set-cookie" and value.startswith(name.encode())
                        else value,
                    )
                    for key, value in MutableHeaders(scope=message).raw
                ]
                message["headers"] = [*extra, *raw]
            await send(message)

        await fake(scope, receive, with_cookies)
        return
    answered_hostile[0] += 1
    response: Response
    if fault.kind == "oversize":
        response = StreamingResponse(_oversize(), media_type="application/json")
    elif fault.kind == "nested":
        response = Response(NESTED, media_type="application/json")
    else:
        response = Response(BAD_TOKEN, media_type="application/json")
    await response(scope, receive, send)


def _seed() -> None:
    # User-scoped, so readable with the workspace-less tokens that a second refresh yields (as in Qelos).
    fake.add_blueprint("notes", properties={"text": "string"}, permission_scope="user")
    for user in users.values():
        fake.add_entity("notes", {"text": f"a note of {user.username}"}, user=user, workspace=home[user.username])


_seed()


def _stats() -> Dict[str, int]:
    counts = {name: fake.count(endpoint) for name, endpoint in COUNTED.items()}
    counts["total"] = len(fake.requests)
    return counts


async def _admin(request: Request) -> JSONResponse:
    path, method = request.url.path, request.method
    if (method, path) == ("GET", "/__stats"):
        return JSONResponse(_stats())
    if (method, path) == ("POST", "/__reset"):
        fake.reset_log()
        fake.clear_faults()
        hostile.clear()
        answered_hostile[0] = 0
        injected.clear()
        return JSONResponse(_stats())
    if (method, path) == ("POST", "/__mint"):
        username = request.query_params.get("username", "alice")
        if username not in users:
            return JSONResponse({"message": f"no user {username!r}"}, status_code=404)
        pair = fake.issue_tokens(users[username], workspace=home[username])
        return JSONResponse({"access_token": pair.access_token, "refresh_token": pair.refresh_token})
    if (method, path) == ("POST", "/__advance"):
        fake.clock.advance(float(request.query_params["seconds"]))
        return JSONResponse({"now": fake.clock.now()})
    if (method, path) == ("POST", "/__inject"):
        return _inject(request)
    if (method, path) == ("GET", "/__faults"):
        return JSONResponse(_faults())
    if (method, path) == ("POST", "/__clear_faults"):
        fake.clear_faults()
        hostile.clear()
        return JSONResponse(_faults())
    if (method, path) == ("POST", "/__api_token"):
        user = users.get(request.query_params.get("username", "alice"))
        if user is None:
            return JSONResponse({"message": "no such user"}, status_code=404)
        token = fake.add_api_token(user, workspace=home[user.username], expires_in=YEAR)
        return JSONResponse({"api_token": token})
    if (method, path) == ("POST", "/__session"):
        user = users.get(request.query_params.get("username", "alice"))
        if user is None:
            return JSONResponse({"message": "no such user"}, status_code=404)
        cookie = fake.issue_session_cookie(user, workspace=home[user.username])
        return JSONResponse({"name": fake.session_cookie_name, "value": cookie})
    if (method, path) == ("POST", "/__live"):
        return JSONResponse(_live(request.query_params["kind"], request.query_params["token"]))
    return JSONResponse({"message": f"no admin route {method} {path}"}, status_code=404)


def _inject(request: Request) -> JSONResponse:
    params = request.query_params
    endpoint = params["endpoint"]
    if params.get("hostile") in HOSTILE:
        planned = Hostile(Endpoint.parse(endpoint), params["hostile"], int(params.get("times", "1")))
        hostile.append(planned)
        injected.append((endpoint, params.get("kind", planned.kind), planned.remaining, planned))
        return JSONResponse({"injected": endpoint})
    status = int(params["status"]) if "status" in params else None
    times = int(params["times"]) if "times" in params else None
    malformed, drop = params.get("malformed") == "1", params.get("drop") == "1"
    body: Optional[Dict[str, str]] = {"message": params["message"]} if "message" in params else None
    fake.inject(
        endpoint,
        status=status,
        body=body,
        latency=float(params.get("latency", "0")),
        malformed=malformed,
        drop=drop,
        times=times,
    )
    if times is not None:
        # FakeQelos keeps no handle on its faults; the newest one is the one just added.
        fault = fake._faults._faults[-1]
        injected.append((endpoint, params.get("kind", "?"), times, fault))
    return JSONResponse({"injected": endpoint})


def _faults() -> Dict[str, Any]:
    """Fault calls injected with times=, how many were taken by upstream calls, and by (endpoint, kind)."""
    by_kind: Dict[str, int] = {}
    taken = pending = 0
    live = {id(fault) for fault in [*fake._faults._faults, *hostile]}
    for endpoint, kind, times, fault in injected:
        # `remaining` counts down as calls take the fault; a cleared fault keeps what it had left.
        used = times - int(fault.remaining)
        if id(fault) in live:
            pending += int(fault.remaining)
        taken += used
        key = f"{endpoint} | {kind}"
        by_kind[key] = by_kind.get(key, 0) + used
    upstream = len(fake.requests) + answered_hostile[0]
    return {"upstream": upstream, "taken": taken, "pending": pending, "by_kind": by_kind}


def _live(kind: str, token: str) -> Dict[str, bool]:
    """Whether `token` verifies, and whether its tokenIdentifier is still recorded (not spent or rotated)."""
    services = fake._services
    payload = services.signer.verify_refresh(token) if kind == "refresh" else services.signer.verify_access(token)
    if payload is None:
        return {"valid": False, "live": False}
    identifier = payload.get("tokenIdentifier")
    records = services.store.tokens.get(str(payload.get("sub")), [])
    return {"valid": True, "live": any(record.identifier == identifier for record in records)}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/__"):
        response = await _admin(Request(scope, receive))
        await response(scope, receive, send)
        return
    fault = _take_hostile(scope["method"], scope["path"]) if scope["type"] == "http" else None
    if fault is not None:
        await _hostile_answer(fault, scope, receive, send)
        return
    await fake(scope, receive, send)
