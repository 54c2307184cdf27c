from __future__ import annotations

import logging
from typing import Any, Dict, Optional

from starlette.authentication import AuthCredentials, AuthenticationError, UnauthenticatedUser
from starlette.datastructures import MutableHeaders
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._backend import QelosAuthBackend
from ._config import QelosConfig, QelosConfigError
from ._context import QelosRequestContext, ResolveWorkspace
from ._credentials import read_credentials
from ._errors import refusal
from ._events import OnEvent
from ._origin import SAFE_METHODS, cross_origin
from ._redis_store import on_asyncio, trio_refusal
from ._refresh import OnTokenRefresh
from ._sdk import build_prototype

logger = logging.getLogger("qelos_integrator_fastapi")


class QelosIntegratorMiddleware:
    """Pure ASGI middleware: Starlette's AuthenticationMiddleware driven by a QelosAuthBackend.

    ``app.add_middleware(QelosIntegratorMiddleware, config=QelosConfig(app_url=...))``, or flat
    keywords: ``app.add_middleware(QelosIntegratorMiddleware, app_url=...)``.
    """

    def __init__(
        self,
        app: ASGIApp,
        # Positional-only, so type checkers accept the flat **options in app.add_middleware(...).
        /,
        config: Optional[QelosConfig] = None,
        *,
        resolve_workspace: Optional[ResolveWorkspace] = None,
        on_token_refresh: Optional[OnTokenRefresh] = None,
        on_event: Optional[OnEvent] = None,
        **options: Any,
    ) -> None:
        if config is None:
            # Without app_url, QelosConfig's own check names what is missing (not a TypeError).
            config = QelosConfig(**{"app_url": None, **options})
        elif options:
            raise TypeError(f"pass either config= or flat options such as app_url=, not both (got {sorted(options)})")
        elif not isinstance(config, QelosConfig):
            raise TypeError(f"config must be a QelosConfig, got {type(config).__name__}")
        self.app = app
        self.config = config
        self.backend = QelosAuthBackend(
            config, resolve_workspace=resolve_workspace, on_token_refresh=on_token_refresh, on_event=on_event
        )
        self._gate = _Gate(app, config)
        self._authenticate = AuthenticationMiddleware(self._gate, backend=self.backend, on_error=_on_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._starting(receive, send), self._closing_on_shutdown(send))
            return
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.config.is_skipped(scope["path"]):
            scope.setdefault("state", {})["qelos"] = None
            scope["auth"] = AuthCredentials()
            scope["user"] = UnauthenticatedUser()
            await self.app(scope, receive, send)
            return

        # No credential can be read from a request without these headers: it is anonymous, without asking anyone.
        anonymous = not self.config.api_token and not any(
            name == b"authorization" or name == b"cookie" for name, _ in scope["headers"]
        )
        if self.config.csrf_check and not anonymous:
            problem = self._cross_origin(scope)
            if problem is not None:
                method = scope.get("method", "WebSocket")
                logger.info("refused a cookie-authenticated %s %s: %s", method, scope["path"], problem)
                message = (
                    f"{problem}; a cookie-authenticated request that changes state must come from this app's "
                    "own origin or one listed in trusted_origins"
                )
                await refuse(scope, receive, send, 403, {"code": "CSRF_ORIGIN_MISMATCH", "message": message})
                return

        ctx = self.backend.start(scope)
        cookies = ctx._cookies

        async def send_with_cookies(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                cookies._started = True
                if cookies._cookies:
                    cookies.flush_into(MutableHeaders(scope=message))
            elif kind == "websocket.accept":
                message["headers"] = cookies.flush_into_list(list(message.get("headers", [])))
            await send(message)

        try:
            if scope["type"] == "http" and self.config.is_proxied(scope["path"]):
                # Qelos authenticates the proxied call itself: asking it who is calling first would double the work.
                ctx._read(HTTPConnection(scope))
                scope["auth"] = AuthCredentials()
                scope["user"] = UnauthenticatedUser()
                await self.app(scope, receive, send_with_cookies)
            elif anonymous:
                scope["auth"] = AuthCredentials()
                scope["user"] = UnauthenticatedUser()
                await self._gate(scope, receive, send_with_cookies)
            else:
                await self._authenticate(scope, receive, send_with_cookies)
        finally:
            ctx._finish()

    def _cross_origin(self, scope: Scope) -> Optional[str]:
        """Why a state-changing request authenticated by a cookie is refused as cross-site; None to go on."""
        if scope["type"] == "http" and scope["method"] in SAFE_METHODS:
            return None
        if not read_credentials(scope, self.config).from_cookie:
            return None
        return cross_origin(scope, self.config.trusted_origins)

    def _closing_on_shutdown(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.backend.aclose()
            await send(message)

        return lifespan_send

    def _starting(self, receive: Receive, send: Send) -> Receive:
        """At startup: refuse redis_url on trio (redis-py is asyncio only), then build the SDK prototype."""

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.config.redis_url is not None and not on_asyncio():
                    await send({"type": "lifespan.startup.failed", "message": trio_refusal()})
                    raise QelosConfigError(trio_refusal())
                # The request SDK's prototype, built before the first request, then frozen out of the collector.
                build_prototype()
            return message

        return lifespan_receive

    async def aclose(self) -> None:
        """Close the pooled Qelos client and the Redis client (done for you on lifespan shutdown)."""
        await self.backend.aclose()


class _Gate:
    """Between authentication and the app: enforces ``require_auth`` (401, or 503 when Qelos is down)."""

    def __init__(self, app: ASGIApp, config: QelosConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.config.require_auth and not scope["user"].is_authenticated:
            # Only QelosIntegratorMiddleware builds a _Gate, after backend.start stored the context.
            ctx: QelosRequestContext = scope["state"]["qelos"]
            await deny(scope, receive, send, ctx.error)
            return
        await self.app(scope, receive, send)


async def deny(scope: Scope, receive: Receive, send: Send, error: Optional[str] = None) -> None:
    """Refuse as errors.refusal decides."""
    status, body, headers = refusal(error)
    await refuse(scope, receive, send, status, body, headers)


async def refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    body: Dict[str, str],
    headers: Optional[Dict[str, str]] = None,
) -> None:
    """A JSON error response; on a WebSocket, a denial response or close 1008 with the code as reason."""
    if scope["type"] == "websocket" and "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008, "reason": body["code"]})
        return
    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)


def _on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    logger.info("authentication error: %s", exc)
    status, body, headers = refusal(None)
    return JSONResponse(body, status_code=status, headers=headers)
