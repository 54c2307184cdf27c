"""Starlette-native Qelos authentication. Names are imported on first use, so ``import
qelos_integrator_fastapi`` (and the pytest plugin) stay cheap, and plain-Starlette apps never
import FastAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._backend import QelosAuthBackend, QelosUser
    from ._config import QelosConfig, QelosConfigError
    from ._context import QelosRequestContext
    from ._cookies import CookieBuffer
    from ._credentials import AuthMode, TokenPair
    from ._dependencies import QELOS_AUTH_RESPONSES, OptionalQelosContext, QelosContext, get_qelos, require_user
    from ._errors import QelosError, QelosUnauthorized, QelosUnavailable, WorkspaceSwitchError
    from ._events import QelosEvent
    from ._fastapi_router import create_qelos_auth_router, create_qelos_proxy_router
    from ._middleware import QelosIntegratorMiddleware
    from ._proxy import create_qelos_proxy_routes
    from ._refresh import TokenRefreshContext, write_token_cookies
    from ._routes import QELOS_PROVIDERS, create_qelos_auth_routes

_EXPORTS: Dict[str, str] = {
    "QELOS_PROVIDERS": "_routes",
    "AuthMode": "_credentials",
    "CookieBuffer": "_cookies",
    "OptionalQelosContext": "_dependencies",
    "QELOS_AUTH_RESPONSES": "_dependencies",
    "QelosAuthBackend": "_backend",
    "QelosConfig": "_config",
    "QelosConfigError": "_config",
    "QelosContext": "_dependencies",
    "QelosError": "_errors",
    "QelosEvent": "_events",
    "QelosIntegratorMiddleware": "_middleware",
    "QelosRequestContext": "_context",
    "QelosUnauthorized": "_errors",
    "QelosUnavailable": "_errors",
    "QelosUser": "_backend",
    "TokenPair": "_credentials",
    "TokenRefreshContext": "_refresh",
    "WorkspaceSwitchError": "_errors",
    "create_qelos_auth_router": "_fastapi_router",
    "create_qelos_auth_routes": "_routes",
    "create_qelos_proxy_router": "_fastapi_router",
    "create_qelos_proxy_routes": "_proxy",
    "get_qelos": "_dependencies",
    "require_user": "_dependencies",
    "write_token_cookies": "_refresh",
}

__all__ = [
    "QELOS_AUTH_RESPONSES",
    "QELOS_PROVIDERS",
    "AuthMode",
    "CookieBuffer",
    "OptionalQelosContext",
    "QelosAuthBackend",
    "QelosConfig",
    "QelosConfigError",
    "QelosContext",
    "QelosError",
    "QelosEvent",
    "QelosIntegratorMiddleware",
    "QelosRequestContext",
    "QelosUnauthorized",
    "QelosUnavailable",
    "QelosUser",
    "TokenPair",
    "TokenRefreshContext",
    "WorkspaceSwitchError",
    "create_qelos_auth_router",
    "create_qelos_auth_routes",
    "create_qelos_proxy_router",
    "create_qelos_proxy_routes",
    "get_qelos",
    "require_user",
    "write_token_cookies",
]

_getattr, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


def __getattr__(name: str) -> Any:
    # 4.0.1's names (QelosMiddleware, get_qelos_user, ...) still resolve, with a DeprecationWarning; not in __all__.
    from ._compat import DEPRECATED, deprecated_name

    if name in DEPRECATED:
        return deprecated_name(__name__, name, globals())
    return _getattr(name)
