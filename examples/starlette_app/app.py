"""The plain-Starlette demo: `make demo-starlette`, then open http://127.0.0.1:8000/login.

The same pages as the FastAPI demo, written with request.user, request.auth and request.state.qelos.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, List

from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from examples import inspector, views
from examples.demo_qelos import FAKE_PREFIX, demo_qelos
from qelos_integrator_fastapi import QelosIntegratorMiddleware, QelosRequestContext, create_qelos_auth_routes

demo = demo_qelos()


def signed_in(request: Request) -> QelosRequestContext | None:
    qelos = request.state.qelos
    return qelos if request.user.is_authenticated and isinstance(qelos, QelosRequestContext) else None


async def login(request: Request) -> Response:
    return await views.login(request, signed_in(request), embedded=demo.embedded)


async def home(request: Request) -> Response:
    return await views.home(request, signed_in(request), can_expire=demo.embedded)


async def switch_workspace(request: Request) -> Response:
    return await views.switch_workspace(request, signed_in(request))


async def products(request: Request) -> Response:
    return await views.products(request, signed_in(request), can_expire=demo.embedded)


async def expire(request: Request) -> Response:
    return await views.expire(request, demo)


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
    Route("/demo.css", views.stylesheet),
    Route("/demo/expire", expire, methods=["POST"]),
    *create_qelos_auth_routes(
        demo.config, secret_key=demo.secret_key, mode=demo.mode, public_url=demo.public_url, login_page="/login"
    ),
]
if demo.fake_app is not None:
    routes.append(Mount(FAKE_PREFIX, app=demo.fake_app))

app = Starlette(
    routes=routes,
    # Outermost first: the panel's record of this request, then the integrator.
    middleware=[
        Middleware(inspector.Inspector, counting=demo.embedded),
        Middleware(QelosIntegratorMiddleware, config=demo.config, on_event=inspector.record_event),
    ],
    lifespan=lifespan,
)
