"""One request's Qelos state, ``request.state.qelos``: everything per-request hangs off it."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple, Union

import anyio
from starlette.requests import HTTPConnection
from starlette.types import Scope

from . import _events as events
from ._cache import IdentityStore, read_only
from ._client import Identity, QelosClient
from ._config import QelosConfig
from ._cookies import CookieBuffer, relay_session_cookies
from ._credentials import AuthMode, Credentials, TokenPair, read_credentials, upstream_headers
from ._errors import QelosError, QelosUnauthorized, QelosUnavailable, WorkspaceSwitchError
from ._events import OnEvent
from ._refresh import OnTokenRefresh, Refresher, TokenRefreshContext
from ._sdk import REFRESH_TOO_LATE, RefreshTooLate, RequestSdkFactory, end_request_sdk

if TYPE_CHECKING:
    from qelos_sdk import QelosSDK

logger = logging.getLogger("qelos_integrator_fastapi")

Workspace = Dict[str, Any]
ResolveWorkspace = Callable[
    [HTTPConnection, Dict[str, Any], List[Workspace]], Union[Optional[Workspace], Awaitable[Optional[Workspace]]]
]
CachedIdentity = Tuple[Dict[str, Any], List[Workspace]]
_MAX_WARNED_COOKIES = 64


@dataclass
class Services:
    """What every request of one middleware shares: built once by QelosAuthBackend."""

    config: QelosConfig
    client: QelosClient
    refresher: Refresher
    cache: Optional[IdentityStore[CachedIdentity]]
    sdk_factory: RequestSdkFactory
    on_token_refresh: OnTokenRefresh
    on_event: Optional[OnEvent]
    resolve_workspace: Optional[ResolveWorkspace]
    # Session-cookie names of other tenants already warned about (bounded: names come from clients).
    warned_cookies: Set[str] = field(default_factory=set)


class QelosRequestContext:
    """What the middleware resolved for one request: ``request.state.qelos``.

    ``sdk`` is a real ``qelos_sdk.QelosSDK`` bound to this request's current credentials, built on
    first access. ``error`` is ``None``, or a code such as ``"QELOS_UNAVAILABLE"`` when Qelos could
    not answer and the request was left anonymous. ``request.user`` and ``request.auth`` are views
    of this object, so they follow ``activate_workspace`` within the request.
    """

    def __init__(
        self,
        *,
        sdk: Optional[QelosSDK] = None,
        tokens: Optional[TokenPair] = None,
        user: Optional[Dict[str, Any]] = None,
        workspace: Optional[Workspace] = None,
        workspaces: Optional[List[Workspace]] = None,
        mode: AuthMode = AuthMode.ANONYMOUS,
        error: Optional[str] = None,
    ) -> None:
        self.tokens = tokens if tokens is not None else TokenPair()
        self.user = user
        self.workspace = workspace
        self.workspaces = workspaces if workspaces is not None else []
        self.mode = mode
        self.error = error
        self._sdk = sdk
        self._services: Optional[Services] = None
        self._conn: Optional[HTTPConnection] = None
        self._cookies = CookieBuffer()
        # The Qelos session cookie to send upstream; follows rotations Qelos makes during the request.
        self._session_cookie: Optional[Tuple[str, str]] = None
        self._secure = False
        self._refresh_lock: Optional[anyio.Lock] = None

    @classmethod
    def _start(cls, services: Services, secure: bool) -> QelosRequestContext:
        ctx = cls()
        ctx._services = services
        ctx._secure = secure
        return ctx

    @property
    def sdk(self) -> QelosSDK:
        if self._sdk is None:
            if self._services is None:
                raise RuntimeError("this QelosRequestContext was built without an SDK; pass sdk= to its constructor")
            self._sdk = self._services.sdk_factory.build(self)
        return self._sdk

    @sdk.setter
    def sdk(self, value: QelosSDK) -> None:
        self._sdk = value

    @property
    def sdk_built(self) -> bool:
        return self._sdk is not None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    async def activate_workspace(self, workspace_id: str) -> Dict[str, Any]:
        """Make ``workspace_id`` the caller's active workspace in Qelos, for this and later requests.

        Session-cookie callers only: Qelos signs a new session cookie carrying the workspace, which
        reaches the browser with this response. Bearer and ``q_*`` token callers get
        WorkspaceSwitchError, because Qelos cannot change the workspace of an oauth token (sign in
        again with ``{"workspace": id}``).
        """
        if self.mode is not AuthMode.SESSION:
            raise WorkspaceSwitchError(
                f"Qelos activates workspaces for session-cookie callers only; this request used {self.mode.value} "
                "credentials. Sign in again with {'workspace': <id>} to get tokens for another workspace."
            )
        activated: Dict[str, Any] = await self.sdk.workspaces.activate(workspace_id)
        self.workspace = next((w for w in self.workspaces if w.get("_id") == workspace_id), activated)
        if self.user is not None:
            self.user = read_only({**self.user, "workspace": {"_id": workspace_id, "name": activated.get("name")}})
        return activated

    def upstream_headers(self) -> Dict[str, str]:
        """The headers this request sends to Qelos now: the tenant and the one current credential."""
        if self._services is None:
            raise RuntimeError("this QelosRequestContext was built without the middleware; it has no Qelos config")
        config = self._services.config
        return upstream_headers(
            config.tenant,
            bearer=self.tokens.access_token,
            session_cookie=self._session_cookie,
            api_token=config.api_token,
        )

    def relay(self, set_cookies: List[str]) -> None:
        """Carry Qelos's session-cookie changes to the browser and to this request's later calls."""
        if self._services is not None:
            self._session_cookie = relay_session_cookies(
                self._cookies, self._services.config, set_cookies, self._session_cookie, secure=self._secure
            )

    async def refresh_after_401(self, sent_token: str) -> Optional[str]:
        """Called by the request SDK when Qelos answers 401: the token to retry with, or None.

        Raises RefreshTooLate instead of refreshing once the response has started.
        """
        if self._refresh_lock is None:
            self._refresh_lock = anyio.Lock()
        # One refresh (and one on_token_refresh call) per request, however many SDK calls hit the 401.
        async with self._refresh_lock:
            if self.tokens.access_token and self.tokens.access_token != sent_token:
                return self.tokens.access_token
            if self.mode is not AuthMode.TOKEN or self.tokens.refresh_token is None or self._services is None:
                return None
            if self._cookies._started:
                logger.info(
                    "Qelos rejected the access token of an SDK call made after the response started; not "
                    "refreshing, so the browser keeps a refresh token that works (%s)",
                    REFRESH_TOO_LATE,
                )
                raise RefreshTooLate
            try:
                await self._refresh()
            except QelosError as exc:
                logger.info("refresh after a 401 from Qelos failed: %s", exc.code)
                return None
            return self.tokens.access_token

    async def _signed_out(self) -> None:
        """The request SDK signed the caller out: the successor memory must not sign it back in."""
        await self._forget_successors()

    async def _forget_successors(self, *tokens: Optional[str]) -> None:
        """After a sign-out: no remembered pair or cached identity may answer these credentials any more."""
        if self._services is None:
            return
        signed_out = [t for t in (self.tokens.access_token, self.tokens.refresh_token, *tokens) if t]
        await self._services.refresher.forget(*signed_out)
        if self._services.cache is not None:
            await self._services.cache.forget((mode.value, token) for mode in AuthMode for token in signed_out)

    def _read(self, conn: HTTPConnection) -> Credentials:
        """Take the request's credential (no I/O); all the middleware does for a proxied path."""
        assert self._services is not None
        self._conn = conn
        credentials = read_credentials(conn.scope, self._services.config)
        if credentials.rejected:
            logger.info(
                "ignored a credential on %s %s: %s", conn.scope.get("method", "WS"), conn.url.path, credentials.rejected
            )
        self.tokens = TokenPair(credentials.access_token, credentials.refresh_token)
        self.mode = credentials.mode
        self._session_cookie = credentials.session_cookie
        return credentials

    async def _resolve(self, conn: HTTPConnection) -> None:
        credentials = self._read(conn)
        if credentials.mode is AuthMode.ANONYMOUS:
            if credentials.other_tenant_cookie is not None:
                self._warn_other_tenant(credentials.other_tenant_cookie)
            return
        try:
            self.user, self.workspaces = await self._identify()
        except QelosUnauthorized:
            logger.debug("Qelos rejected the %s credential; the request is anonymous", credentials.mode.value)
            self._emit(events.IDENTITY_ANONYMOUS, code=QelosUnauthorized.code)
            return
        except QelosUnavailable as exc:
            self.error = exc.code
            logger.warning("could not resolve the Qelos user: %s", exc)
            self._emit(events.UPSTREAM_ERROR, code=exc.code, detail=str(exc))
            return
        self.workspace = await self._choose_workspace(conn, self.user, self.workspaces)
        self._emit(events.IDENTITY_RESOLVED)

    def _finish(self) -> None:
        """End of the request: drop what points back at it (the request SDK holds this context), so that
        reference counting frees the request at once and nothing waits for the cyclic collector."""
        sdk, self._sdk, self._conn = self._sdk, None, None
        if sdk is not None:
            end_request_sdk(sdk)

    async def _identify(self) -> CachedIdentity:
        can_refresh = self.mode is AuthMode.TOKEN and self.tokens.refresh_token is not None
        if self.mode is AuthMode.TOKEN and not self.tokens.access_token:
            await self._refresh()
            return await self._lookup()
        try:
            return await self._lookup()
        except QelosUnauthorized:
            if not can_refresh:
                raise
        await self._refresh()
        return await self._lookup()

    async def _lookup(self) -> CachedIdentity:
        assert self._services is not None
        cache = self._services.cache
        if cache is None:
            return await self._fetch()
        credential = (
            self._services.config.api_token or self.tokens.access_token or (self._session_cookie or ("", ""))[1]
        )
        identity, hit = await cache.get_or_fetch(credential, self._fetch, kind=self.mode.value)
        self._emit(events.CACHE_HIT if hit else events.CACHE_MISS)
        return identity

    async def _fetch(self) -> CachedIdentity:
        assert self._services is not None
        try:
            identity: Identity = await self._services.client.identify(self.upstream_headers())
        except QelosError as exc:
            # Qelos may rotate the session cookie in an answer that failed, or in the sibling call that did
            # not: the old cookie is spent either way, so the browser needs the new one.
            self.relay(list(exc.set_cookies))
            raise
        self.relay(identity.set_cookies)
        strings: Dict[str, str] = {}
        return read_only(identity.user, strings), read_only(identity.workspaces, strings)

    async def _refresh(self) -> None:
        assert self._services is not None and self._conn is not None
        refresh_token = self.tokens.refresh_token
        if refresh_token is None:
            raise QelosUnauthorized("no refresh token")
        try:
            new = await self._services.refresher.refresh(refresh_token)
        except QelosUnauthorized:
            self._emit(events.REFRESH_REJECTED, code=QelosUnauthorized.code)
            raise
        old = self.tokens.copy()
        self.tokens.access_token = new.access_token
        self.tokens.refresh_token = new.refresh_token
        logger.info("refreshed the caller's Qelos tokens")
        self._emit(events.TOKEN_REFRESHED)
        hook = TokenRefreshContext(
            request=self._conn,
            response=self._cookies,
            config=self._services.config,
            old_tokens=old,
            new_tokens=new,
            context=self,
        )
        await self._services.on_token_refresh(hook)

    async def _choose_workspace(
        self, conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Workspace]
    ) -> Optional[Workspace]:
        assert self._services is not None
        resolve = self._services.resolve_workspace
        if resolve is not None:
            chosen = resolve(conn, user, workspaces)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            return chosen
        active = user.get("workspace")
        active_id = active.get("_id") if isinstance(active, dict) else None
        for workspace in workspaces:
            if active_id is not None and workspace.get("_id") == active_id:
                return workspace
        if workspaces and active_id is None:
            logger.info(
                "the Qelos credential names no workspace (Qelos drops it from oauth tokens on their second refresh); "
                "request.state.qelos.workspace falls back to the first one, where Qelos does not act: no workspace "
                "roles are granted and SDK calls run without a workspace. Sign in again with {'workspace': <id>}, or "
                "call activate_workspace (session callers)"
            )
        return workspaces[0] if workspaces else None

    def _warn_other_tenant(self, name: str) -> None:
        assert self._services is not None
        warned = self._services.warned_cookies
        if name in warned or len(warned) >= _MAX_WARNED_COOKIES:
            return
        warned.add(name)
        prefix = name[len("qlt_") :]
        tenant = f"'{prefix}'" if len(prefix) < 8 else f"the tenant id that starts with '{prefix}'"
        logger.warning(
            "ignored the Qelos session cookie %s: it belongs to another tenant than QelosConfig.tenant=%r (whose "
            "cookie is %s), so the request is anonymous; if this app serves that tenant, set QelosConfig(tenant=...) "
            "to %s",
            name,
            self._services.config.tenant,
            self._services.config.session_cookie_names[0],
            tenant,
        )

    def _emit(self, name: str, **fields: Optional[str]) -> None:
        services = self._services
        if services is not None and services.on_event is not None:
            user_id = self.user.get("_id") if self.user else None
            path = self._conn.url.path if self._conn is not None else ""
            events.emit(services.on_event, events.QelosEvent(name, self.mode.value, path, user_id=user_id, **fields))

    def __repr__(self) -> str:
        user_id = self.user.get("_id") if self.user else None
        workspace_id = self.workspace.get("_id") if self.workspace else None
        return (
            f"QelosRequestContext(mode={self.mode.value}, user={user_id!r}, workspace={workspace_id!r}, "
            f"workspaces={len(self.workspaces)}, tokens={self.tokens!r}, error={self.error!r})"
        )


def served_context(scope: Scope, config: QelosConfig) -> Optional[QelosRequestContext]:
    """The request's context when a middleware in front serves ``config`` (the auth router, the proxy and the
    4.0.1 helpers then act on its credential and share its client), else None."""
    ctx = scope.get("state", {}).get("qelos")
    if isinstance(ctx, QelosRequestContext) and ctx._services is not None and ctx._services.config == config:
        return ctx
    return None
