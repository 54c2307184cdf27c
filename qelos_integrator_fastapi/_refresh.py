from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Protocol, Tuple

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


class SuccessorStore(Protocol):
    """Where the pair a refresh returned is remembered for a short while, keyed by the spent refresh token.

    In-process by default (SuccessorMemory); a store shared by several processes (RedisSuccessorStore)
    implements the same four operations. Stores get the tokens themselves, so they may derive keys from them.
    """

    async def recall(self, spent: str) -> Optional[TokenPair]: ...

    async def remember(self, spent: str, successor: TokenPair) -> None: ...

    async def forget(self, tokens: Iterable[str]) -> None:
        """Drop every remembered pair leading to or from any of these (access or refresh) tokens."""

    async def exchange(self, spent: str, refresh: Callable[[str], Awaitable[TokenPair]]) -> TokenPair:
        """``refresh(spent)`` once among everyone sharing the store, and remember its successor."""


class SuccessorMemory:
    """The in-process SuccessorStore: bounded, each pair kept ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        # fingerprint of the spent refresh token -> (expires, successor, fingerprints of the successor's tokens)
        self._entries: OrderedDict[str, Tuple[float, TokenPair, Tuple[str, ...]]] = OrderedDict()
        # fingerprint of a successor's token -> the spent token's fingerprint, so logout can walk back a chain
        self._led_from: Dict[str, str] = {}

    async def recall(self, spent: str) -> Optional[TokenPair]:
        key = fingerprint(spent)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(key)
            return None
        return entry[1].copy()

    async def remember(self, spent: str, successor: TokenPair) -> None:
        now = self._clock()
        while self._entries:
            oldest_key, (expires, _, _) = next(iter(self._entries.items()))
            if expires > now and len(self._entries) < self._max_entries:
                break
            self._drop(oldest_key)
        key = fingerprint(spent)
        self._drop(key)
        leads = tuple(fingerprint(t) for t in (successor.access_token, successor.refresh_token) if t)
        self._entries[key] = (now + self._ttl, successor.copy(), leads)
        for lead in leads:
            self._led_from[lead] = key

    async def forget(self, tokens: Iterable[str]) -> None:
        pending = [fingerprint(token) for token in tokens if token]
        seen = set()
        while pending:
            key = pending.pop()
            if key in seen:
                continue
            seen.add(key)
            earlier = self._led_from.get(key)
            if earlier is not None:
                pending.append(earlier)
            entry = self._drop(key)
            if entry is not None:
                pending.extend(entry[2])

    async def exchange(self, spent: str, refresh: Callable[[str], Awaitable[TokenPair]]) -> TokenPair:
        successor = await refresh(spent)
        await self.remember(spent, successor)
        return successor

    def _drop(self, key: str) -> Optional[Tuple[float, TokenPair, Tuple[str, ...]]]:
        entry = self._entries.pop(key, None)
        if entry is not None:
            for lead in entry[2]:
                if self._led_from.get(lead) == key:
                    del self._led_from[lead]
        return entry

    def __len__(self) -> int:
        return len(self._entries)


class Refresher:
    """Single-flight refresh keyed by the refresh token, with a short successor memory.

    Qelos refresh tokens are single-use. Every request of this process that presents the same
    refresh token while a refresh is in flight waits for that one call; for ``successor_ttl``
    seconds afterwards the same old token is answered from the store with the same new pair, so
    near-simultaneous requests (several browser tabs) all succeed with identical cookies. Signing
    out calls ``forget``, so a spent token cannot sign anyone back in through that memory.
    """

    def __init__(
        self,
        refresh: Callable[[str], Awaitable[TokenPair]],
        *,
        successor_ttl: float = 60.0,
        max_successors: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        store: Optional[SuccessorStore] = None,
    ) -> None:
        self._refresh = refresh
        self.store: SuccessorStore = (
            store if store is not None else SuccessorMemory(successor_ttl, max_successors, clock)
        )
        self._flights: Dict[str, _Flight] = {}

    async def refresh(self, refresh_token: str) -> TokenPair:
        remembered = await self.store.recall(refresh_token)
        if remembered is not None:
            return remembered
        key = fingerprint(refresh_token)
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

    async def forget(self, *tokens: Optional[str]) -> None:
        """After a sign-out: no remembered pair may lead to or from these tokens any more."""
        await self.store.forget(token for token in tokens if token)

    async def _fly(self, key: str, refresh_token: str, flight: _Flight) -> None:
        try:
            flight.result = await self.store.exchange(refresh_token, self._refresh)
        except QelosError as exc:
            flight.error = exc
        except Exception as exc:
            flight.error = QelosUnavailable(f"token refresh failed: {type(exc).__name__}")
        finally:
            del self._flights[key]
            flight.done.set()


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

    HttpOnly, SameSite=Lax, Path=/, Secure when the request reached the app over https (as the app's
    server sees it, so behind a proxy only with --proxy-headers) or when app_url is https; Max-Age is
    each token's lifetime (``exp - iat``) when it is a JWT, otherwise the cookie lasts for the browser session.
    """
    config = ctx.config
    secure = config.is_https or ctx.request.url.scheme in ("https", "wss")
    pairs = (
        (config.access_token_cookie, ctx.new_tokens.access_token),
        (config.refresh_token_cookie, ctx.new_tokens.refresh_token),
    )
    for name, token in pairs:
        if token:
            ctx.response.set_cookie(
                name, token, max_age=token_max_age(token), httponly=True, samesite="lax", secure=secure
            )
