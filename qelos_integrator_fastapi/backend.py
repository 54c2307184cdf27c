from __future__ import annotations

import inspect
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

import anyio
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from . import events
from .cache import IdentityCache
from .client import QelosClient, Reply, auth_headers
from .config import QelosConfig
from .context import QelosRequestContext, TokenPair, TokenRefreshContext
from .cookies import CookieBuffer, parse_set_cookie, relay_to_app, write_token_cookies
from .credentials import AuthMode, read_credentials
from .errors import QelosError, QelosUnauthorized, QelosUnavailable
from .events import OnEvent
from .refresh import Refresher
from .sdk import RequestSdkFactory

logger = logging.getLogger("qelos_integrator_fastapi")

Workspace = Dict[str, Any]
ResolveWorkspace = Callable[
    [HTTPConnection, Dict[str, Any], List[Workspace]], Union[Optional[Workspace], Awaitable[Optional[Workspace]]]
]
Identity = Tuple[Dict[str, Any], List[Workspace]]
OnTokenRefresh = Callable[[TokenRefreshContext], Awaitable[None]]

# Per-request state the middleware leaves in the ASGI scope for the backend.
SCOPE_KEY = "qelos_integrator_fastapi"


class QelosUser(BaseUser):
    """The Qelos user of a request, as ``request.user``; ``raw`` is the ``/api/me`` JSON."""

    def __init__(self, raw: Dict[str, Any], workspace: Optional[Workspace] = None) -> None:
        self.raw = raw
        self.workspace = workspace

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


