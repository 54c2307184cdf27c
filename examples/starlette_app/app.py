"""The plain-Starlette demo: `make demo-starlette`, then open http://127.0.0.1:8000/login.

The same pages as the FastAPI demo, written with request.user, request.auth and request.state.qelos.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List
from urllib.parse import parse_qsl

from qelos_sdk import QelosAPIError
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from examples import pages
from examples.demo_qelos import DEMO_USERS, FAKE_PREFIX, demo_qelos
from qelos_integrator_fastapi import QelosIntegratorMiddleware, QelosRequestContext, WorkspaceSwitchError
from qelos_integrator_fastapi.routes import QELOS_PROVIDERS, create_qelos_auth_routes

demo = demo_qelos()


def signed_in(request: Request) -> QelosRequestContext | None:
    qelos = request.state.qelos
    return qelos if request.user.is_authenticated and isinstance(qelos, QelosRequestContext) else None


async def login(request: Request) -> Response:
    if request.user.is_authenticated:
        return RedirectResponse("/", status_code=303)
    providers = ("github", "google") if demo.embedded else QELOS_PROVIDERS
    return HTMLResponse(
        pages.login_page(
            error=request.query_params.get("error"),
            next_path=request.query_params.get("next", "/"),
            hint=pages.demo_hint(DEMO_USERS) if demo.embedded else [],
            providers=providers,
        )
    )


async def home(request: Request) -> Response:
    qelos = signed_in(request)
    if qelos is None or qelos.user is None:
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(
        pages.home_page(
            user=qelos.user,
            workspace=qelos.workspace,
            workspaces=qelos.workspaces,
            mode=qelos.mode.value,
            notice=request.query_params.get("notice"),
        )
    )


async def switch_workspace(request: Request) -> Response:
    qelos = signed_in(request)
    if qelos is None:
        return RedirectResponse("/login", status_code=303)
    workspace_id = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("workspace_id", "")
    try:
        await qelos.activate_workspace(workspace_id)
    except WorkspaceSwitchError:
        return RedirectResponse("/?notice=token-mode", status_code=303)
    except QelosAPIError:
        return RedirectResponse("/?notice=switch-failed", status_code=303)
    return RedirectResponse("/?notice=switched", status_code=303)


async def products(request: Request) -> Response:
    qelos = signed_in(request)
    if qelos is None:
        return RedirectResponse("/login?next=/products", status_code=303)
    items: List[Dict[str, Any]] = await qelos.sdk.entities("products").get_list()
    return HTMLResponse(pages.products_page(workspace=qelos.workspace, products=items))


@requires("authenticated")
async def me(request: Request) -> Response:
    return JSONResponse(
        {"user": request.user.raw, "workspace": request.state.qelos.workspace, "scopes": list(request.auth.scopes)}
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    print(demo.banner("Starlette"), flush=True)
    yield


routes: List[BaseRoute] = [
    Route("/login", login),
    Route("/", home),
    Route("/workspace", switch_workspace, methods=["POST"]),
    Route("/products", products),
    Route("/me", me),
    *create_qelos_auth_routes(
        demo.config, secret_key=demo.secret_key, mode=demo.mode, public_url=demo.public_url, login_page="/login"
    ),
]
if demo.fake_app is not None:
    routes.append(Mount(FAKE_PREFIX, app=demo.fake_app))

app = Starlette(
    routes=routes,
    middleware=[Middleware(QelosIntegratorMiddleware, config=demo.config)],
    lifespan=lifespan,
)
