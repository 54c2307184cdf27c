from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Dict, List, Literal, Optional, Tuple, Union

from starlette.datastructures import MutableHeaders
from starlette.responses import Response

from ._config import QelosConfig
from ._credentials import unverified_claims

logger = logging.getLogger("qelos_integrator_fastapi")

# RFC 6265 cookie-octets: anything else (non-ASCII, quotes, spaces) cannot be written back as a header.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# A Max-Age a browser honours (RFC 6265 5.2.2): ASCII digits, optionally negative; str.isdigit() accepts "²" and
# other scripts' digits, which int() refuses. At most 10 digits: a longer one is no lifetime a browser keeps.
_MAX_AGE = re.compile(r"-?[0-9]{1,10}")
_EXPIRES = re.compile(r"[\x20-\x7e]{1,64}")

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

    def names(self) -> List[str]:
        return [name for name, _, _ in self._cookies]

    def flush_into(self, headers: MutableHeaders) -> None:
        """Append the buffered cookies to a response's headers; cookies the app set itself win."""
        self._started = True
        if not self._cookies:
            return
        own = {_cookie_name(value) for key, value in headers.items() if key == "set-cookie"}
        for (name, _, _), value in self._cookies.items():
            if name not in own:
                headers.append("set-cookie", value.decode("latin-1"))

    def flush_into_list(self, raw: List[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
        """The same as flush_into, for a raw ASGI header list (websocket.accept)."""
        self._started = True
        if not self._cookies:
            return raw
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


def token_max_age(token: str) -> Optional[int]:
    """A fresh JWT's lifetime (``exp - iat``), only to size its cookie."""
    claims = unverified_claims(token)
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)) or isinstance(exp, bool):
        return None
    lifetime = int(exp - iat)
    return lifetime if lifetime > 0 else None


class RelayedCookie:
    """A Qelos Set-Cookie, parsed for relaying to the app's browser."""

    def __init__(self, name: str, value: str, attributes: List[Tuple[str, str]]) -> None:
        self.name = name
        self.value = value
        self.attributes = attributes

    @property
    def max_age(self) -> Optional[int]:
        """The Max-Age a browser honours: the last well-formed one (RFC 6265 5.3, step 11), ASCII digits only."""
        found: Optional[int] = None
        for key, val in self.attributes:
            if key == "max-age" and _MAX_AGE.fullmatch(val):
                found = int(val)
        return found

    @property
    def expires(self) -> Optional[str]:
        """The last Expires, when it is printable ASCII of a sane length (else a browser-side parse may fail)."""
        found: Optional[str] = None
        for key, val in self.attributes:
            if key == "expires" and val and _EXPIRES.fullmatch(val):
                found = val
        return found

    @property
    def is_deletion(self) -> bool:
        max_age = self.max_age
        return self.value == "" if max_age is None else max_age <= 0

    def __repr__(self) -> str:
        return f"RelayedCookie(name={self.name!r}, deletion={self.is_deletion})"


def parse_set_cookie(header: str) -> Optional[RelayedCookie]:
    """Split a Set-Cookie value into name, value and lower-cased attributes; None when malformed.

    A valueless attribute (``HttpOnly``) gets the value ``""``: no reader tells it from ``Name=``.
    """
    first, *rest = header.split(";")
    name, sep, value = first.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c in name for c in ' \t,"\\') or not _COOKIE_VALUE.fullmatch(value):
        return None
    attributes: List[Tuple[str, str]] = []
    for part in rest:
        key, _, val = part.partition("=")
        key = key.strip().lower()
        if key:
            attributes.append((key, val.strip()))
    return RelayedCookie(name, value, attributes)


def relay_to_app(
    buffer: CookieBuffer, cookie: RelayedCookie, *, path: str, secure: bool, domain: Optional[str] = None
) -> None:
    """Write a Qelos session cookie into the buffer, rewritten for the app's own host.

    Qelos scopes it to its own host and ``Path=/api`` with ``SameSite=None; Secure``. Relayed, it
    becomes a first-party cookie of the app: host-only (no ``Domain``, unless one is configured),
    the configured path, ``HttpOnly``, ``SameSite=Lax``, and ``Secure`` exactly when the request
    reached the app over https (so plain-http development works). Lifetime attributes are kept, but
    never beyond the token's own lifetime (``exp - iat``).
    """
    max_age, expires = cookie.max_age, cookie.expires
    if cookie.is_deletion:
        max_age, expires = 0, None
    else:
        # Qelos may give a cookie a longer life than its token (30 days for the 5-hour token of a social
        # login); a browser keeping a dead token would look signed in to nobody.
        # A cookie without Max-Age or Expires ends with the browser session: it stays one.
        lifetime = token_max_age(cookie.value)
        persistent = max_age is not None or expires is not None
        if lifetime is not None and persistent and (max_age is None or max_age > lifetime):
            max_age, expires = lifetime, None
    buffer.set_cookie(
        cookie.name,
        "" if cookie.is_deletion else cookie.value,
        max_age=max_age,
        expires=expires,
        path=path,
        domain=domain,
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def relay_session_cookies(
    buffer: CookieBuffer,
    config: QelosConfig,
    set_cookies: List[str],
    current: Optional[Tuple[str, str]],
    *,
    secure: bool,
) -> Optional[Tuple[str, str]]:
    """Relay Qelos's session-cookie changes to the browser; returns the session cookie to send next.

    Only the configured session cookies are relayed, and only when they change: a rotation sets the
    new value, a deletion (``Max-Age<=0`` or an empty value) clears it.
    """
    for header in set_cookies:
        cookie = parse_set_cookie(header)
        if cookie is None or cookie.name not in config.session_cookie_names:
            continue
        if cookie.is_deletion:
            current = None
        elif current == (cookie.name, cookie.value):
            continue
        else:
            current = (cookie.name, cookie.value)
        relay_to_app(
            buffer, cookie, path=config.session_cookie_path, secure=secure, domain=config.session_cookie_domain
        )
    return current
