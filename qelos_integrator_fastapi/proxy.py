"""Deprecated: 4.0.1's module ``proxy``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import warn_module
from ._fastapi_router import create_qelos_proxy_router
from ._proxy import HOP_BY_HOP

__all__ = ["HOP_BY_HOP", "create_qelos_proxy_router"]

warn_module(__name__, "use create_qelos_proxy_router from qelos_integrator_fastapi")
