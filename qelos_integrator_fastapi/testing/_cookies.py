from __future__ import annotations

from email.utils import formatdate
from typing import List, Optional


def session_cookie_name(tenant: str) -> str:
    return "qlt_" + tenant[:8]


def strip_port(host: str) -> str:
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if ":" in host else host


def session_cookie(name: str, value: str, *, host: Optional[str], now: float, max_age: float) -> str:
    """The Set-Cookie value Express 4.19 / cookie 0.6.0 write for Qelos's session cookie."""
    return _format(name, value, host=host, max_age=int(max_age), expires=now + int(max_age))


def cleared_session_cookie(name: str, *, host: Optional[str], now: float) -> str:
    return _format(name, "", host=host, max_age=-1, expires=now - 1)


def _format(name: str, value: str, *, host: Optional[str], max_age: int, expires: float) -> str:
    parts: List[str] = [f"{name}={value}", f"Max-Age={max_age}"]
    if host:
        parts.append(f"Domain={host}")
    parts += ["Path=/api", f"Expires={formatdate(int(expires), usegmt=True)}", "HttpOnly"]
    if host:
        parts += ["Secure", "SameSite=None"]
    return "; ".join(parts)
