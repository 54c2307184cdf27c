from __future__ import annotations

import copy
import hashlib
import time
from collections import OrderedDict
from typing import Awaitable, Callable, Dict, Generic, Iterable, Optional, Protocol, Tuple, TypeVar

import anyio

from ._credentials import unverified_claims

T = TypeVar("T")


class IdentityStore(Protocol[T]):
    """Where resolved identities are kept: in-process (IdentityCache) or shared (RedisIdentityCache)."""

    async def get_or_fetch(
        self, credential: str, fetch: Callable[[], Awaitable[T]], *, kind: str = ""
    ) -> Tuple[T, bool]: ...

    async def forget(self, credentials: Iterable[Tuple[str, str]]) -> None:
        """Drop the entries of these ``(kind, credential)`` pairs (after a sign-out)."""


def _key(kind: str, credential: str) -> str:
    return hashlib.sha256(f"{kind}\0{credential}".encode()).hexdigest()


class IdentityCache(Generic[T]):
    """Opt-in memory of resolved identities, keyed by a hash of the credential.

    An entry lives ``ttl`` seconds at most and never past the credential's own ``exp``; the
    least recently used entry goes first when ``size`` is reached. Concurrent misses for one
    credential share one upstream lookup. Only successes are stored: failures and anonymous
    requests always go to Qelos.
    """

    def __init__(
        self,
        ttl: float,
        size: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._wall_clock = wall_clock
        self._entries: OrderedDict[str, Tuple[float, T]] = OrderedDict()
        self._pending: Dict[str, anyio.Event] = {}

    async def get_or_fetch(
        self, credential: str, fetch: Callable[[], Awaitable[T]], *, kind: str = ""
    ) -> Tuple[T, bool]:
        """The identity for ``credential`` (of a ``kind``, such as the auth mode) and whether it came from memory."""
        key = _key(kind, credential)
        while True:
            entry = self._fresh(key)
            if entry is not None:
                return copy.deepcopy(entry), True
            pending = self._pending.get(key)
            if pending is None:
                break
            await pending.wait()
            if self._fresh(key) is None:
                # The shared lookup failed; this request asks Qelos itself.
                break
        done = self._pending.setdefault(key, anyio.Event())
        try:
            value = await fetch()
            self._store(key, credential, value)
            return value, False
        finally:
            if self._pending.get(key) is done:
                del self._pending[key]
            done.set()

    async def forget(self, credentials: Iterable[Tuple[str, str]]) -> None:
        for kind, credential in credentials:
            self._entries.pop(_key(kind, credential), None)

    def __len__(self) -> int:
        return len(self._entries)

    def _fresh(self, key: str) -> Optional[T]:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: str, credential: str, value: T) -> None:
        lifetime = self._ttl
        exp = unverified_claims(credential).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            lifetime = min(lifetime, exp - self._wall_clock())
        if lifetime <= 0:
            return
        self._entries[key] = (self._clock() + lifetime, copy.deepcopy(value))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
