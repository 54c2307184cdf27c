"""Deprecated: 4.0.1's module ``dependencies``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import warn_module
from ._compat_fastapi import QelosUser, get_qelos_sdk, get_qelos_user
from ._context import QelosRequestContext
from ._dependencies import get_qelos, require_user

__all__ = ["QelosRequestContext", "QelosUser", "get_qelos", "get_qelos_sdk", "get_qelos_user", "require_user"]

warn_module(__name__, "use get_qelos and require_user from qelos_integrator_fastapi")
