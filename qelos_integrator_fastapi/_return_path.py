from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlsplit

from ._problem import Problem

_MAX_PATH = 2048


def safe_return_path(value: Any) -> Optional[str]:
    """``value`` when it is a same-origin relative path such as ``/dashboard?tab=1``, else None."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > _MAX_PATH:
        return None
    # Browsers strip tabs and newlines and read "\" as "/", so "/\t/evil" and "/\evil" mean "//evil".
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def return_path(value: Any, default: str) -> str:
    if value in (None, ""):
        return default
    path = safe_return_path(value)
    if path is None:
        raise unsafe_return_url()
    return path


def unsafe_return_url() -> Problem:
    return Problem(400, "UNSAFE_RETURN_URL", "next must be a relative path on this site, such as /dashboard")
