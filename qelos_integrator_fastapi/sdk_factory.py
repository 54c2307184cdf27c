"""Deprecated: 4.0.1's module ``sdk_factory``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import create_request_sdk, warn_module

__all__ = ["create_request_sdk"]

warn_module(__name__, "use request.state.qelos.sdk")
