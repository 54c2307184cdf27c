"""FakeQelos behind a few bench-only admin routes, for uvicorn: `uvicorn fake_server:app --app-dir benchmarks`.

GET /__stats (upstream calls by endpoint since the last reset), POST /__reset, POST /__mint?username=alice
(an oauth pair for the user's first workspace), POST /__advance?seconds=N (the fake's clock),
POST /__inject?endpoint=POST%20/api/token/refresh&latency=0.2. Everything else is FakeQelos.
"""

from __future__ import annotations

from typing import Dict

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from qelos_integrator_fastapi.testing import FakeQelos, FakeUser, FakeWorkspace

COUNTED = {
    "me": "GET /api/me",
    "workspaces": "GET /api/workspaces",
    "refresh": "POST /api/token/refresh",
    "entities": "GET /api/blueprints/*/entities",
}

fake = FakeQelos()
users: Dict[str, FakeUser] = {}
home: Dict[str, FakeWorkspace] = {}


def _seed() -> None:
    alice = fake.add_user("alice", "alice-pass", "alice@example.com", first_name="Alice", last_name="Liddell")
    bob = fake.add_user("bob", "bob-pass", "bob@example.com", first_name="Bob", last_name="Builder")
    acme = fake.add_workspace("Acme", members={alice: ["admin", "user"], bob: ["user"]}, labels=["*"])
    fake.add_workspace("Globex Corporation", members={alice: ["admin", "user"]}, labels=["*"])
    fake.add_blueprint(
        "products",
        properties={"name": {"type": "string", "required": True}, "price": "number", "active": "boolean"},
        permission_scope="workspace",
    )
    for name, price in (("Anvil", 49.5), ("Rocket skates", 120), ("Giant magnet", 15)):
        fake.add_entity("products", {"name": name, "price": price, "active": True}, user=alice, workspace=acme)
    users.update(alice=alice, bob=bob)
    home.update(alice=acme, bob=acme)


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
        fake.inject(request.query_params["endpoint"], latency=float(request.query_params.get("latency", "0")))
        return JSONResponse({"injected": request.query_params["endpoint"]})
    return JSONResponse({"message": f"no admin route {method} {path}"}, status_code=404)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"].startswith("/__"):
        response = await _admin(Request(scope, receive))
        await response(scope, receive, send)
        return
    await fake(scope, receive, send)
