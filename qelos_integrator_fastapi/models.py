"""Deprecated: 4.0.1's module ``models``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import warn_module
from ._compat_fastapi import QelosUser, QelosWorkspace

__all__ = ["QelosUser", "QelosWorkspace"]

warn_module(__name__, "use request.user (a QelosUser) and the dicts of request.state.qelos")
