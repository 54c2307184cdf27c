from __future__ import annotations

from typing import Optional

from fastapi import HTTPException, WebSocketException
from starlette.requests import HTTPConnection

from .context import QelosRequestContext
from .errors import QelosUnavailable


def get_qelos(request: HTTPConnection) -> Optional[QelosRequestContext]:
    """The request's QelosRequestContext, or None (skipped path, or no middleware)."""
    ctx = request.scope.get("state", {}).get("qelos")
    return ctx if isinstance(ctx, QelosRequestContext) else None


def require_user(request: HTTPConnection) -> QelosRequestContext:
    """The request's context with a user; 401 UNAUTHORIZED, or 503 QELOS_UNAVAILABLE when Qelos is down."""
    state = request.scope.get("state", {})
    if "qelos" not in state:
        raise RuntimeError(
            "require_user found no Qelos context: add QelosIntegratorMiddleware to the app "
            "(app.add_middleware(QelosIntegratorMiddleware, config=QelosConfig(app_url=...)))"
        )
    ctx = get_qelos(request)
    if ctx is not None and ctx.user is not None:
        return ctx
    unavailable = ctx is not None and ctx.error == QelosUnavailable.code
    code = QelosUnavailable.code if unavailable else "UNAUTHORIZED"
    if request.scope["type"] == "websocket":
        raise WebSocketException(code=1008, reason=code)
    if unavailable:
        raise HTTPException(status_code=503, detail={"code": code}, headers={"Retry-After": "5"})
    raise HTTPException(status_code=401, detail={"code": code}, headers={"WWW-Authenticate": "Bearer"})
