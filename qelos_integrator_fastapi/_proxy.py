"""The ``/api/**`` backend-for-frontend proxy: a browser talks to Qelos through the app's own origin.

Only the caller's one Qelos credential and the configured tenant travel upstream; bodies stream
both ways over the middleware's pool; Qelos's session cookie comes back through the same relay as
the middleware's. Plain Starlette routes; the FastAPI router wrapper lives in ``_fastapi_router.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import AsyncIterator, Dict, List, Optional, Tuple
from urllib.parse import quote, unquote

import anyio
import anyio.lowlevel
import httpx
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from ._client import QelosClient
from ._config import QelosConfig, QelosConfigError
from ._context import QelosRequestContext, served_context
from ._cookies import CookieBuffer, relay_session_cookies
from ._credentials import AuthMode, read_credentials, unverified_claims, upstream_headers

logger = logging.getLogger("qelos_integrator_fastapi")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# RFC 9110 §7.6.1: meaningful for one connection only; a proxy drops them, and those Connection names.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade"}
)
# Never taken from the client: the credential and tenant are ours to compute, Host and X-Forwarded-* ours to
# set, and Expect was answered by the app's server already.
_COMPUTED = frozenset(
    {"host", "cookie", "authorization", "tenant", "x-api-key", "forwarded", "expect"}
    | {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"}
)
_QELOS_API = "/api"
# A token this close to its exp is refreshed first: it could expire on its way, or by a clock a little ahead.
_EXPIRY_MARGIN = 10.0
_CONNECTION_FAILED = (
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    OSError,
)


class QelosProxy:
    """The endpoint behind ``{proxy_prefix}/{path}``: one per router, sharing the middleware's pool."""

    def __init__(self, config: QelosConfig, *, forward_client_tenant: bool, forward_client_api_key: bool) -> None:
        if not isinstance(config, QelosConfig):
            raise QelosConfigError(f"config must be a QelosConfig, got {type(config).__name__}")
        self.config = config
        # The proxy speaks for the browser, never with the app's own api_token.
        self._browser_config = dataclasses.replace(config, api_token=None) if config.api_token else config
        self.forward_client_tenant = forward_client_tenant
        self.forward_client_api_key = forward_client_api_key
        self._target = httpx.URL(config.upstream_url)
        self._own_client: Optional[QelosClient] = None

    def client(self, ctx: Optional[QelosRequestContext]) -> QelosClient:
        """The middleware's pooled client when it serves this config, else this router's own (made once)."""
        if ctx is not None:
            assert ctx._services is not None
            return ctx._services.client
        if self._own_client is None:
            self._own_client = QelosClient(self.config)
        return self._own_client

    async def aclose(self) -> None:
        if self._own_client is not None:
            await self._own_client.aclose()

    async def handle(self, request: Request) -> Response:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return _websocket_refusal()
        path = upstream_path(_raw_path(request.scope), self.config.proxy_prefix)
        if path is None:
            return _problem(400, "QELOS_PROXY_BAD_PATH", "the path leaves the proxied prefix once decoded")
        ctx = served_context(request.scope, self.config)
        call = _Call(self, request, ctx, path)
        return await call.run()


