from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from starlette.requests import Request

from ._client import QelosClient, Reply, token_pair
from ._config import QelosConfig
from ._context import QelosRequestContext, served_context
from ._cookies import CookieBuffer, parse_set_cookie, relay_to_app
from ._credentials import AuthMode, TokenPair, read_credentials, upstream_headers
from ._errors import QelosUnauthorized, QelosUnavailable
from ._problem import Problem
from ._refresh import OnTokenRefresh, TokenRefreshContext, write_token_cookies

logger = logging.getLogger("qelos_integrator_fastapi")


class QelosAuth:
    """The router's Qelos calls, over the middleware's QelosClient or one pooled client of its own."""

    def __init__(self, config: QelosConfig, *, mode: str, on_token_refresh: Optional[OnTokenRefresh]) -> None:
        self._config = config
        self._mode = mode
        self._on_token_refresh = on_token_refresh if on_token_refresh is not None else write_token_cookies
        self._own_client: Optional[QelosClient] = None

    def client(self, request: Request) -> QelosClient:
        """The middleware's client when it serves the same config, else this router's own (made once)."""
        ctx = served_context(request.scope, self._config)
        if ctx is not None:
            assert ctx._services is not None
            return ctx._services.client
        if self._own_client is None:
            self._own_client = QelosClient(self._config)
        return self._own_client

    async def sign_in(
        self, request: Request, username: str, password: str, workspace: Optional[str]
    ) -> Tuple[Dict[str, Any], CookieBuffer]:
        body: Dict[str, Any] = {
            "username": username,
            "password": password,
            "authType": "cookie" if self._mode == "session" else "oauth",
        }
        if workspace is not None:
            body["workspace"] = workspace
        try:
            reply = await self.client(request).sign_in(body)
        except QelosUnauthorized:
            raise Problem(401, "INVALID_CREDENTIALS", "invalid username or password") from None
        except QelosUnavailable as exc:
            raise Problem.unavailable(exc) from None
        return reply.body, await self._keep_credentials(request, reply, "POST /api/signin")

    async def exchange(self, request: Request, rt: str) -> CookieBuffer:
        client = self.client(request)
        try:
            if self._mode == "session":
                reply = await client.auth_callback(rt)
                return await self._keep_credentials(request, reply, "POST /api/auth/callback")
            # rt is a plain Qelos refresh token: one refresh turns it into the oauth pair of token mode.
            tokens = await client.refresh(rt, rejected=(400, 401, 403))
        except QelosUnauthorized:
            raise Problem(401, "SOCIAL_LOGIN_REJECTED", "Qelos did not accept the social login; start again") from None
        except QelosUnavailable as exc:
            raise Problem.unavailable(exc) from None
        buffer = CookieBuffer()
        await self._write_tokens(request, buffer, tokens)
        return buffer

    async def sign_out(self, request: Request) -> Tuple[bool, CookieBuffer]:
        revoked = await self._revoke(request)
        ctx = request.scope.get("state", {}).get("qelos")
        if isinstance(ctx, QelosRequestContext):
            sent = read_credentials(request.scope, self._config)
            await ctx._forget_successors(sent.access_token, sent.refresh_token)
        buffer = CookieBuffer()
        self._clear_cookies(request, buffer, token=True, session=True)
        return revoked, buffer

    async def _keep_credentials(self, request: Request, reply: Reply, what: str) -> CookieBuffer:
        buffer = CookieBuffer()
        if self._mode == "session":
            self._relay_session(request, reply, buffer, what)
        else:
            try:
                tokens = token_pair(reply.body, what)
            except QelosUnavailable as exc:
                raise Problem.unavailable(exc) from None
            await self._write_tokens(request, buffer, tokens)
        return buffer

    def _relay_session(self, request: Request, reply: Reply, buffer: CookieBuffer, what: str) -> None:
        relayed = False
        for header in reply.set_cookies:
            cookie = parse_set_cookie(header)
            if cookie is None or cookie.name not in self._config.session_cookie_names or cookie.is_deletion:
                continue
            relay_to_app(
                buffer,
                cookie,
                path=self._config.session_cookie_path,
                secure=request.url.scheme == "https",
                domain=self._config.session_cookie_domain,
            )
            relayed = True
        if not relayed:
            raise Problem(
                503,
                "QELOS_UNAVAILABLE",
                f"{what} answered 200 without a {self._config.session_cookie_names[0]} session cookie; "
                "check that QelosConfig.tenant matches the Qelos tenant",
            )
        # Token cookies win over a session cookie in the middleware: stale ones would mask this sign-in.
        self._clear_cookies(request, buffer, token=True, session=False)

    async def _write_tokens(self, request: Request, buffer: CookieBuffer, tokens: TokenPair) -> None:
        # The same hook that stores refreshed tokens stores the first pair, so both cookies always match.
        await self._on_token_refresh(
            TokenRefreshContext(
                request=request,
                response=buffer,
                config=self._config,
                old_tokens=TokenPair(),
                new_tokens=tokens,
                context=QelosRequestContext(tokens=tokens.copy(), mode=AuthMode.TOKEN),
            )
        )
        self._clear_cookies(request, buffer, token=False, session=True)

    async def _revoke(self, request: Request) -> bool:
        ctx = served_context(request.scope, self._config)
        if ctx is not None and ctx.mode in (AuthMode.TOKEN, AuthMode.SESSION):
            # The middleware may have refreshed or rotated the caller's credential during this request.
            headers = ctx.upstream_headers()
        else:
            credentials = read_credentials(request.scope, self._config)
            if credentials.access_token is None and credentials.session_cookie is None:
                return False
            headers = upstream_headers(
                self._config.tenant, bearer=credentials.access_token, session_cookie=credentials.session_cookie
            )
        try:
            await self.client(request).logout(headers)
        except QelosUnauthorized:
            return False
        except QelosUnavailable as exc:
            logger.warning("sign-out could not reach Qelos (%s); the app's cookies are cleared anyway", exc)
            return False
        return True

    def _clear_cookies(self, request: Request, buffer: CookieBuffer, *, token: bool, session: bool) -> None:
        secure = request.url.scheme == "https"
        present = request.cookies
        if token:
            for name in (self._config.access_token_cookie, self._config.refresh_token_cookie):
                if name in present:
                    buffer.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        if session:
            for name in self._config.session_cookie_names:
                if name in present:
                    buffer.delete_cookie(
                        name,
                        path=self._config.session_cookie_path,
                        domain=self._config.session_cookie_domain,
                        secure=secure,
                        httponly=True,
                        samesite="lax",
                    )
