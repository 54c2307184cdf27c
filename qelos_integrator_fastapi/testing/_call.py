from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from urllib.parse import urlsplit

from starlette.requests import Request

from ._clock import FakeClock
from ._cookies import cleared_session_cookie, session_cookie, session_cookie_name, strip_port
from ._http import json_object
from ._settings import BASIC_TENANT, Settings
from ._store import Store
from ._tokens import TokenSigner


@dataclass
class Services:
    settings: Settings
    clock: FakeClock
    store: Store
    signer: TokenSigner


def gateway_tenant(request: Request, settings: Settings) -> str:
    """The gateway's choice: the tenant of a mapped host, else (default host) the `tenant` header, else "0"."""
    host = request.headers.get("host")
    mapped = settings.hosts.get(strip_port(host).lower()) if host else None
    return mapped or request.headers.get("tenant") or BASIC_TENANT


@dataclass
class Call:
    """One request as a handler sees it: the request, the fake's state and the cookies to set.

    `tenant` starts as the gateway resolved it; the auth service replaces it with the claim of a
    verified JWT, as Qelos's `verifyUser` rewrites its `tenant` header.
    """

    request: Request
    services: Services
    tenant: str
    path_params: Dict[str, str] = field(default_factory=dict)
    set_cookies: List[str] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def signer(self) -> TokenSigner:
        return self.services.signer

    @property
    def now(self) -> float:
        return self.services.clock.now()

    @property
    def serves_tenant(self) -> bool:
        return self.tenant == self.settings.tenant

    @property
    def cookie_name(self) -> str:
        return session_cookie_name(self.tenant)

    @property
    def host(self) -> Optional[str]:
        headers = self.request.headers
        host = headers.get("tenanthost") or headers.get("host")
        if not host and headers.get("origin"):
            host = urlsplit(headers["origin"]).netloc
        return strip_port(host) if host else None

    def session_cookie_value(self) -> Optional[str]:
        cookies = self.request.cookies
        return cookies.get(self.cookie_name) or cookies.get("token") or None

    def set_session_cookie(self, token: str) -> None:
        cookie = session_cookie(
            self.cookie_name, token, host=self.host, now=self.now, max_age=self.settings.cookie_token_ttl
        )
        self.set_cookies.append(cookie)

    def clear_session_cookie(self) -> None:
        self.set_cookies.append(cleared_session_cookie(self.cookie_name, host=self.host, now=self.now))

    def bearer_token(self) -> Optional[str]:
        """The second word of `Authorization`, whatever the scheme, as Qelos reads it."""
        words = self.request.headers.get("authorization", "").split(" ")
        return words[1] if len(words) > 1 and words[1] else None

    async def body(self) -> Dict[str, Any]:
        return await json_object(self.request)
