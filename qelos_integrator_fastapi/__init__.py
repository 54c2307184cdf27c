from __future__ import annotations

from .backend import QelosAuthBackend, QelosUser
from .config import QelosConfig, QelosConfigError
from .context import QelosRequestContext, TokenPair, TokenRefreshContext
from .cookies import CookieBuffer, write_token_cookies
from .credentials import AuthMode
from .dependencies import get_qelos, require_user
from .errors import QelosError, QelosUnauthorized, QelosUnavailable, WorkspaceSwitchError
from .events import QelosEvent
from .middleware import QelosIntegratorMiddleware

__all__ = [
    "AuthMode",
    "CookieBuffer",
    "QelosAuthBackend",
    "QelosConfig",
    "QelosConfigError",
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
    "get_qelos",
    "require_user",
    "write_token_cookies",
]
