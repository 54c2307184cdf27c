"""The Starlette contract: ``request.user`` (QelosUser), ``request.auth`` scopes, ``authenticate``."""

from __future__ import annotations

import logging
import time
from typing import Any, Dict, List, Optional, Tuple

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection
from starlette.types import Scope

from ._cache import IdentityCache, IdentityStore
from ._client import QelosClient
from ._config import QelosConfig
from ._context import CachedIdentity, QelosRequestContext, ResolveWorkspace, Services, Workspace
from ._events import OnEvent
from ._redis_store import RedisIdentityCache, RedisLink, RedisSuccessorStore
from ._refresh import OnTokenRefresh, Refresher, SuccessorMemory, SuccessorStore, write_token_cookies
from ._sdk import RequestSdkFactory

logger = logging.getLogger("qelos_integrator_fastapi")
# Seconds a refresh's successor pair answers its spent refresh token; entries kept per process.
SUCCESSOR_TTL = 60.0
MAX_SUCCESSORS = 10_000


class QelosUser(BaseUser):
    """The Qelos user of a request, as ``request.user``; ``raw`` is the ``/api/me`` JSON.

    In a request it is a view of ``request.state.qelos``, so it follows ``activate_workspace``.
    """

    def __init__(self, raw: Dict[str, Any], workspace: Optional[Workspace] = None) -> None:
        self._ctx = QelosRequestContext(user=raw, workspace=workspace)

    @classmethod
    def _view(cls, ctx: QelosRequestContext) -> QelosUser:
        user = cls.__new__(cls)
        user._ctx = ctx
        return user

    @property
    def raw(self) -> Dict[str, Any]:
        return self._ctx.user or {}

    @property
    def workspace(self) -> Optional[Workspace]:
        return self._ctx.workspace

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def identity(self) -> str:
        return self.id

    @property
    def display_name(self) -> str:
        return self.full_name or self.username or self.email or self.id

    @property
    def id(self) -> str:
        return str(self.raw.get("_id", ""))

    @property
    def username(self) -> Optional[str]:
        return _text(self.raw.get("username"))

    @property
    def email(self) -> Optional[str]:
        return _text(self.raw.get("email"))

    @property
    def full_name(self) -> Optional[str]:
        return _text(self.raw.get("fullName")) or _text(self.raw.get("name"))

    @property
    def first_name(self) -> Optional[str]:
        return _text(self.raw.get("firstName"))

    @property
    def last_name(self) -> Optional[str]:
        return _text(self.raw.get("lastName"))

    @property
    def roles(self) -> Tuple[str, ...]:
        return _strings(self.raw.get("roles"))

    @property
    def workspace_roles(self) -> Tuple[str, ...]:
        return workspace_roles(self.raw, self.workspace)

    def __repr__(self) -> str:
        return f"QelosUser(id={self.id!r}, username={self.username!r}, roles={list(self.roles)!r})"


