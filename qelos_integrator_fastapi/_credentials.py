from __future__ import annotations

import base64
import enum
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import Scope

from ._config import QelosConfig, mask_secret, session_cookie_name

# Visible ASCII without separators that would let a value break out of a header or cookie.
_TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/=:%!#$&'*^`|]+$")
_SESSION_COOKIE = re.compile(r"^qlt_[A-Za-z0-9\-._~]{1,8}$")


def is_token_text(value: str) -> bool:
    """Whether ``value`` can travel as a Bearer header and a cookie value unchanged."""
    return _TOKEN.fullmatch(value) is not None


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


class AuthMode(enum.StrEnum):
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
    # The name of a Qelos session cookie of another tenant, on a request left without a credential.
    other_tenant_cookie: Optional[str] = None
    # The browser attached the credential on its own (a cookie), so a cross-site page can make it send it.
    from_cookie: bool = False

    def __repr__(self) -> str:
        session = None if self.session_cookie is None else (self.session_cookie[0], "***")
        return (
            f"Credentials(mode={self.mode.value}, access_token={mask_secret(self.access_token)}, "
            f"refresh_token={mask_secret(self.refresh_token)}, session_cookie={session!r}, rejected={self.rejected!r}, "
            f"other_tenant_cookie={self.other_tenant_cookie!r})"
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

    # HTTP/2 clients may split cookies over several headers; Starlette reads only the first.
    cookie_header = "; ".join(headers.getlist("cookie"))
    cookies = cookie_parser(cookie_header) if cookie_header else {}
    credential_cookies = (config.access_token_cookie, config.refresh_token_cookie, *config.session_cookie_names)
    twice = _sent_twice(cookie_header, credential_cookies) if cookie_header else None
    if twice is not None:
        # A sibling subdomain can plant a second cookie of the same name (cookie tossing): which one
        # is the caller's cannot be told, so no cookie credential is used, never "the last one wins".
        rejected = rejected or f"cookie {twice} sent more than once"
        cookies = {}

    from_cookie = access is None
    if access is None:
        access, problem = _checked(cookies.get(config.access_token_cookie), config.max_credential_length)
        rejected = rejected or problem
    refresh, problem = _checked(cookies.get(config.refresh_token_cookie), config.max_credential_length)
    rejected = rejected or problem
    if access or refresh:
        return Credentials(AuthMode.TOKEN, access, refresh, rejected=rejected, from_cookie=from_cookie)

    for name in config.session_cookie_names:
        value, problem = _checked(cookies.get(name), config.max_credential_length)
        rejected = rejected or problem
        if value:
            return Credentials(AuthMode.SESSION, session_cookie=(name, value), rejected=rejected, from_cookie=True)
    other = next((name for name, value in cookies.items() if value and _other_tenant(name, config)), None)
    return Credentials(AuthMode.ANONYMOUS, rejected=rejected, other_tenant_cookie=other)


def upstream_headers(
    tenant: str,
    *,
    bearer: Optional[str] = None,
    session_cookie: Optional[Tuple[str, str]] = None,
    api_token: Optional[str] = None,
) -> Dict[str, str]:
    """Every header the product sends to Qelos: the configured tenant, and at most one credential.

    The one place upstream headers are built (middleware, refresh, auth router, request SDK). The
    tenant always comes from the config, never from the browser: Qelos's gateway trusts a ``tenant``
    header on its default host and answers for tenant ``"0"`` without one. The credential follows
    Qelos's own precedence; a session cookie goes under this tenant's name, because the gateway
    resolves the caller of non-auth routes (blueprints, plugins) only for a ``qlt_`` cookie, never
    for the legacy ``token``.
    """
    headers = {"tenant": tenant}
    if api_token:
        headers["x-api-key"] = api_token
    elif bearer:
        headers["authorization"] = f"Bearer {bearer}"
    elif session_cookie is not None:
        headers["cookie"] = f"{session_cookie_name(tenant)}={session_cookie[1]}"
    return headers


def _other_tenant(name: str, config: QelosConfig) -> bool:
    # Only names Qelos could have written (qlt_ and at most 8 token characters) reach a log line.
    return _SESSION_COOKIE.match(name) is not None and name not in config.session_cookie_names


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


def _sent_twice(cookie_header: str, names: Tuple[str, ...]) -> Optional[str]:
    """The first of ``names`` that the Cookie header carries more than once."""
    seen = set()
    for chunk in cookie_header.split(";"):
        name = chunk.split("=", 1)[0].strip() if "=" in chunk else ""
        if name in names:
            if name in seen:
                return name
            seen.add(name)
    return None


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
