"""The FastAPI demo: `make demo`, then open http://127.0.0.1:8000/login.

Without QELOS_APP_URL it runs on an embedded FakeQelos (see examples/demo_qelos.py); with it, on that
Qelos. Pages: /login, / (user, workspace switcher), /products, and sign-out; JSON: /me (see /docs).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from examples import inspector, views
from examples.demo_qelos import FAKE_PREFIX, demo_qelos
from qelos_integrator_fastapi import (
    QELOS_AUTH_RESPONSES,
    OptionalQelosContext,
    QelosContext,
    QelosIntegratorMiddleware,
    create_qelos_auth_router,
)

demo = demo_qelos()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    print(demo.banner("FastAPI"), flush=True)
    yield


app = FastAPI(title="Qelos integrator demo", lifespan=lifespan)
app.add_middleware(QelosIntegratorMiddleware, config=demo.config, on_event=inspector.record_event)
# Outermost: the panel's record of this request, and the response's own cookies written into the page.
app.add_middleware(inspector.Inspector, counting=demo.embedded)
app.include_router(
    create_qelos_auth_router(
        demo.config, secret_key=demo.secret_key, mode=demo.mode, public_url=demo.public_url, login_page="/login"
    )
)
if demo.fake_app is not None:
    app.mount(FAKE_PREFIX, demo.fake_app)


@app.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, qelos: OptionalQelosContext) -> Response:
    return await views.login(request, qelos, embedded=demo.embedded)


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, qelos: OptionalQelosContext) -> Response:
    return await views.home(request, qelos, can_expire=demo.embedded)


@app.post("/workspace", include_in_schema=False)
async def switch_workspace(request: Request, qelos: OptionalQelosContext) -> Response:
    return await views.switch_workspace(request, qelos)


@app.get("/products", response_class=HTMLResponse, include_in_schema=False)
async def products(request: Request, qelos: OptionalQelosContext) -> Response:
    return await views.products(request, qelos, can_expire=demo.embedded)


@app.post("/demo/expire", include_in_schema=False)
async def expire(request: Request) -> Response:
    return await views.expire(request, demo)


app.add_route("/demo.css", views.stylesheet, include_in_schema=False)


@app.get("/me", responses=QELOS_AUTH_RESPONSES)
async def me(qelos: QelosContext) -> Dict[str, Any]:
    """The signed-in user and workspace; try it from /docs with the Authorize button (a Qelos access token)."""
    return {"user": qelos.user, "workspace": qelos.workspace, "mode": qelos.mode.value}
