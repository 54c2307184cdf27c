"""Starlette-native Qelos authentication. Names are imported on first use, so ``import
qelos_integrator_fastapi`` (and the pytest plugin) stay cheap, and plain-Starlette apps never
import FastAPI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._fastapi_router import create_qelos_auth_router
    from .backend import QelosAuthBackend, QelosUser
    from .config import QelosConfig, QelosConfigError
    from .context import QelosRequestContext
    from .cookies import CookieBuffer
    from .credentials import AuthMode, TokenPair
    from .dependencies import QELOS_AUTH_RESPONSES, OptionalQelosContext, QelosContext, get_qelos, require_user
    from .errors import QelosError, QelosUnauthorized, QelosUnavailable, WorkspaceSwitchError
    from .events import QelosEvent
    from .middleware import QelosIntegratorMiddleware
    from .refresh import TokenRefreshContext, write_token_cookies
    from .routes import QELOS_PROVIDERS, create_qelos_auth_routes

_EXPORTS: Dict[str, str] = {
    "QELOS_PROVIDERS": "routes",
    "AuthMode": "credentials",
    "CookieBuffer": "cookies",
    "OptionalQelosContext": "dependencies",
    "QELOS_AUTH_RESPONSES": "dependencies",
    "QelosAuthBackend": "backend",
    "QelosConfig": "config",
    "QelosConfigError": "config",
    "QelosContext": "dependencies",
    "QelosError": "errors",
    "QelosEvent": "events",
    "QelosIntegratorMiddleware": "middleware",
    "QelosRequestContext": "context",
    "QelosUnauthorized": "errors",
    "QelosUnavailable": "errors",
    "QelosUser": "backend",
    "TokenPair": "credentials",
    "TokenRefreshContext": "refresh",
    "WorkspaceSwitchError": "errors",
    "create_qelos_auth_router": "_fastapi_router",
    "create_qelos_auth_routes": "routes",
    "get_qelos": "dependencies",
    "require_user": "dependencies",
    "write_token_cookies": "refresh",
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
    "get_qelos",
    "require_user",
    "write_token_cookies",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
