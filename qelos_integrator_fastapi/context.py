"""Deprecated: 4.0.1's module ``context``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import warn_module
from ._context import QelosRequestContext

__all__ = ["QelosRequestContext"]

warn_module(__name__, "use QelosRequestContext from qelos_integrator_fastapi")