class _Call:
    """One proxied request: its credential, its streamed body and the upstream answer."""

    def __init__(self, proxy: QelosProxy, request: Request, ctx: Optional[QelosRequestContext], path: str) -> None:
        self.proxy = proxy
        self.config = proxy.config
        self.request = request
        self.ctx = ctx
        query = request.scope.get("query_string", b"")
        raw = proxy._target.raw_path.rstrip(b"/").split(b"?", 1)[0] + path.encode("ascii")
        self.url = proxy._target.copy_with(raw_path=raw + (b"?" + query if query else b""))
        self.has_body = _has_body(request)
        self.body_started = False
        self.session_cookie: Optional[Tuple[str, str]] = None

    async def run(self) -> Response:
        if self.ctx is not None and self.ctx.mode is AuthMode.TOKEN and _stale(self.ctx.tokens.access_token):
            await self.ctx.refresh_after_401(self.ctx.tokens.access_token or "")
        client = self.proxy.client(self.ctx)
        sent = self._credential_headers()
        try:
            upstream = await self._send(client, sent)
            if upstream is not None and upstream.status_code == 401 and await self._retry_after_401(sent):
                await upstream.aclose()
                upstream = await self._send(client, self._credential_headers())
        except httpx.TimeoutException as exc:
            return _timed_out(self.config, exc)
        except _CONNECTION_FAILED as exc:
            logger.warning("the Qelos proxy could not reach Qelos: %s", type(exc).__name__)
            return _problem(
                502, "QELOS_PROXY_UPSTREAM_ERROR", f"Qelos could not be reached ({type(exc).__name__}); retry shortly"
            )
        except ClientDisconnect:
            return Response(status_code=400)
        if upstream is None:
            return _timed_out(self.config, None)
        return self._relay(upstream)

    def _credential_headers(self) -> Dict[str, str]:
        ctx = self.ctx
        if ctx is not None and ctx.mode in (AuthMode.TOKEN, AuthMode.SESSION):
            headers = ctx.upstream_headers()
        else:
            credentials = read_credentials(self.request.scope, self.proxy._browser_config)
            self.session_cookie = credentials.session_cookie
            headers = upstream_headers(
                self.config.tenant, bearer=credentials.access_token, session_cookie=credentials.session_cookie
            )
        client = self.request.headers
        if self.proxy.forward_client_api_key and client.get("x-api-key"):
            headers = {"tenant": headers["tenant"], "x-api-key": client["x-api-key"]}
        if self.proxy.forward_client_tenant and client.get("tenant"):
            headers["tenant"] = client["tenant"]
        return headers

    def _headers(self, credential: Dict[str, str]) -> List[Tuple[str, str]]:
        incoming = self.request.headers
        dropped = _connection_named(incoming.getlist("connection"))
        headers = [
            (name, value)
            for name, value in incoming.items()
            if name not in HOP_BY_HOP and name not in _COMPUTED and name not in dropped
        ]
        if "accept-encoding" not in incoming:
            # httpx would ask for gzip, and the raw bytes would reach a client that never asked for it.
            headers.append(("accept-encoding", "identity"))
        headers.extend(credential.items())
        headers.append(("host", self.url.netloc.decode("ascii")))
        client = self.request.scope.get("client")
        if client:
            headers.append(("x-forwarded-for", str(client[0])))
        headers.append(("x-forwarded-proto", self.request.url.scheme))
        if "host" in incoming:
            headers.append(("x-forwarded-host", incoming["host"]))
        return headers

    async def _send(self, client: QelosClient, credential: Dict[str, str]) -> Optional[httpx.Response]:
        """The upstream response, streaming; None when no response headers came within the timeout."""
        waiting = anyio.CancelScope()
        deadline = self.config.deadline
        body = self._body(waiting, deadline) if self.has_body else None
        if body is None:
            waiting.deadline = anyio.current_time() + deadline
        request = client.http.build_request(
            self.request.method, self.url, headers=self._headers(credential), content=body
        )
        with waiting:
            # The transport itself, as QelosClient does: httpx's send makes a reference cycle per response.
            return await client.transport.handle_async_request(request)
        return None

    async def _body(self, waiting: anyio.CancelScope, deadline: float) -> AsyncIterator[bytes]:
        # The timeout covers waiting for Qelos's answer, not a long upload: it starts once the body is sent.
        self.body_started = True
        async for chunk in self.request.stream():
            if chunk:
                yield chunk
        waiting.deadline = anyio.current_time() + deadline

    async def _retry_after_401(self, sent: Dict[str, str]) -> bool:
        """Refresh the caller's tokens after Qelos refused them, when the request can be sent again."""
        ctx = self.ctx
        if ctx is None or ctx.mode is not AuthMode.TOKEN or self.body_started:
            return False
        token = sent.get("authorization", "").removeprefix("Bearer ")
        return await ctx.refresh_after_401(token) not in (None, token)

    def _relay(self, upstream: httpx.Response) -> Response:
        set_cookies = upstream.headers.get_list("set-cookie")
        dropped = _connection_named(upstream.headers.get_list("connection"))
        # ASGI wants lower-case header names; httpx keeps Qelos's spelling.
        raw = [
            (name.lower(), value)
            for name, value in upstream.headers.raw
            if (lower := name.decode("latin-1").lower()) not in HOP_BY_HOP
            and lower != "set-cookie"
            and lower not in dropped
        ]
        response = _Streamed(upstream, raw)
        if self.ctx is not None:
            self.ctx.relay(set_cookies)
        else:
            buffer = CookieBuffer()
            relay_session_cookies(
                buffer, self.config, set_cookies, self.session_cookie, secure=self.request.url.scheme == "https"
            )
            buffer.flush_into(response.headers)
        return response


