from __future__ import annotations

import base64
import enum
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from ._config import QelosConfig, mask_secret

# Visible ASCII without separators that would let a value break out of a header or cookie.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/=:%!#$&'*^`|]+$")


@dataclass
class TokenPair:
    """The caller's access and refresh tokens; mutated in place when they are refreshed."""

    access_token: Optional[str] = None
    refresh_token: Optional[str] = None

    def __repr__(self) -> str:
        return (
            f"TokenPair(access_token={mask_secret(self.access_token)}, refresh_token={mask_secret(self.refresh_token)})"
        )

    def copy(self) -> TokenPair:
        return TokenPair(self.access_token, self.refresh_token)


class AuthMode(str, enum.Enum):
    """Which credential a request used (see the mode table in the README)."""

    ANONYMOUS = "anonymous"
    TOKEN = "token"
    SESSION = "session"
    API_TOKEN = "api_token"


@dataclass(frozen=True)
class Credentials:
    mode: AuthMode
    access_token: Optional[str] = None
    refresh_token: Optional[str] = None
    session_cookie: Optional[Tuple[str, str]] = None
    # Why a credential present on the request was ignored, for logs and the context.
    rejected: Optional[str] = None

    def __repr__(self) -> str:
        session = None if self.session_cookie is None else (self.session_cookie[0], "***")
        return (
            f"Credentials(mode={self.mode.value}, access_token={mask_secret(self.access_token)}, "
            f"refresh_token={mask_secret(self.refresh_token)}, session_cookie={session!r}, rejected={self.rejected!r})"
        )


def read_credentials(scope: Scope, config: QelosConfig) -> Credentials:
    if config.api_token:
        return Credentials(AuthMode.API_TOKEN)
    headers = Headers(scope=scope)
    rejected: Optional[str] = None

    access: Optional[str] = None
    authorization = headers.getlist("authorization")
    if len(authorization) > 1:
        rejected = "several Authorization headers"
    elif authorization:
        access, rejected = _bearer(authorization[0], config.max_credential_length)

    cookies = _parse_cookies(headers.getlist("cookie"))
    if access is None:
        access, problem = _checked(cookies.get(config.access_token_cookie), config.max_credential_length)
        rejected = rejected or problem
    refresh, problem = _checked(cookies.get(config.refresh_token_cookie), config.max_credential_length)
    rejected = rejected or problem
    if access or refresh:
        return Credentials(AuthMode.TOKEN, access, refresh, rejected=rejected)

    for name in config.session_cookie_names:
        value, problem = _checked(cookies.get(name), config.max_credential_length)
        rejected = rejected or problem
        if value:
            return Credentials(AuthMode.SESSION, session_cookie=(name, value), rejected=rejected)
    return Credentials(AuthMode.ANONYMOUS, rejected=rejected)


def auth_headers(
    tokens: TokenPair, session_cookie: Optional[Tuple[str, str]], api_token: Optional[str]
) -> Dict[str, str]:
    """The one credential Qelos should see for a request, in Qelos's own precedence order."""
    if api_token:
        return {"x-api-key": api_token}
    if tokens.access_token:
        return {"authorization": f"Bearer {tokens.access_token}"}
    if session_cookie is not None:
        return {"cookie": f"{session_cookie[0]}={session_cookie[1]}"}
    return {}


def _bearer(value: str, limit: int) -> Tuple[Optional[str], Optional[str]]:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None, "Authorization scheme is not Bearer"
    return _checked(token.strip(), limit)


def _checked(value: Optional[str], limit: int) -> Tuple[Optional[str], Optional[str]]:
    if value is None:
        return None, None
    if not value:
        return None, "empty credential"
    if len(value) > limit:
        return None, f"credential longer than {limit} characters"
    if not _TOKEN.match(value):
        return None, "credential with characters a token cannot contain"
    return value, None


def _parse_cookies(cookie_headers: List[str]) -> Dict[str, str]:
    # HTTP/2 clients may split cookies over several headers; Starlette reads only the first.
    return cookie_parser("; ".join(cookie_headers))


def unverified_claims(token: str) -> Dict[str, Any]:
    """A JWT's claims read WITHOUT verification: only to size cookies and cap cache lifetimes."""
    if token.count(".") != 2:
        return {}
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}
