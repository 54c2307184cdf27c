"""Deprecated: 4.0.1's module ``proxy_target``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import resolve_qelos_proxy_target, warn_module

__all__ = ["resolve_qelos_proxy_target"]

warn_module(__name__, "use QelosConfig(...).upstream_url")
