"""The one pooled HTTP client the middleware uses to ask Qelos who is calling."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from dataclasses import dataclass, field
from http.cookiejar import Cookie, CookieJar
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union

import anyio
import httpx

from . import _log_redaction
from ._config import QelosConfig
from ._credentials import TokenPair, is_token_text, upstream_headers
from ._errors import QelosError, QelosUnauthorized, QelosUnavailable
from ._pool import QelosPool

logger = logging.getLogger("qelos_integrator_fastapi")
_log_redaction.install()

# Statuses meaning "Qelos refused this credential": the caller is anonymous, never a 503.
_REJECTED = (401, 403)
# A body nested deeper than the parser's recursion limit raises RecursionError, not ValueError.
_NOT_JSON = (ValueError, RecursionError)


@dataclass
class Reply:
    body: Any
    set_cookies: List[str] = field(default_factory=list)


Workspace = Dict[str, Any]


@dataclass
class Identity:
    """Who a credential belongs to: the ``/api/me`` user and the ``/api/workspaces`` list."""

    user: Dict[str, Any]
    workspaces: List[Workspace]
    # Session-cookie changes Qelos made while answering (a silent rotation), to relay to the browser.
    set_cookies: List[str] = field(default_factory=list)


class QelosClient:
    """Owns the shared ``httpx.AsyncClient``: opened lazily per event loop, closed by ``aclose``."""

    def __init__(self, config: QelosConfig) -> None:
        self._config = config
        if config.api_token:
            _log_redaction.add_secret(config.api_token)
        self._http: Optional[httpx.AsyncClient] = None
        self._transport: Optional[httpx.AsyncBaseTransport] = None
        self._loop: object = None
        self.clients_opened = 0

    @property
    def http(self) -> httpx.AsyncClient:
        loop = _current_loop()
        if self._http is None or self._http.is_closed or self._loop is not loop:
            # An httpx pool must not be shared across event loops (encode/httpx#2473).
            self._transport = self._config.transport or QelosPool(self._config.pool_limits)
            self._http = httpx.AsyncClient(
                base_url=self._config.upstream_url,
                timeout=self._config.http_timeout,
                transport=self._transport,
                cookies=no_cookie_jar(),
                follow_redirects=False,
                trust_env=False,
            )
            self._loop = loop
            self.clients_opened += 1
        return self._http

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The pooled transport under ``http``, shared by every request SDK."""
        self.http  # noqa: B018 (opens the pool for this event loop)
        assert self._transport is not None
        return self._transport

    async def aclose(self) -> None:
        if self._http is not None and not self._http.is_closed:
            await self._http.aclose()
        self._http = None
        self._transport = None

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        """``/api/me`` and ``/api/workspaces`` side by side; a failed workspace list leaves it empty."""
        replies: Dict[str, Union[Reply, QelosError]] = {}

        async def call(name: str, fetch: Callable[[Mapping[str, str]], Awaitable[Reply]]) -> None:
            try:
                replies[name] = await fetch(headers)
            except QelosError as exc:
                replies[name] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "me", self.me)
            tg.start_soon(call, "workspaces", self.workspaces)
        me, workspaces = replies["me"], replies["workspaces"]
        set_cookies = [c for reply in (me, workspaces) for c in reply.set_cookies]
        if isinstance(me, QelosError):
            # A rotation Qelos made in either answer is real even though the user did not resolve.
            me.set_cookies = set_cookies
            raise me
        if isinstance(workspaces, QelosError):
            logger.warning("the Qelos user resolved but the workspace list did not (%s); workspaces is []", workspaces)
            return Identity(me.body, [], set_cookies)
        return Identity(me.body, workspaces.body, set_cookies)

    async def me(self, headers: Mapping[str, str]) -> Reply:
        reply = await self._call("GET", "/api/me", headers)
        if not isinstance(reply.body, dict) or not isinstance(reply.body.get("_id"), str):
            raise _with(QelosUnavailable("GET /api/me answered 200 without a user object"), reply.set_cookies)
        return reply

    async def workspaces(self, headers: Mapping[str, str]) -> Reply:
        reply = await self._call("GET", "/api/workspaces", headers)
        body = reply.body
        if not isinstance(body, list) or not all(isinstance(w, dict) and isinstance(w.get("_id"), str) for w in body):
            raise _with(
                QelosUnavailable("GET /api/workspaces answered 200 without a list of workspaces"), reply.set_cookies
            )
        return reply

    async def refresh(self, refresh_token: str, *, rejected: Tuple[int, ...] = _REJECTED) -> TokenPair:
        # Refresh tokens are single-use: giving up on an answer Qelos still commits would strand the
        # browser with a spent token, so this call may take refresh_timeout rather than timeout.
        reply = await self._call(
            "POST",
            "/api/token/refresh",
            upstream_headers(self._config.tenant, bearer=refresh_token),
            timeout=self._config.refresh_timeout,
            rejected=rejected,
        )
        body = reply.body.get("payload") if isinstance(reply.body, dict) else None
        return token_pair(body, "POST /api/token/refresh")

    async def sign_in(self, body: Mapping[str, Any]) -> Reply:
        """``POST /api/signin``; QelosUnauthorized for wrong credentials. ``body`` holds the payload object."""
        reply = await self._call("POST", "/api/signin", upstream_headers(self._config.tenant), payload=dict(body))
        return Reply(_payload(reply, "POST /api/signin"), reply.set_cookies)

    async def auth_callback(self, rt: str) -> Reply:
        """Trade a social login's ``rt`` for a session cookie; QelosUnauthorized when Qelos refuses it."""
        what = "POST /api/auth/callback"
        headers = upstream_headers(self._config.tenant)
        reply = await self._call("POST", "/api/auth/callback", headers, params={"rt": rt}, rejected=(400, 401, 403))
        return Reply(_payload(reply, what), reply.set_cookies)

    async def logout(self, headers: Mapping[str, str]) -> None:
        """Revoke the caller's Qelos session (``POST /api/logout``)."""
        await self._call("POST", "/api/logout", headers, body=False)

    def _why(self, exc: BaseException) -> str:
        # Where the call went (the app_url's host and port, never a path or query) and, when known, why it
        # failed: an unresolvable name and a refused port must not read the same.
        url = self.http.base_url
        where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
        cause = _cause(exc)
        return f" ({where}: {cause})" if cause else f" ({where})"

    async def _call(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        *,
        timeout: Optional[float] = None,
        payload: Optional[Dict[str, Any]] = None,
        params: Optional[Dict[str, str]] = None,
        rejected: Tuple[int, ...] = _REJECTED,
        body: bool = True,
    ) -> Reply:
        limit = self._config.deadline if timeout is None else timeout
        cap = self._config.max_upstream_body
        try:
            # httpx's own timeouts do not bind every transport (in-process ones), so bound it here too;
            # the bound covers reading the body, which is streamed so that no more than `cap` is held.
            with anyio.fail_after(limit):
                request = self.http.build_request(
                    method, path, headers=dict(headers), json=payload, params=params, **_longer(timeout)
                )
                # The transport itself, not http.send: httpx's send ties each response to a stream that points
                # back at it, a reference cycle per call that only the cyclic collector frees.
                response = await self.transport.handle_async_request(request)
                try:
                    # Read even when unused (a 401, a logout): a fully read answer frees its connection for reuse.
                    content = await _read_capped(response, cap)
                finally:
                    await response.aclose()
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise QelosUnavailable(f"{method} {path} timed out after {limit}s") from exc
        except (httpx.HTTPError, OSError) as exc:
            raise QelosUnavailable(f"{method} {path} failed: {type(exc).__name__}{self._why(exc)}") from exc
        set_cookies = response.headers.get_list("set-cookie")
        if response.status_code in rejected:
            raise _with(QelosUnauthorized(f"{method} {path} answered {response.status_code}"), set_cookies)
        if response.status_code != 200:
            what = f"{method} {path} answered {response.status_code}{_hint(content)}"
            raise _with(QelosUnavailable(what), set_cookies)
        if not body:
            return Reply(None, set_cookies)
        if content is None:
            what = f"{method} {path} answered 200 with a body over {cap} bytes (QelosConfig.max_upstream_body)"
            raise _with(QelosUnavailable(what), set_cookies)
        try:
            return Reply(json.loads(content), set_cookies)
        except _NOT_JSON as exc:
            what = f"{method} {path} answered 200 with a body that is not JSON"
            raise _with(QelosUnavailable(what), set_cookies) from exc


