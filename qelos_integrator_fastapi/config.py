"""Deprecated: 4.0.1's module ``config``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import warn_module
from ._config import QelosConfig

__all__ = ["QelosConfig"]

warn_module(__name__, "use QelosConfig from qelos_integrator_fastapi")