class _Streamed(Response):
    """Qelos's answer, passed on chunk by chunk; the upstream connection is released however it ends."""

    def __init__(self, upstream: httpx.Response, raw_headers: List[Tuple[bytes, bytes]]) -> None:
        self.status_code = upstream.status_code
        self.raw_headers = raw_headers
        self.background = None
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        failure: Optional[BaseException] = None
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    nonlocal failure
                    try:
                        await send(
                            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
                        )
                        async for chunk in _raw_chunks(self._upstream):
                            await send({"type": "http.response.body", "body": chunk, "more_body": True})
                        await send({"type": "http.response.body", "body": b"", "more_body": False})
                    except OSError:
                        pass  # the client went away (ASGI 2.4 servers raise from send)
                    except Exception as exc:
                        failure = exc
                    tg.cancel_scope.cancel()

                tg.start_soon(stream)
                while (message := await receive())["type"] != "http.disconnect":
                    if not message.get("more_body", False):
                        # A server that answers again at once must not starve the streaming task.
                        await anyio.lowlevel.checkpoint()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._upstream.aclose()
        if failure is not None:
            logger.warning("Qelos's answer broke off mid-stream: %s", type(failure).__name__)
            raise failure


async def _raw_chunks(upstream: httpx.Response) -> AsyncIterator[bytes]:
    if upstream.is_stream_consumed:
        # An answer built around bytes already read (httpx.MockTransport and the like in tests).
        yield upstream.content
        return
    async for chunk in upstream.aiter_raw():
        yield chunk


def upstream_path(raw_path: str, prefix: str) -> Optional[str]:
    """Qelos's ``/api/...`` path for an app path under ``prefix``; None when it would leave the prefix.

    Decoded (repeatedly), with a backslash read as a slash and dot segments removed, the path must
    still be under the prefix: what Qelos, or a server in front of it, might make of it stays there.
    """
    if raw_path != prefix and not raw_path.startswith(prefix + "/"):
        return None
    rest = raw_path[len(prefix) :]
    decoded = rest
    for _ in range(4):
        try:
            step = unquote(decoded, errors="strict")
        except UnicodeDecodeError:
            return None
        if step == decoded:
            break
        decoded = step
    else:
        return None
    if any(ord(c) < 0x20 or c == "\x7f" for c in decoded):
        return None
    resolved = _remove_dot_segments(_QELOS_API + decoded.replace("\\", "/"))
    if resolved != _QELOS_API and not resolved.startswith(_QELOS_API + "/"):
        return None
    return _QELOS_API + rest


def _remove_dot_segments(path: str) -> str:
    kept: List[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    return "/" + "/".join(kept)


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else quote(scope["path"], safe="/:@!$&'()*+,;=-._~")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _has_body(request: Request) -> bool:
    headers = request.headers
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def _stale(token: Optional[str]) -> bool:
    """No access token, or one whose ``exp`` is (nearly) past; read unverified, only to refresh before sending."""
    if not token:
        return True
    exp = unverified_claims(token).get("exp")
    return isinstance(exp, (int, float)) and not isinstance(exp, bool) and exp <= time.time() + _EXPIRY_MARGIN


def _connection_named(values: List[str]) -> frozenset[str]:
    return frozenset(name.strip().lower() for value in values for name in value.split(",") if name.strip())


def _timed_out(config: QelosConfig, exc: Optional[Exception]) -> Response:
    what = type(exc).__name__ if exc is not None else "no response headers"
    logger.warning("the Qelos proxy gave up waiting for Qelos after %ss (%s)", config.deadline, what)
    return _problem(504, "QELOS_PROXY_TIMEOUT", f"Qelos did not answer within {config.deadline}s")


def _problem(status: int, code: str, message: str) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status)


def _websocket_refusal() -> Response:
    return _problem(501, "QELOS_PROXY_WEBSOCKET_UNSUPPORTED", "WebSocket upgrades are not proxied to Qelos")


async def _refuse_websocket(websocket: WebSocket) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(_websocket_refusal())
    else:
        await websocket.close(code=1003, reason="QELOS_PROXY_WEBSOCKET_UNSUPPORTED")


def create_qelos_proxy_routes(
    config: QelosConfig, *, forward_client_tenant: bool = False, forward_client_api_key: bool = False
) -> List[BaseRoute]:
    """Routes proxying ``{config.proxy_prefix}/{path}`` to Qelos's ``/api/{path}``; see docs/proxy.md.

    Add them after the app's own routes under the prefix, so those stay authoritative.
    """
    proxy = QelosProxy(
        config, forward_client_tenant=forward_client_tenant, forward_client_api_key=forward_client_api_key
    )
    path = config.proxy_prefix + "/{path:path}"
    return [
        Route(path, proxy.handle, methods=METHODS, name="qelos_proxy"),
        WebSocketRoute(path, _refuse_websocket, name="qelos_proxy_websocket"),
    ]
