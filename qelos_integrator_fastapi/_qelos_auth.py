from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import httpx
from starlette.requests import Request

from ._problem import Problem
from .client import no_cookie_jar
from .config import QelosConfig
from .context import QelosRequestContext
from .cookies import CookieBuffer, parse_set_cookie, relay_to_app
from .credentials import AuthMode, TokenPair, auth_headers, read_credentials
from .refresh import OnTokenRefresh, TokenRefreshContext, write_token_cookies

logger = logging.getLogger("qelos_integrator_fastapi")


class QelosAuth:
    def __init__(self, config: QelosConfig, *, mode: str, on_token_refresh: Optional[OnTokenRefresh]) -> None:
        self._config = config
        self._mode = mode
        self._on_token_refresh = on_token_refresh if on_token_refresh is not None else write_token_cookies

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
        reply = await self._call("POST", "/api/signin", json=body)
        if reply.status_code == 401:
            raise Problem(401, "INVALID_CREDENTIALS", "invalid username or password")
        payload = _payload(reply, "POST /api/signin")
        return payload, await self._keep_credentials(request, reply, payload, "POST /api/signin")

    async def exchange(self, request: Request, rt: str) -> CookieBuffer:
        if self._mode == "session":
            what = "POST /api/auth/callback"
            reply = await self._call("POST", "/api/auth/callback", params={"rt": rt})
        else:
            what = "POST /api/token/refresh"
            # rt is a plain Qelos refresh token: one refresh turns it into the oauth pair of token mode.
            reply = await self._call("POST", "/api/token/refresh", headers={"authorization": f"Bearer {rt}"})
        if reply.status_code in (400, 401):
            raise Problem(401, "SOCIAL_LOGIN_REJECTED", "Qelos did not accept the social login; start again")
        return await self._keep_credentials(request, reply, _payload(reply, what), what)

    async def sign_out(self, request: Request) -> Tuple[bool, CookieBuffer]:
        revoked = await self._revoke(request)
        buffer = CookieBuffer()
        self._clear_cookies(request, buffer, token=True, session=True)
        return revoked, buffer

    async def _keep_credentials(
        self, request: Request, reply: httpx.Response, payload: Dict[str, Any], what: str
    ) -> CookieBuffer:
        buffer = CookieBuffer()
        if self._mode == "session":
            self._relay_session(request, reply, buffer, what)
        else:
            await self._write_tokens(request, buffer, payload.get("token"), payload.get("refreshToken"))
        return buffer

    def _relay_session(self, request: Request, reply: httpx.Response, buffer: CookieBuffer, what: str) -> None:
        relayed = False
        for header in reply.headers.get_list("set-cookie"):
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

    async def _write_tokens(self, request: Request, buffer: CookieBuffer, access: Any, refresh: Any) -> None:
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise Problem(503, "QELOS_UNAVAILABLE", "Qelos answered 200 without payload.token/refreshToken")
        tokens = TokenPair(access, refresh)
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
        credentials = read_credentials(request.scope, self._config)
        tokens = TokenPair(credentials.access_token, credentials.refresh_token)
        headers = auth_headers(tokens, credentials.session_cookie, None)
        if not headers:
            return False
        try:
            reply = await self._call("POST", "/api/logout", headers=headers)
        except Problem as problem:
            logger.warning("sign-out could not reach Qelos (%s); the app's cookies are cleared anyway", problem.message)
            return False
        return reply.status_code == 200

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

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Sign-ins are rare: a short-lived client keeps the router independent of the middleware's pool.
        async with httpx.AsyncClient(
            base_url=self._config.app_url,
            transport=self._config.transport,
            timeout=httpx.Timeout(self._config.timeout),
            headers={"tenant": self._config.tenant},
            cookies=no_cookie_jar(),
            follow_redirects=False,
            trust_env=False,
        ) as http:
            try:
                return await http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                raise Problem(
                    503, "QELOS_UNAVAILABLE", f"{method} {path} timed out after {self._config.timeout}s"
                ) from None
            except (httpx.TransportError, OSError) as exc:
                raise Problem(503, "QELOS_UNAVAILABLE", f"{method} {path} failed: {type(exc).__name__}") from None


def _payload(reply: httpx.Response, what: str) -> Dict[str, Any]:
    if reply.status_code != 200:
        raise Problem(503, "QELOS_UNAVAILABLE", f"{what} answered {reply.status_code}{_upstream_message(reply)}")
    try:
        body = reply.json()
    except ValueError:
        raise Problem(503, "QELOS_UNAVAILABLE", f"{what} answered 200 with a body that is not JSON") from None
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        raise Problem(503, "QELOS_UNAVAILABLE", f"{what} answered 200 without a payload object")
    return payload


def _upstream_message(reply: httpx.Response) -> str:
    try:
        message = reply.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f" ({message[:200]})" if isinstance(message, str) else ""
