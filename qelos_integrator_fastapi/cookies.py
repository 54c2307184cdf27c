from __future__ import annotations

import base64
import json
import logging
import time
from datetime import datetime
from typing import Dict, List, Literal, Optional, Tuple, Union

from starlette.datastructures import MutableHeaders
from starlette.responses import Response

from .context import TokenPair, TokenRefreshContext

logger = logging.getLogger("qelos_integrator_fastapi")

SameSite = Literal["lax", "strict", "none"]


class CookieBuffer:
    """Set-Cookie operations collected during a request, written onto the response when it starts.

    Same signature as Starlette's ``Response.set_cookie``/``delete_cookie``. A later write of the
    same cookie (name, path, domain) replaces an earlier one, so a response never carries a cookie
    twice. Writes after the response started cannot reach the browser and are logged.
    """

    def __init__(self) -> None:
        self._cookies: Dict[Tuple[str, str, str], bytes] = {}
        self._started = False
        self._warned = False

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: Optional[int] = None,
        expires: Union[datetime, str, int, None] = None,
        path: str = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Optional[SameSite] = "lax",
    ) -> None:
        # Starlette formats the header, exactly as it would on a Response.
        scratch = Response()
        scratch.set_cookie(key, value, max_age, expires, path, domain, secure, httponly, samesite)
        self._store(key, path, domain, scratch.raw_headers[-1][1])

    def delete_cookie(
        self,
        key: str,
        path: str = "/",
        domain: Optional[str] = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: Optional[SameSite] = "lax",
    ) -> None:
        self.set_cookie(key, "", 0, 0, path, domain, secure, httponly, samesite)

    def set_raw(self, key: str, path: str, domain: Optional[str], header_value: str) -> None:
        """Store an already formatted Set-Cookie value (a relayed Qelos cookie)."""
        self._store(key, path, domain, header_value.encode("latin-1"))

    @property
    def started(self) -> bool:
        return self._started

    def names(self) -> List[str]:
        return [name for name, _, _ in self._cookies]

    def flush_into(self, headers: MutableHeaders) -> None:
        """Append the buffered cookies to a response's headers; cookies the app set itself win."""
        self._started = True
        own = {_cookie_name(value) for key, value in headers.items() if key == "set-cookie"}
        for (name, _, _), value in self._cookies.items():
            if name not in own:
                headers.append("set-cookie", value.decode("latin-1"))

    def flush_into_list(self, raw: List[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
        """The same as flush_into, for a raw ASGI header list (websocket.accept)."""
        self._started = True
        own = {_cookie_name(v.decode("latin-1")) for k, v in raw if k.lower() == b"set-cookie"}
        extra = [(b"set-cookie", value) for (name, _, _), value in self._cookies.items() if name not in own]
        return [*raw, *extra]

    def _store(self, key: str, path: str, domain: Optional[str], value: bytes) -> None:
        if self._started:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "cookie %r changed after the response started; it cannot reach the browser on this "
                    "response (write cookies before streaming a body)",
                    key,
                )
            return
        self._cookies[(key, path, (domain or "").lower())] = value

    def __len__(self) -> int:
        return len(self._cookies)

    def __repr__(self) -> str:
        return f"CookieBuffer(cookies={self.names()!r}, started={self._started})"


def _cookie_name(set_cookie: str) -> str:
    return set_cookie.split("=", 1)[0].strip()


def token_max_age(token: Optional[str], now: Optional[float] = None) -> Optional[int]:
    """Seconds until a JWT's ``exp`` claim, read without verification (only to size a cookie)."""
    if not token or token.count(".") != 2:
        return None
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    return max(0, int(exp - (time.time() if now is None else now)))


async def write_token_cookies(ctx: TokenRefreshContext) -> None:
    """The default on_token_refresh hook: store the rotated pair in the q_* cookies.

    HttpOnly, SameSite=Lax, Path=/, Secure exactly when app_url is https; Max-Age follows each
    token's ``exp`` claim when it has one, otherwise the cookie lasts for the browser session.
    """
    _write_pair(ctx.response, ctx)


def _write_pair(buffer: CookieBuffer, ctx: TokenRefreshContext) -> None:
    tokens: TokenPair = ctx.new_tokens
    secure = ctx.config.is_https
    if tokens.access_token:
        buffer.set_cookie(
            ctx.config.access_token_cookie,
            tokens.access_token,
            max_age=token_max_age(tokens.access_token),
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    if tokens.refresh_token:
        buffer.set_cookie(
            ctx.config.refresh_token_cookie,
            tokens.refresh_token,
            max_age=token_max_age(tokens.refresh_token),
            httponly=True,
            samesite="lax",
            secure=secure,
        )
