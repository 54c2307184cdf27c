"""Deprecated: 4.0.1's module ``middleware``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import effective_skip_paths, should_skip, warn_module
from ._context import ResolveWorkspace as WorkspaceResolver
from ._middleware import QelosIntegratorMiddleware

QelosMiddleware = QelosIntegratorMiddleware
qelos_middleware = QelosIntegratorMiddleware

__all__ = [
    "QelosIntegratorMiddleware",
    "QelosMiddleware",
    "WorkspaceResolver",
    "effective_skip_paths",
    "qelos_middleware",
    "should_skip",
]

warn_module(__name__, "use QelosIntegratorMiddleware from qelos_integrator_fastapi (same keywords)")
