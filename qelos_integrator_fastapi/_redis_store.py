"""Several processes coordinated on Redis (``QelosConfig.redis_url``): one refresh per spent refresh token,
a shared successor memory and an optional shared identity cache. Every value is sealed with AES-GCM under a
key derived (HKDF) from the credential it belongs to and stored under a hash of it, so Redis never holds a
usable token or a readable identity. A Redis fault falls back to the in-process behaviour (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Iterable, List, Optional, Tuple, TypeVar, Union
from urllib.parse import urlsplit

import anyio

from . import _events as events
from ._cache import IdentityCache, read_only
from ._config import QelosConfigError
from ._credentials import TokenPair, unverified_claims
from ._errors import QelosUnauthorized, QelosUnavailable
from ._events import OnEvent, QelosEvent
from ._refresh import SuccessorMemory, fingerprint

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("qelos_integrator_fastapi")

T = TypeVar("T")
Identity = Tuple[Dict[str, Any], List[Dict[str, Any]]]
PREFIX = "qelos-integrator:"
# A Redis command that takes longer than this counts as a fault: requests must not wait on a sick Redis.
OPERATION_TIMEOUT = 0.5
# After a fault Redis is left alone for this long, then the next request tries it again.
RETRY_AFTER = 1.0
# At most this many links of a refresh chain are walked back on logout.
MAX_CHAIN = 64
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return redis.call('publish', KEYS[2], ARGV[2])
"""
_OK, _REJECTED, _FAILED = b"ok", b"rejected", b"failed"


class RedisUnavailable(Exception):
    """Redis did not answer, or answered what this package never wrote: use the in-process fallback."""


def on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def trio_refusal() -> str:
    return (
        "QelosConfig.redis_url needs asyncio: the redis client (redis-py) has no trio support. Serve the app on "
        "asyncio (uvicorn, or hypercorn with --worker-class asyncio), or remove redis_url to coordinate refreshes "
        "per process"
    )


def _where(url: str) -> str:
    """The Redis address for logs, without credentials."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class RedisLink:
    """One process's Redis client and what it knows of Redis's health.

    After a fault every request skips Redis for ``RETRY_AFTER`` seconds, then one tries it again: one
    warning and one ``redis_unavailable`` event per outage, ``redis_recovered`` when it answers again.
    """

    def __init__(
        self,
        url: str,
        *,
        on_event: Optional[OnEvent] = None,
        timeout: float = OPERATION_TIMEOUT,
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.where = _where(url)
        self._on_event = on_event
        self._timeout = timeout
        self._retry_after = retry_after
        self._clock = clock
        self._client: Optional[Redis] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._down = False
        self._retry_at = 0.0
        self.outages = 0

    @property
    def usable(self) -> bool:
        return not self._down or self._clock() >= self._retry_at

    def client(self) -> Redis:
        if not on_asyncio():
            raise QelosConfigError(trio_refusal())
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No retries inside the client: a fault is handled once, here, by falling back.
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=Retry(NoBackoff(), 0),
            )
            self._loop = loop
        return self._client

    async def call(self, operation: Callable[[Redis], Awaitable[T]], *, limit: Optional[float] = None) -> T:
        """Run ``operation`` on Redis within ``limit`` seconds (a short default), or raise RedisUnavailable; at
        once while Redis is known to be down."""
        if not self.usable:
            raise RedisUnavailable
        client = self.client()
        try:
            if self._down:
                # Pooled connections from before the outage are dead (a restarted Redis): reconnect them all.
                await client.connection_pool.disconnect()
            with anyio.fail_after(self._timeout * 2 if limit is None else limit):
                result = await operation(client)
        except (OSError, TimeoutError, RedisUnavailable) as exc:
            self.fault(exc)
            raise RedisUnavailable from exc
        except Exception as exc:
            from redis.exceptions import RedisError

            if not isinstance(exc, RedisError):
                raise
            self.fault(exc)
            raise RedisUnavailable from exc
        self.answered()
        return result

    def fault(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._retry_after
        if self._down:
            return
        self._down = True
        self.outages += 1
        logger.warning(
            "Redis at %s failed (%s): refreshes and the identity cache fall back to this process until it answers "
            "again, so requests of one browser on several workers may race a refresh",
            self.where,
            type(exc).__name__,
        )
        self._emit(events.REDIS_UNAVAILABLE, type(exc).__name__)

    def answered(self) -> None:
        if self._down:
            self._down = False
            logger.warning("Redis at %s answers again: refreshes are coordinated across processes again", self.where)
            self._emit(events.REDIS_RECOVERED, None)

    def _emit(self, name: str, detail: Optional[str]) -> None:
        code = "REDIS_UNAVAILABLE" if name == events.REDIS_UNAVAILABLE else None
        events.emit(self._on_event, QelosEvent(name, "", "", code=code, detail=detail))

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()


def _key(secret: str, purpose: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"qelos-integrator " + purpose).derive(
        secret.encode()
    )


def seal(secret: str, purpose: bytes, name: str, value: Any) -> bytes:
    """``value`` as JSON, encrypted and authenticated under a key only ``secret`` gives (bound to ``name``)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return nonce + AESGCM(_key(secret, purpose)).encrypt(nonce, json.dumps(value).encode(), name.encode())


