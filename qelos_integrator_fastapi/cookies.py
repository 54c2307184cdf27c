"""Deprecated: 4.0.1's module ``cookies``, kept for the 5.x series (MIGRATING.md says what replaces it)."""

from __future__ import annotations

from ._compat import rewrite_set_cookie_domain, rewrite_set_cookie_domains, strip_port, warn_module

__all__ = ["rewrite_set_cookie_domain", "rewrite_set_cookie_domains", "strip_port"]

warn_module(__name__, "the middleware and the proxy relay Qelos's session cookie rewritten for the app's host")
