"""The demo's HTML pages, shared by the FastAPI and the Starlette app; each app only finds the context.

``qelos`` is the request's QelosRequestContext (None when there is none); ``embedded`` says whether
the demo runs on its own FakeQelos (then it can offer the fake's demo users and social logins).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl

from qelos_sdk import QelosAPIError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from examples import inspector, pages
from examples.demo_qelos import DEMO_USERS, DemoQelos
from qelos_integrator_fastapi import QELOS_PROVIDERS, QelosRequestContext, WorkspaceSwitchError


def saw(request: Request) -> pages.Saw:
    """The panel's facts, from request.user, request.auth, request.state.qelos and the inspector's record."""
    seen = inspector.current()
    names = {event.name for event in seen.events}
    qelos = request.state.qelos
    if not request.user.is_authenticated or not isinstance(qelos, QelosRequestContext):
        mode = qelos.mode.value if isinstance(qelos, QelosRequestContext) else "none (skipped path)"
        user, workspace, identity = "anonymous (UnauthenticatedUser)", "—", "no credential: Qelos was not asked"
        if "identity_anonymous" in names:
            identity = "Qelos rejected the credential"
    else:
        user = f"{request.user.display_name} (id {request.user.identity})"
        workspace = _workspace_source(qelos)
        if "cache_hit" in names:
            identity = "from the identity cache"
        elif "cache_miss" in names:
            identity = "asked Qelos, then cached"
        else:
            identity = "asked Qelos (identity cache off)"
        mode = qelos.mode.value
    return pages.Saw(
        user=user,
        scopes=sorted(request.auth.scopes),
        mode=mode,
        workspace=workspace,
        identity=identity,
        refreshed="token_refreshed" in names,
        calls=list(seen.calls) if seen.counted else None,
    )


def _workspace_source(qelos: QelosRequestContext) -> str:
    if qelos.workspace is None:
        return "none (you belong to no workspace)"
    name = str(qelos.workspace.get("name"))
    named = (qelos.user or {}).get("workspace")
    if isinstance(named, dict) and named.get("_id") == qelos.workspace.get("_id"):
        return f"{name}: the one Qelos says is active"
    return f"{name}: the first of yours (Qelos named no active one)"


async def stylesheet(request: Request) -> Response:
    return Response(pages.STYLESHEET, media_type="text/css")


async def expire(request: Request, demo: DemoQelos) -> Response:
    """Embedded FakeQelos only: move its clock past the credential's lifetime, so the next page renews it."""
    if demo.fake is None:
        return RedirectResponse("/", status_code=303)
    demo.fake.clock.advance(demo.expire_after)
    return RedirectResponse("/?notice=expired", status_code=303)


def _has_api_docs(request: Request) -> bool:
    return bool(getattr(request.app, "docs_url", None))


def _signed_in(qelos: Optional[QelosRequestContext]) -> Optional[QelosRequestContext]:
    return qelos if qelos is not None and qelos.user is not None else None


async def login(request: Request, qelos: Optional[QelosRequestContext], *, embedded: bool) -> Response:
    if _signed_in(qelos) is not None:
        return RedirectResponse("/", status_code=303)
    return HTMLResponse(
        pages.login_page(
            error=request.query_params.get("error"),
            next_path=request.query_params.get("next", "/"),
            hint=pages.demo_hint(DEMO_USERS) if embedded else [],
            providers=("github", "google") if embedded else QELOS_PROVIDERS,
            saw=saw(request),
        )
    )


async def home(request: Request, qelos: Optional[QelosRequestContext], *, can_expire: bool = False) -> Response:
    signed_in = _signed_in(qelos)
    if signed_in is None or signed_in.user is None:
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(
        pages.home_page(
            user=signed_in.user,
            workspace=signed_in.workspace,
            workspaces=signed_in.workspaces,
            mode=signed_in.mode.value,
            notice=request.query_params.get("notice"),
            api_docs=_has_api_docs(request),
            can_expire=can_expire,
            saw=saw(request),
        )
    )


async def switch_workspace(request: Request, qelos: Optional[QelosRequestContext]) -> Response:
    signed_in = _signed_in(qelos)
    if signed_in is None:
        return RedirectResponse("/login", status_code=303)
    workspace_id = dict(parse_qsl((await request.body()).decode("utf-8", "replace"))).get("workspace_id", "")
    try:
        # Session mode: Qelos signs a new session cookie for that workspace; it reaches the browser now.
        await signed_in.activate_workspace(workspace_id)
    except WorkspaceSwitchError:
        return RedirectResponse("/?notice=token-mode", status_code=303)
    except QelosAPIError:
        return RedirectResponse("/?notice=switch-failed", status_code=303)
    return RedirectResponse("/?notice=switched", status_code=303)


async def products(request: Request, qelos: Optional[QelosRequestContext], *, can_expire: bool = False) -> Response:
    signed_in = _signed_in(qelos)
    if signed_in is None:
        return RedirectResponse("/login?next=/products", status_code=303)
    items: List[Dict[str, Any]] = await signed_in.sdk.entities("products").get_list()
    return HTMLResponse(
        pages.products_page(
            workspace=signed_in.workspace,
            products=items,
            api_docs=_has_api_docs(request),
            can_expire=can_expire,
            saw=saw(request),
        )
    )