def unseal(secret: str, purpose: bytes, name: str, sealed: Union[bytes, str]) -> Any:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if isinstance(sealed, str):
        sealed = sealed.encode()
    try:
        return json.loads(AESGCM(_key(secret, purpose)).decrypt(sealed[:12], sealed[12:], name.encode()))
    except (InvalidTag, ValueError) as exc:
        raise RedisUnavailable("an entry this package cannot read") from exc


class RedisSuccessorStore:
    """The SuccessorStore shared through Redis, with the in-process SuccessorMemory as its fallback.

    Keys: ``succ:<sha256(spent)>`` (the sealed successor pair), ``led:<sha256(successor token)>`` (the hash of
    the spent token, to walk a chain back on logout), ``lock:<sha256(spent)>`` (who is refreshing, with a lease)
    and the pub/sub channel ``done:<sha256(spent)>`` on which the holder wakes the waiters.
    """

    def __init__(self, link: RedisLink, local: SuccessorMemory, *, ttl: float, wait: float) -> None:
        self._link = link
        self.local = local
        self._ttl_ms = max(1, int(ttl * 1000))
        self._wait = wait
        # The holder's refresh is bounded by refresh_timeout; a holder that died frees the lock this much later.
        self._lease_ms = max(1, int((wait + 1.0) * 1000))

    async def recall(self, spent: str) -> Optional[TokenPair]:
        if not self._link.usable:
            return await self.local.recall(spent)
        try:
            return await self._recall_shared(spent)
        except RedisUnavailable:
            return await self.local.recall(spent)

    async def remember(self, spent: str, successor: TokenPair) -> None:
        await self.local.remember(spent, successor)
        with contextlib.suppress(RedisUnavailable):
            await self._remember_shared(spent, successor)

    async def forget(self, tokens: Iterable[str]) -> None:
        tokens = [token for token in tokens if token]
        await self.local.forget(tokens)
        try:
            await self._forget_shared(tokens)
        except RedisUnavailable:
            logger.warning(
                "Redis did not answer while signing out: other processes may still answer the spent refresh token "
                "from their successor memory for up to %d s",
                self._ttl_ms // 1000,
            )

    async def exchange(self, spent: str, refresh: Callable[[str], Awaitable[TokenPair]]) -> TokenPair:
        """One refresh of ``spent`` among every process sharing Redis; the others get its successor."""
        key = fingerprint(spent)
        owner = secrets.token_hex(16)
        deadline = anyio.current_time() + self._wait
        try:
            while True:
                outcome, pair = await self._link.call(
                    lambda r: self._wait_turn(r, spent, key, owner, deadline),
                    limit=max(0.0, deadline - anyio.current_time()) + OPERATION_TIMEOUT * 2,
                )
                if pair is not None:
                    await self.local.remember(spent, pair)
                    return pair
                if outcome == _REJECTED:
                    raise QelosUnauthorized("the refresh token was rejected by Qelos (refreshed by another process)")
                if outcome == b"lead":
                    break
                if anyio.current_time() >= deadline:
                    raise QelosUnavailable("another process's refresh of this token outlasted refresh_timeout")
        except RedisUnavailable:
            return await self.local.exchange(spent, refresh)
        return await self._lead(spent, key, owner, refresh)

    async def _wait_turn(
        self, r: Redis, spent: str, key: str, owner: str, deadline: float
    ) -> Tuple[bytes, Optional[TokenPair]]:
        """Take the lock (``lead``), or wait for its holder without polling: its ``done`` message, its lease or
        the deadline, whichever comes first."""
        pubsub = r.pubsub()
        try:
            # Subscribed before looking, so a holder finishing in between cannot be missed.
            await pubsub.subscribe(PREFIX + "done:" + key)
            pair = await self._recall_with(r, spent)
            if pair is not None:
                return _OK, pair
            if await r.set(PREFIX + "lock:" + key, owner, nx=True, px=self._lease_ms):
                # A holder may have finished between the look and the lock: it remembers before it unlocks.
                pair = await self._recall_with(r, spent)
                if pair is None:
                    return b"lead", None
                await r.eval(_RELEASE, 2, PREFIX + "lock:" + key, PREFIX + "done:" + key, owner, _OK)
                return _OK, pair
            lease = await r.pttl(PREFIX + "lock:" + key)
            if lease == -2:  # released since: look again
                return _FAILED, None
            # -1: a lock without a lease, which this package never writes; wait until the deadline.
            until = deadline if lease < 0 else min(deadline, anyio.current_time() + lease / 1000)
            while (left := until - anyio.current_time()) > 0:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
                if message is not None and message.get("type") == "message":
                    data = message.get("data")
                    if data == _OK:
                        return _OK, await self._recall_with(r, spent)
                    return bytes(data), None
            return _FAILED, None
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _lead(
        self, spent: str, key: str, owner: str, refresh: Callable[[str], Awaitable[TokenPair]]
    ) -> TokenPair:
        outcome = _FAILED
        try:
            pair = await refresh(spent)
            outcome = _OK
        except QelosUnauthorized:
            outcome = _REJECTED
            raise
        finally:
            if outcome == _OK:
                await self.remember(spent, pair)
            with contextlib.suppress(RedisUnavailable):
                await self._link.call(
                    lambda r: r.eval(_RELEASE, 2, PREFIX + "lock:" + key, PREFIX + "done:" + key, owner, outcome)
                )
        return pair

    async def _recall_shared(self, spent: str) -> Optional[TokenPair]:
        return await self._link.call(lambda r: self._recall_with(r, spent))

    async def _recall_with(self, r: Redis, spent: str) -> Optional[TokenPair]:
        name = PREFIX + "succ:" + fingerprint(spent)
        sealed = await r.get(name)
        if sealed is None:
            return None
        value = unseal(spent, b"successor", name, sealed)
        if not isinstance(value, list) or len(value) != 2 or not all(isinstance(v, (str, type(None))) for v in value):
            raise RedisUnavailable("an entry this package cannot read")
        return TokenPair(value[0], value[1])

    async def _remember_shared(self, spent: str, successor: TokenPair) -> None:
        key = fingerprint(spent)
        name = PREFIX + "succ:" + key
        sealed = seal(spent, b"successor", name, [successor.access_token, successor.refresh_token])

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.set(name, sealed, px=self._ttl_ms)
                for token in (successor.access_token, successor.refresh_token):
                    if token:
                        pipe.set(PREFIX + "led:" + fingerprint(token), key, px=self._ttl_ms)
                await pipe.execute()

        await self._link.call(write)

    async def _forget_shared(self, tokens: List[str]) -> None:
        async def walk(r: Redis) -> None:
            pending: List[Tuple[str, Optional[str]]] = [(fingerprint(token), token) for token in tokens]
            seen: List[str] = []
            while pending and len(seen) < MAX_CHAIN:
                key, token = pending.pop()
                if key in seen:
                    continue
                seen.append(key)
                earlier = await r.get(PREFIX + "led:" + key)
                if earlier is not None:
                    pending.append((earlier.decode() if isinstance(earlier, bytes) else earlier, None))
                if token is not None:
                    # Forward: a spent token we hold opens its own entry, which names the next pair.
                    try:
                        successor = await self._recall_with(r, token)
                    except RedisUnavailable:
                        successor = None
                    if successor is not None:
                        following = (successor.access_token, successor.refresh_token)
                        pending.extend((fingerprint(t), t) for t in following if t)
            if seen:
                await r.delete(*(PREFIX + kind + key for key in seen for kind in ("succ:", "led:")))

        await self._link.call(walk)


