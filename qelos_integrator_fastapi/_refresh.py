from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Optional, Protocol, Tuple

import anyio
from starlette.requests import HTTPConnection

from ._config import QelosConfig
from ._cookies import CookieBuffer, token_max_age
from ._credentials import TokenPair
from ._errors import QelosError, QelosUnavailable


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class _Flight:
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.result: Optional[TokenPair] = None
        self.error: Optional[QelosError] = None


class Refresher:
    """Single-flight refresh keyed by the refresh token, with a short successor memory.

    Qelos refresh tokens are single-use. Every request of this process that presents the same
    refresh token while a refresh is in flight waits for that one call; for ``successor_ttl``
    seconds afterwards the same old token is answered from memory with the same new pair, so
    near-simultaneous requests (several browser tabs) all succeed with identical cookies.
    """

    def __init__(
        self,
        refresh: Callable[[str], Awaitable[TokenPair]],
        *,
        successor_ttl: float = 60.0,
        max_successors: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._refresh = refresh
        self._successor_ttl = successor_ttl
        self._max_successors = max_successors
        self._clock = clock
        self._flights: Dict[str, _Flight] = {}
        self._successors: OrderedDict[str, Tuple[float, TokenPair]] = OrderedDict()

    async def refresh(self, refresh_token: str) -> TokenPair:
        key = fingerprint(refresh_token)
        remembered = self._successor(key)
        if remembered is not None:
            return remembered.copy()
        flight = self._flights.get(key)
        if flight is None:
            flight = self._flights[key] = _Flight()
            # Shielded: once sent, a single-use token is spent, so the answer must be kept even if
            # the request that started the refresh is cancelled (the client went away).
            with anyio.CancelScope(shield=True):
                await self._fly(key, refresh_token, flight)
        else:
            await flight.done.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.result is not None
        return flight.result.copy()

    async def _fly(self, key: str, refresh_token: str, flight: _Flight) -> None:
        try:
            flight.result = await self._refresh(refresh_token)
            self._remember(key, flight.result)
        except QelosError as exc:
            flight.error = exc
        except Exception as exc:
            flight.error = QelosUnavailable(f"token refresh failed: {type(exc).__name__}")
        finally:
            del self._flights[key]
            flight.done.set()

    def _successor(self, key: str) -> Optional[TokenPair]:
        entry = self._successors.get(key)
        if entry is None:
            return None
        expires, pair = entry
        if expires <= self._clock():
            del self._successors[key]
            return None
        return pair

    def _remember(self, key: str, pair: TokenPair) -> None:
        now = self._clock()
        while self._successors:
            oldest_key, (expires, _) = next(iter(self._successors.items()))
            if expires > now and len(self._successors) < self._max_successors:
                break
            del self._successors[oldest_key]
        self._successors[key] = (now + self._successor_ttl, pair.copy())


class _HasSdk(Protocol):
    @property
    def sdk(self) -> Any: ...


class TokenRefreshContext:
    """What ``on_token_refresh`` hooks receive after a refresh rotated the caller's tokens.

    ``response`` is the request's CookieBuffer: cookies set on it land on the real response.
    """

    def __init__(
        self,
        *,
        request: HTTPConnection,
        response: CookieBuffer,
        config: QelosConfig,
        old_tokens: TokenPair,
        new_tokens: TokenPair,
        context: _HasSdk,
    ) -> None:
        self.request = request
        self.response = response
        self.config = config
        self.old_tokens = old_tokens
        self.new_tokens = new_tokens
        self._context = context

    @property
    def sdk(self) -> Any:
        """The request's ``qelos_sdk.QelosSDK``, already on the new tokens."""
        return self._context.sdk

    def __repr__(self) -> str:
        return f"TokenRefreshContext(old_tokens={self.old_tokens!r}, new_tokens={self.new_tokens!r})"


OnTokenRefresh = Callable[[TokenRefreshContext], Awaitable[None]]


async def write_token_cookies(ctx: TokenRefreshContext) -> None:
    """The default on_token_refresh hook: store the rotated pair in the q_* cookies.

    HttpOnly, SameSite=Lax, Path=/, Secure exactly when app_url is https; Max-Age is each token's
    lifetime (``exp - iat``) when it is a JWT, otherwise the cookie lasts for the browser session.
    """
    config = ctx.config
    pairs = (
        (config.access_token_cookie, ctx.new_tokens.access_token),
        (config.refresh_token_cookie, ctx.new_tokens.refresh_token),
    )
    for name, token in pairs:
        if token:
            ctx.response.set_cookie(
                name, token, max_age=token_max_age(token), httponly=True, samesite="lax", secure=config.is_https
            )
