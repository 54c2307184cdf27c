"""Where a browser request comes from: the one origin comparison of the CSRF check and the auth router.

An origin is ``scheme://host:port`` with the port always written out, so ``https://app.example.com``,
``https://app.example.com:443`` and ``https://APP.example.com`` are one origin and
``http://app.example.com`` is another.
"""

from __future__ import annotations

from typing import Collection, Optional
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import Scope

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Methods a browser may send cross-site without asking; every other method changes state.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def origin_of(url: str) -> Optional[str]:
    """``scheme://host:port`` of an absolute http(s) URL (an Origin or a Referer); None when it has none."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port if port is not None else _DEFAULT_PORTS[scheme]}"


def request_origin(scope: Scope) -> Optional[str]:
    """The origin the request was addressed to: its scheme (after any trusted proxy) and Host header."""
    scheme = scope.get("scheme", "http")
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = Headers(scope=scope).get("host")
    if host is None and scope.get("server"):
        server_host, server_port = scope["server"]
        host = f"{server_host}:{server_port}" if server_port is not None else server_host
    if not host or any(c in host for c in "/?#@\\"):
        return None
    return origin_of(f"{scheme}://{host}")


def cross_origin(scope: Scope, trusted: Collection[str]) -> Optional[str]:
    """Why this request is not from the app's own origin nor a trusted one; None when it is (or when no
    browser sent it: a browser always sends Origin or Sec-Fetch-Site on a cross-origin unsafe request).

    ``trusted`` holds origins as origin_of writes them.
    """
    headers = Headers(scope=scope)
    site = headers.get("sec-fetch-site")
    # The browser's own verdict, which no page can forge; it also holds when a proxy hides the scheme.
    if site == "same-origin":
        return None
    allowed = {found for found in (request_origin(scope), *trusted) if found is not None}
    origin = headers.get("origin")
    if origin is not None:
        if origin_of(origin) in allowed:
            return None
        return f"Origin {origin[:100]!r} is neither this app's origin nor trusted"
    if site == "none":
        return None  # the user's own navigation (typed URL, bookmark)
    referer = headers.get("referer")
    if referer is not None:
        found = origin_of(referer)
        if found in allowed:
            return None
        return f"Referer from {found!r} is neither this app's origin nor trusted"
    if site is not None:
        return f"a {site[:20]!r} request without Origin or Referer"
    return None