class RedisIdentityCache:
    """The identity cache shared through Redis (sealed under the credential), with the in-process one as fallback.

    The same lifetime rules: ``ttl`` at most and never past the credential's ``exp``; only successes are stored.
    """

    def __init__(
        self,
        link: RedisLink,
        local: IdentityCache[Identity],
        ttl: float,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self.local = local
        self._ttl = ttl
        self._wall_clock = wall_clock

    async def get_or_fetch(
        self, credential: str, fetch: Callable[[], Awaitable[Identity]], *, kind: str = ""
    ) -> Tuple[Identity, bool]:
        if not self._link.usable:
            return await self.local.get_or_fetch(credential, fetch, kind=kind)
        name = self._name(credential, kind)
        try:
            cached = await self._link.call(lambda r: self._read(r, name, credential))
        except RedisUnavailable:
            return await self.local.get_or_fetch(credential, fetch, kind=kind)
        if cached is not None:
            return cached, True
        identity = await fetch()
        lifetime = self._ttl
        exp = unverified_claims(credential).get("exp")
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            lifetime = min(lifetime, exp - self._wall_clock())
        if lifetime > 0:
            sealed = seal(credential, b"identity", name, list(identity))
            with contextlib.suppress(RedisUnavailable):
                await self._link.call(lambda r: r.set(name, sealed, px=max(1, int(lifetime * 1000))))
        return identity, False

    async def forget(self, credentials: Iterable[Tuple[str, str]]) -> None:
        credentials = list(credentials)
        await self.local.forget(credentials)
        names = [self._name(credential, kind) for kind, credential in credentials]
        if names:
            with contextlib.suppress(RedisUnavailable):
                await self._link.call(lambda r: r.delete(*names))

    @staticmethod
    async def _read(r: Redis, name: str, credential: str) -> Optional[Identity]:
        sealed = await r.get(name)
        if sealed is None:
            return None
        value = unseal(credential, b"identity", name, sealed)
        if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], dict)) or not isinstance(
            value[1], list
        ):
            raise RedisUnavailable("an entry this package cannot read")
        strings: Dict[str, str] = {}
        return read_only(value[0], strings), read_only(value[1], strings)

    @staticmethod
    def _name(credential: str, kind: str) -> str:
        digest = hashlib.sha256(f"{kind}\0{credential}".encode()).digest()
        return PREFIX + "identity:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")