async def _read_capped(response: httpx.Response, cap: int) -> Optional[bytes]:
    """The (decoded) body of a streamed response, or None once it exceeds ``cap`` bytes; the rest is never read."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > cap):
        return None
    chunks: List[bytes] = []
    total = 0
    # Past the cap, cancel rather than break: the cancellation lands on the stream's innermost read and
    # unwinds the async generators under aiter_bytes, which an early break would leave unclosed.
    with anyio.CancelScope() as scope:
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > cap:
                scope.cancel()
            else:
                chunks.append(chunk)
    return None if total > cap else b"".join(chunks)


def _with(error: QelosError, set_cookies: List[str]) -> QelosError:
    error.set_cookies = set_cookies
    return error


def _cause(exc: BaseException) -> Optional[str]:
    """What went wrong below httpx, in words an operator acts on; None when nothing specific is known."""
    seen: Optional[BaseException] = exc
    for _ in range(8):  # the chain of causes, bounded
        if seen is None:
            return None
        if isinstance(seen, socket.gaierror):
            return "the name does not resolve"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ConnectionResetError):
            return "connection reset"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed ({seen.reason})"
        if isinstance(seen, BaseExceptionGroup) and seen.exceptions:
            # trio reports every address it tried; the first says enough.
            seen = seen.exceptions[0]
            continue
        seen = seen.__cause__ or seen.__context__
    return None


def _longer(timeout: Optional[float]) -> Dict[str, Any]:
    # Only the refresh call overrides the client's timeout (with the longer refresh_timeout).
    return {} if timeout is None else {"timeout": timeout}


def _payload(reply: Reply, what: str) -> Dict[str, Any]:
    payload = reply.body.get("payload") if isinstance(reply.body, dict) else None
    if not isinstance(payload, dict):
        raise QelosUnavailable(f"{what} answered 200 without a payload object")
    return payload


def token_pair(payload: Any, what: str) -> TokenPair:
    """The oauth pair in a Qelos ``payload`` (refresh, oauth sign-in); QelosUnavailable if incomplete."""
    token = payload.get("token") if isinstance(payload, dict) else None
    new_refresh = payload.get("refreshToken") if isinstance(payload, dict) else None
    # A token that could not travel back as a cookie or a Bearer header is no token.
    if not all(isinstance(value, str) and is_token_text(value) for value in (token, new_refresh)):
        raise QelosUnavailable(f"{what} answered 200 without payload.token/refreshToken")
    return TokenPair(token, new_refresh)


def _hint(content: Optional[bytes]) -> str:
    if not content:
        return ""
    try:
        message = json.loads(content).get("message")
    except (*_NOT_JSON, AttributeError):
        return ""
    if isinstance(message, str) and message.startswith("no website for host"):
        return " (no website for host: app_url must be the tenant's own domain, not an IP address)"
    return f" ({message[:200]})" if isinstance(message, str) else ""


class _NoCookieJar(CookieJar):
    """Stores nothing: a client shared by callers must never carry one caller's cookie to another."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def no_cookie_jar() -> CookieJar:
    # A bare CookieJar, never wrapped in httpx.Cookies: httpx copies a wrapped jar into a default one.
    return _NoCookieJar()


def _current_loop() -> object:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.lowlevel.current_trio_token()
