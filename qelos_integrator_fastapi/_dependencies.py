# No `from __future__ import annotations` in this module: older FastAPI releases cannot resolve
# string annotations on the `__call__` of a security object, and read them as query parameters.
from typing import Annotated, Any, Dict, Optional, Union

from fastapi import Depends, HTTPException, WebSocketException
from fastapi.security import APIKeyCookie, HTTPBearer
from starlette.requests import HTTPConnection

from ._context import QelosRequestContext
from ._errors import refusal


class _DocumentedBearer(HTTPBearer):
    """Puts the Bearer scheme (and the Authorize button) in OpenAPI; the middleware reads the header."""

    async def __call__(self, conn: HTTPConnection) -> None:
        return None


class _DocumentedCookie(APIKeyCookie):
    """Documents the cookie credential; Swagger UI cannot send cookies, so it is for readers only."""

    async def __call__(self, conn: HTTPConnection) -> None:
        return None


# Module-level and stable: `app.dependency_overrides[require_user]` replaces them along with it.
_bearer_scheme = _DocumentedBearer(
    scheme_name="QelosBearer",
    bearerFormat="JWT",
    description="A Qelos access token: `Authorization: Bearer <token>` (also read from the `q_access_token` cookie).",
    auto_error=False,
)
_cookie_scheme = _DocumentedCookie(
    name="q_access_token",
    scheme_name="QelosCookie",
    description=(
        "Browser credentials, sent as cookies: `q_access_token` (+ `q_refresh_token`), or the Qelos session "
        "cookie `qlt_<tenant>`. Swagger UI cannot set cookies; use the Bearer scheme to try routes out."
    ),
    auto_error=False,
)

_ERROR_SCHEMA: Dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {
            "type": "object",
            "properties": {"code": {"type": "string"}},
            "required": ["code"],
        }
    },
}

# Pass as `responses=` on routes or routers that depend on require_user.
QELOS_AUTH_RESPONSES: Dict[Union[int, str], Dict[str, Any]] = {
    401: {
        "description": 'No signed-in Qelos user: `{"detail": {"code": "UNAUTHORIZED"}}`, `WWW-Authenticate: Bearer`.',
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    },
    403: {
        "description": "The user lacks a role or permission this operation needs.",
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    },
    503: {
        "description": 'Qelos could not be reached: `{"detail": {"code": "QELOS_UNAVAILABLE", "message": ...}}`, '
        "`Retry-After`.",
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    },
}


# Both dependencies are coroutines: FastAPI runs a plain function dependency in a worker thread, a
# thread hop per request for a dictionary lookup.
async def get_qelos(request: HTTPConnection) -> Optional[QelosRequestContext]:
    """The request's QelosRequestContext, or None (skipped path, or no middleware)."""
    return _context(request)


def _context(request: HTTPConnection) -> Optional[QelosRequestContext]:
    ctx = request.scope.get("state", {}).get("qelos")
    return ctx if isinstance(ctx, QelosRequestContext) else None


async def require_user(
    request: HTTPConnection,
    _bearer: None = Depends(_bearer_scheme),
    _cookie: None = Depends(_cookie_scheme),
) -> QelosRequestContext:
    """The request's context with a user; 401 UNAUTHORIZED, or 503 QELOS_UNAVAILABLE when Qelos is down."""
    state = request.scope.get("state", {})
    if "qelos" not in state:
        raise RuntimeError(
            "require_user found no Qelos context: add QelosIntegratorMiddleware to the app "
            "(app.add_middleware(QelosIntegratorMiddleware, config=QelosConfig(app_url=...)))"
        )
    ctx = _context(request)
    if ctx is not None and ctx.user is not None:
        return ctx
    status, body, headers = refusal(ctx.error if ctx is not None else None)
    if request.scope["type"] == "websocket":
        raise WebSocketException(code=1008, reason=body["code"])
    raise HTTPException(status_code=status, detail=body, headers=headers)


# `qelos: QelosContext` in a route signature is `Depends(require_user)`; OptionalQelosContext is `get_qelos`.
QelosContext = Annotated[QelosRequestContext, Depends(require_user)]
OptionalQelosContext = Annotated[Optional[QelosRequestContext], Depends(get_qelos)]
