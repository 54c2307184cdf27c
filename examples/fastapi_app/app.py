"""The FastAPI demo: `make demo`, then open http://127.0.0.1:8000/login.

Without QELOS_APP_URL it runs on an embedded FakeQelos (see examples/demo_qelos.py); with it, on that
Qelos. Pages: /login, / (user, workspace switcher), /products, and sign-out; JSON: /me (see /docs).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from qelos_sdk import QelosAPIError

from examples import pages
from examples.demo_qelos import DEMO_USERS, FAKE_PREFIX, demo_qelos
from qelos_integrator_fastapi import QelosIntegratorMiddleware, WorkspaceSwitchError
from qelos_integrator_fastapi.dependencies import QELOS_AUTH_RESPONSES, OptionalQelosContext, QelosContext
from qelos_integrator_fastapi.routes import QELOS_PROVIDERS, create_qelos_auth_router

demo = demo_qelos()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    print(demo.banner("FastAPI"), flush=True)
    yield


app = FastAPI(title="Qelos integrator demo", lifespan=lifespan)
app.add_middleware(QelosIntegratorMiddleware, config=demo.config)
app.include_router(
    create_qelos_auth_router(
        demo.config, secret_key=demo.secret_key, mode=demo.mode, public_url=demo.public_url, login_page="/login"
    )
)
if demo.fake_app is not None:
    app.mount(FAKE_PREFIX, demo.fake_app)


@app.get("/login", response_class=HTMLResponse, include_in_schema=False)
async def login(request: Request, qelos: OptionalQelosContext) -> Response:
    if qelos is not None and qelos.user is not None:
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


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
async def home(request: Request, qelos: OptionalQelosContext) -> Response:
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


@app.post("/workspace", include_in_schema=False)
async def switch_workspace(request: Request, qelos: OptionalQelosContext) -> Response:
    if qelos is None or qelos.user is None:
        return RedirectResponse("/login", status_code=303)
    workspace_id = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("workspace_id", "")
    try:
        # Session mode: Qelos signs a new session cookie for that workspace; it reaches the browser now.
        await qelos.activate_workspace(workspace_id)
    except WorkspaceSwitchError:
        return RedirectResponse("/?notice=token-mode", status_code=303)
    except QelosAPIError:
        return RedirectResponse("/?notice=switch-failed", status_code=303)
    return RedirectResponse("/?notice=switched", status_code=303)


@app.get("/products", response_class=HTMLResponse, include_in_schema=False)
async def products(qelos: OptionalQelosContext) -> Response:
    if qelos is None or qelos.user is None:
        return RedirectResponse("/login?next=/products", status_code=303)
    items: List[Dict[str, Any]] = await qelos.sdk.entities("products").get_list()
    return HTMLResponse(pages.products_page(workspace=qelos.workspace, products=items))


@app.get("/me", responses=QELOS_AUTH_RESPONSES)
async def me(qelos: QelosContext) -> Dict[str, Any]:
    """The signed-in user and workspace; try it from /docs with the Authorize button (a Qelos access token)."""
    return {"user": qelos.user, "workspace": qelos.workspace, "mode": qelos.mode.value}