class RequestState:
    """What one request carries between the middleware and the backend."""

    def __init__(self, buffer: Optional[CookieBuffer] = None) -> None:
        self.buffer = buffer if buffer is not None else CookieBuffer()
        self.context: Optional[QelosRequestContext] = None
        # The Qelos session cookie to send upstream; follows rotations Qelos makes during the request.
        self.session_cookie: Optional[Tuple[str, str]] = None
        self.secure = False
        self._refresh_lock: Optional[anyio.Lock] = None

    @property
    def refresh_lock(self) -> anyio.Lock:
        """Serialises refreshes after a 401 within the request; made only when an SDK call needs it."""
        if self._refresh_lock is None:
            self._refresh_lock = anyio.Lock()
        return self._refresh_lock

    def relay(self, config: QelosConfig, set_cookies: List[str]) -> None:
        """Carry Qelos session-cookie changes to the browser, rewritten for the app (see cookies.py)."""
        for header in set_cookies:
            cookie = parse_set_cookie(header)
            if cookie is None or cookie.name not in config.session_cookie_names:
                continue
            if cookie.is_deletion:
                self.session_cookie = None
            elif self.session_cookie == (cookie.name, cookie.value):
                continue
            else:
                self.session_cookie = (cookie.name, cookie.value)
            relay_to_app(
                self.buffer,
                cookie,
                path=config.session_cookie_path,
                secure=self.secure,
                domain=config.session_cookie_domain,
            )


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
        self.refresher = Refresher(self.client.refresh)
        self.cache: Optional[IdentityCache[Identity]] = (
            IdentityCache(config.identity_cache_ttl, config.identity_cache_size) if config.identity_cache_ttl else None
        )
        self._on_event = on_event
        self._warned_standalone = False
        self._resolve_workspace = resolve_workspace
        self._on_token_refresh = on_token_refresh if on_token_refresh is not None else write_token_cookies
        self._sdk_factory = RequestSdkFactory(config, lambda: self.client.transport)

    async def authenticate(self, conn: HTTPConnection) -> Optional[Tuple[AuthCredentials, BaseUser]]:
        state = conn.scope.get(SCOPE_KEY)
        if not isinstance(state, RequestState):
            if not self._warned_standalone:
                self._warned_standalone = True
                logger.warning(
                    "QelosAuthBackend runs without QelosIntegratorMiddleware: users resolve, but refreshed or "
                    "rotated cookies cannot reach the browser; use app.add_middleware(QelosIntegratorMiddleware, ...)"
                )
            state = conn.scope[SCOPE_KEY] = RequestState()
        ctx = await self.resolve(conn, state)
        if ctx.user is None:
            return None
        return AuthCredentials(scopes_for(ctx)), QelosUser(ctx.user, ctx.workspace)

    async def resolve(self, conn: HTTPConnection, state: RequestState) -> QelosRequestContext:
        credentials = read_credentials(conn.scope, self.config)
        if credentials.rejected:
            logger.info(
                "ignored a credential on %s %s: %s", conn.scope.get("method", "WS"), conn.url.path, credentials.rejected
            )
        ctx = QelosRequestContext(
            tokens=TokenPair(credentials.access_token, credentials.refresh_token),
            mode=credentials.mode,
            sdk_factory=lambda c: self._build_sdk(conn, state, c),
        )
        state.context = ctx
        state.session_cookie = credentials.session_cookie
        state.secure = conn.scope.get("scheme") in ("https", "wss")
        conn.scope.setdefault("state", {})["qelos"] = ctx
        if credentials.mode is AuthMode.ANONYMOUS:
            return ctx
        try:
            me, workspaces = await self._identify(conn, state, ctx)
        except QelosUnauthorized:
            logger.debug("Qelos rejected the %s credential; the request is anonymous", credentials.mode.value)
            self._emit(events.IDENTITY_ANONYMOUS, conn, ctx, code=QelosUnauthorized.code)
            return ctx
        except QelosUnavailable as exc:
            ctx.error = exc.code
            logger.warning("could not resolve the Qelos user: %s", exc)
            self._emit(events.UPSTREAM_ERROR, conn, ctx, code=exc.code, detail=str(exc))
            return ctx
        ctx.user = me
        ctx.workspaces = workspaces
        ctx.workspace = await self._choose_workspace(conn, me, workspaces)
        self._emit(events.IDENTITY_RESOLVED, conn, ctx)
        return ctx

    def _emit(self, name: str, conn: HTTPConnection, ctx: QelosRequestContext, **fields: Optional[str]) -> None:
        if self._on_event is not None:
            user_id = ctx.user.get("_id") if ctx.user else None
            event = events.QelosEvent(name, ctx.mode.value, conn.url.path, user_id=user_id, **fields)
            events.emit(self._on_event, event)

    async def _identify(self, conn: HTTPConnection, state: RequestState, ctx: QelosRequestContext) -> Identity:
        can_refresh = ctx.mode is AuthMode.TOKEN and ctx.tokens.refresh_token is not None
        if ctx.mode is AuthMode.TOKEN and not ctx.tokens.access_token:
            await self._refresh(conn, state, ctx)
            return await self._lookup(conn, state, ctx)
        try:
            return await self._lookup(conn, state, ctx)
        except QelosUnauthorized:
            if not can_refresh:
                raise
        await self._refresh(conn, state, ctx)
        return await self._lookup(conn, state, ctx)

    async def _lookup(self, conn: HTTPConnection, state: RequestState, ctx: QelosRequestContext) -> Identity:
        if self.cache is None:
            return await self._fetch(state, ctx)
        credential = self.config.api_token or ctx.tokens.access_token or (state.session_cookie or ("", ""))[1]
        identity, hit = await self.cache.get_or_fetch(credential, lambda: self._fetch(state, ctx), kind=ctx.mode.value)
        self._emit(events.CACHE_HIT if hit else events.CACHE_MISS, conn, ctx)
        return identity

    async def _fetch(self, state: RequestState, ctx: QelosRequestContext) -> Identity:
        headers = auth_headers(ctx.tokens, state.session_cookie, self.config.api_token)
        replies: Dict[str, Union[Reply, QelosError]] = {}

        async def call(name: str, fetch: Callable[[Dict[str, str]], Awaitable[Reply]]) -> None:
            try:
                replies[name] = await fetch(headers)
            except QelosError as exc:
                replies[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "me", self.client.me)
            tg.start_soon(call, "workspaces", self.client.workspaces)
        for reply in replies.values():
            if isinstance(reply, Reply):
                state.relay(self.config, reply.set_cookies)
        me = replies["me"]
        if isinstance(me, QelosError):
            raise me
        workspaces = replies["workspaces"]
        if isinstance(workspaces, QelosError):
            logger.warning("the Qelos user resolved but the workspace list did not (%s); workspaces is []", workspaces)
            return me.body, []
        return me.body, workspaces.body

    async def _refresh(self, conn: HTTPConnection, state: RequestState, ctx: QelosRequestContext) -> None:
        refresh_token = ctx.tokens.refresh_token
        if refresh_token is None:
            raise QelosUnauthorized("no refresh token")
        try:
            new = await self.refresher.refresh(refresh_token)
        except QelosUnauthorized:
            self._emit(events.REFRESH_REJECTED, conn, ctx, code=QelosUnauthorized.code)
            raise
        old = ctx.tokens.copy()
        ctx.tokens.access_token = new.access_token
        ctx.tokens.refresh_token = new.refresh_token
        logger.info("refreshed the caller's Qelos tokens")
        self._emit(events.TOKEN_REFRESHED, conn, ctx)
        hook = TokenRefreshContext(
            request=conn, response=state.buffer, config=self.config, old_tokens=old, new_tokens=new, context=ctx
        )
        await self._on_token_refresh(hook)

    async def _refresh_after_401(
        self, conn: HTTPConnection, state: RequestState, ctx: QelosRequestContext, sent_token: str
    ) -> Optional[str]:
        """Called by the request SDK when Qelos answers 401: the token to retry with, or None."""
        # One refresh (and one on_token_refresh call) per request, however many SDK calls hit the 401.
        async with state.refresh_lock:
            if ctx.tokens.access_token and ctx.tokens.access_token != sent_token:
                return ctx.tokens.access_token
            if ctx.mode is not AuthMode.TOKEN or ctx.tokens.refresh_token is None:
                return None
            try:
                await self._refresh(conn, state, ctx)
            except QelosError as exc:
                logger.info("refresh after a 401 from Qelos failed: %s", exc.code)
                return None
            return ctx.tokens.access_token

    def _build_sdk(self, conn: HTTPConnection, state: RequestState, ctx: QelosRequestContext) -> Any:
        async def refresh_after_401(sent: str) -> Optional[str]:
            return await self._refresh_after_401(conn, state, ctx, sent)

        return self._sdk_factory.build(
            ctx,
            lambda: state.session_cookie,
            refresh_after_401,
            lambda set_cookies: state.relay(self.config, set_cookies),
        )

    async def _choose_workspace(
        self, conn: HTTPConnection, user: Dict[str, Any], workspaces: List[Workspace]
    ) -> Optional[Workspace]:
        if self._resolve_workspace is not None:
            chosen = self._resolve_workspace(conn, user, workspaces)
            if inspect.isawaitable(chosen):
                chosen = await chosen
            return chosen
        active = user.get("workspace")
        active_id = active.get("_id") if isinstance(active, dict) else None
        for workspace in workspaces:
            if active_id is not None and workspace.get("_id") == active_id:
                return workspace
        return workspaces[0] if workspaces else None


def workspace_roles(user: Dict[str, Any], workspace: Optional[Workspace]) -> Tuple[str, ...]:
    """The caller's roles in the active workspace: its membership entry, else the token's claim."""
    if not workspace:
        return ()
    members = workspace.get("members")
    if isinstance(members, list):
        for member in members:
            if isinstance(member, dict) and member.get("user") == user.get("_id"):
                return _strings(member.get("roles"))
    claim = user.get("workspace")
    if isinstance(claim, dict) and claim.get("_id") == workspace.get("_id"):
        return _strings(claim.get("roles"))
    return ()


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
