from __future__ import annotations

import hashlib
import sys
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Dict, Generic, Iterable, NoReturn, Optional, Protocol, Tuple, TypeVar

import anyio

from ._credentials import unverified_claims

T = TypeVar("T")

_READ_ONLY = (
    "identities from Qelos are read-only (the identity cache shares them between requests); "
    "copy before changing: dict(value), list(value) or copy.deepcopy(value)"
)


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(_READ_ONLY)


class ReadOnlyDict(Dict[str, Any]):
    """A JSON object from Qelos: a real ``dict`` for readers, mutators raise TypeError."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> Any:
        # copy.copy, copy.deepcopy and pickle give a plain, mutable dict.
        return dict, (dict(self),)


class ReadOnlyList(list):  # type: ignore[type-arg]
    """A JSON array from Qelos: a real ``list`` for readers, mutators raise TypeError."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = clear = sort = reverse = _refuse

    def __reduce__(self) -> Any:
        return list, (list(self),)


_EMPTY_DICT = ReadOnlyDict()
_EMPTY_LIST = ReadOnlyList()


def read_only(value: Any, _strings: Optional[Dict[str, str]] = None) -> Any:
    """A read-only copy of decoded JSON, made once per lookup so cache hits share it without copying.

    Keys are interned and equal strings within one value are stored once, which keeps an entry small.
    """
    strings: Dict[str, str] = {} if _strings is None else _strings
    if isinstance(value, dict):
        if not value:
            return _EMPTY_DICT
        return ReadOnlyDict(
            {sys.intern(k) if isinstance(k, str) else k: read_only(v, strings) for k, v in value.items()}
        )
    if isinstance(value, list):
        return ReadOnlyList([read_only(v, strings) for v in value]) if value else _EMPTY_LIST
    if isinstance(value, str):
        return strings.setdefault(value, value)
    return value


class IdentityStore(Protocol[T]):
    """Where resolved identities are kept: in-process (IdentityCache) or shared (RedisIdentityCache)."""

    async def get_or_fetch(
        self, credential: str, fetch: Callable[[], Awaitable[T]], *, kind: str = ""
    ) -> Tuple[T, bool]: ...

    async def forget(self, credentials: Iterable[Tuple[str, str]]) -> None:
        """Drop the entries of these ``(kind, credential)`` pairs (after a sign-out)."""


def _key(kind: str, credential: str) -> bytes:
    # A digest, not the credential: the cache never holds a token, and 32 bytes weigh less than hex.
    return hashlib.sha256(f"{kind}\0{credential}".encode()).digest()


class IdentityCache(Generic[T]):
    """Opt-in memory of resolved identities, keyed by a hash of the credential.

    An entry lives ``ttl`` seconds at most and never past the credential's own ``exp``; the
    least recently used entry goes first when ``size`` is reached. Concurrent misses for one
    credential share one upstream lookup. Only successes are stored: failures and anonymous
    requests always go to Qelos. Values are stored and returned as they are, never copied: the
    caller stores read-only values (see ``read_only``).
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
        self._entries: OrderedDict[bytes, Tuple[float, T]] = OrderedDict()
        self._pending: Dict[bytes, anyio.Event] = {}

    async def get_or_fetch(
        self, credential: str, fetch: Callable[[], Awaitable[T]], *, kind: str = ""
    ) -> Tuple[T, bool]:
        """The identity for ``credential`` (of a ``kind``, such as the auth mode) and whether it came from memory."""
        key = _key(kind, credential)
        while True:
            entry = self._fresh(key)
            if entry is not None:
                return entry, True
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

    def _fresh(self, key: bytes) -> Optional[T]:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: bytes, credential: str, value: T) -> None:
        lifetime = self._ttl
        exp = unverified_claims(credential).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            lifetime = min(lifetime, exp - self._wall_clock())
        if lifetime <= 0:
            return
        self._entries[key] = (self._clock() + lifetime, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