class QelosAuthBackend(AuthenticationBackend):
    """Starlette authentication backend resolving the Qelos user and workspace of a connection."""

    def __init__(
        self,
        config: QelosConfig,
        *,
        resolve_workspace: Optional[ResolveWorkspace] = None,
        on_token_refresh: Optional[OnTokenRefresh] = None,
        on_event: Optional[OnEvent] = None,
        client: Optional[QelosClient] = None,
    ) -> None:
        self.config = config
        self.client = client if client is not None else QelosClient(config)
        pool = self.client
        cache: Optional[IdentityStore[CachedIdentity]] = None
        if config.identity_cache_ttl:
            cache = IdentityCache(config.identity_cache_ttl, config.identity_cache_size)
        store: Optional[SuccessorStore] = None
        self.redis: Optional[RedisLink] = None
        if config.redis_url is not None:
            self.redis = RedisLink(config.redis_url, on_event=on_event)
            store = RedisSuccessorStore(
                self.redis,
                SuccessorMemory(SUCCESSOR_TTL, MAX_SUCCESSORS, time.monotonic),
                ttl=SUCCESSOR_TTL,
                wait=config.refresh_timeout,
            )
            if isinstance(cache, IdentityCache):
                cache = RedisIdentityCache(self.redis, cache, config.identity_cache_ttl)
        self._services = Services(
            config=config,
            client=self.client,
            refresher=Refresher(self.client.refresh, successor_ttl=SUCCESSOR_TTL, store=store),
            cache=cache,
            sdk_factory=RequestSdkFactory(config, lambda: pool.transport),
            on_token_refresh=on_token_refresh if on_token_refresh is not None else write_token_cookies,
            on_event=on_event,
            resolve_workspace=resolve_workspace,
        )
        self._warned_standalone = False

    @property
    def cache(self) -> Optional[IdentityStore[CachedIdentity]]:
        return self._services.cache

    @cache.setter
    def cache(self, cache: Optional[IdentityStore[CachedIdentity]]) -> None:
        self._services.cache = cache

    async def aclose(self) -> None:
        """Close the pooled Qelos client and the Redis client."""
        await self.client.aclose()
        if self.redis is not None:
            await self.redis.aclose()

    def start(self, scope: Scope) -> QelosRequestContext:
        """A fresh context for a request, stored at ``scope["state"]["qelos"]``."""
        ctx = QelosRequestContext._start(self._services, secure=scope.get("scheme") in ("https", "wss"))
        scope.setdefault("state", {})["qelos"] = ctx
        return ctx

    async def authenticate(self, conn: HTTPConnection) -> Optional[Tuple[AuthCredentials, BaseUser]]:
        ctx = conn.scope.get("state", {}).get("qelos")
        if not isinstance(ctx, QelosRequestContext) or ctx._services is not self._services:
            if not self._warned_standalone:
                self._warned_standalone = True
                logger.warning(
                    "QelosAuthBackend runs without QelosIntegratorMiddleware: users resolve, but refreshed or "
                    "rotated cookies cannot reach the browser; use app.add_middleware(QelosIntegratorMiddleware, ...)"
                )
            ctx = self.start(conn.scope)
        await ctx._resolve(conn)
        if ctx.user is None:
            return None
        return _ContextScopes(ctx), QelosUser._view(ctx)


class _ContextScopes(AuthCredentials):
    """``request.auth``: its scopes are computed from the request's context, so they follow it."""

    def __init__(self, ctx: QelosRequestContext) -> None:
        self._ctx = ctx

    @property
    def scopes(self) -> List[str]:
        return scopes_for(self._ctx)

    @scopes.setter
    def scopes(self, value: List[str]) -> None:
        raise AttributeError("request.auth.scopes follows request.state.qelos; change the context instead")


def workspace_roles(user: Dict[str, Any], workspace: Optional[Workspace]) -> Tuple[str, ...]:
    """The caller's roles in the chosen workspace: its membership entry, else the token's claim.

    None unless it is the workspace of the credential's claim, the one Qelos acts in: a role there is
    granted by Qelos to SDK calls, a role in any other workspace (or when the claim names none) is not.
    """
    claim = user.get("workspace")
    if not workspace or not isinstance(claim, dict) or claim.get("_id") != workspace.get("_id"):
        return ()
    members = workspace.get("members")
    if isinstance(members, list):
        for member in members:
            if isinstance(member, dict) and member.get("user") == user.get("_id"):
                return _strings(member.get("roles"))
    return _strings(claim.get("roles"))


def scopes_for(ctx: QelosRequestContext) -> List[str]:
    if ctx.user is None:
        return []
    scopes = ["authenticated", *(f"role:{role}" for role in _strings(ctx.user.get("roles")))]
    if ctx.workspace:
        scopes.append("workspace")
        scopes.extend(f"workspace:{role}" for role in workspace_roles(ctx.user, ctx.workspace))
    return scopes


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> Tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
