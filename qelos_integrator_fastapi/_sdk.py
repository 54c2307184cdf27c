"""The request SDK: a real ``qelos_sdk.QelosSDK`` bound to one request, built in microseconds.

``QelosSDK(...)`` 4.0.x builds 16 ``httpx.AsyncClient`` objects (each with its own TLS context,
hundreds of milliseconds in all) and closes one of them. We build one prototype per process and
give every request a shallow clone whose modules all share one light client over the
middleware's connection pool. Should a qelos-sdk release change its shape so that the clone is not
fully rewired, we fall back to plain construction (correct, slower) and warn once.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Set, Tuple

import anyio
import httpx
from qelos_sdk import BaseSDK, QelosSDK, QelosSDKOptions

from ._client import no_cookie_jar
from ._config import QelosConfig
from ._credentials import TokenPair, upstream_headers

logger = logging.getLogger("qelos_integrator_fastapi")

# Endpoints that must not carry the caller's credentials (they carry their own, or none).
_NO_AUTH_PATHS = frozenset(
    {"/api/token/refresh", "/api/cookie/refresh", "/api/signin", "/api/signup", "/api/auth/callback"}
)


REFRESH_TOO_LATE = "REFRESH_AFTER_RESPONSE_STARTED"
_REFRESH_TOO_LATE_MESSAGE = (
    "Qelos rejected the access token after the response had started; the integrator does not refresh then, "
    "because the new tokens could not reach the browser and its single-use refresh token would be spent. "
    "Make the Qelos calls a response needs before it starts (before streaming)."
)


class RefreshTooLate(Exception):
    """Raised by refresh_after_401 when a refresh is due but the response has started."""


class RequestCaller(Protocol):
    """What the request SDK needs from its request (``QelosRequestContext`` provides it)."""

    @property
    def tokens(self) -> TokenPair: ...

    def upstream_headers(self) -> Dict[str, str]: ...

    async def refresh_after_401(self, sent_token: str) -> Optional[str]: ...

    def relay(self, set_cookies: List[str]) -> None: ...

    async def _signed_out(self) -> None: ...


class _RequestTransport(httpx.AsyncBaseTransport):
    """Sends over the middleware's pool; retries once after a refresh when Qelos answers 401."""

    def __init__(
        self,
        pool: Callable[[], httpx.AsyncBaseTransport],
        timeout: httpx.Timeout,
        deadline: float,
        caller: RequestCaller,
    ) -> None:
        self._pool = pool
        self._timeout = timeout.as_dict()
        self._deadline = deadline
        self._caller = caller

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # qelos-sdk passes timeout=None, which httpx reads as "wait forever".
        if all(value is None for value in request.extensions.get("timeout", {}).values()):
            request.extensions["timeout"] = self._timeout
        response = await self._send(request)
        sent = request.headers.get("authorization", "")
        if response.status_code == 401 and sent.startswith("Bearer ") and request.url.path not in _NO_AUTH_PATHS:
            try:
                new_token = await self._caller.refresh_after_401(sent[len("Bearer ") :])
            except RefreshTooLate:
                await response.aclose()
                body = {"code": REFRESH_TOO_LATE, "message": _REFRESH_TOO_LATE_MESSAGE}
                return httpx.Response(401, json=body, request=request)
            if new_token is not None:
                await response.aclose()
                request.headers["authorization"] = f"Bearer {new_token}"
                response = await self._send(request)
        cookies = httpx.Headers(response.headers).get_list("set-cookie")
        if cookies:
            self._caller.relay(cookies)
        if request.url.path == "/api/logout" and response.is_success:
            await self._caller._signed_out()
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        limit = self._deadline
        try:
            with anyio.fail_after(limit):
                return await self._pool().handle_async_request(request)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"Qelos did not answer within {limit}s", request=request) from exc

    async def aclose(self) -> None:
        """The pool belongs to the middleware; closing the request SDK must not close it."""


class RequestSdkFactory:
    def __init__(self, config: QelosConfig, pool: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._config = config
        self._pool = pool
        self._timeout = config.http_timeout
        self._fallback = False
        # The clone's wiring depends only on qelos-sdk's shape: checked on the first build, then trusted.
        self._verified = False

    def build(self, ctx: RequestCaller) -> QelosSDK:
        http = httpx.AsyncClient(
            transport=_RequestTransport(self._pool, self._timeout, self._config.deadline, ctx),
            cookies=no_cookie_jar(),
            timeout=self._config.http_timeout,
            trust_env=False,
        )
        api_token = self._config.api_token
        tenant = self._config.tenant
        custom: Dict[str, str] = {}

        # qelos-sdk has no tenant option: every SDK call asks here for its headers, so the tenant goes here.
        async def extra_headers(relative_url: str, force_refresh: bool = False) -> Dict[str, str]:
            if relative_url.split("?", 1)[0] in _NO_AUTH_PATHS:
                return {**upstream_headers(tenant), **custom}
            return {**ctx.upstream_headers(), **custom}

        options = QelosSDKOptions(
            app_url=self._config.upstream_url,
            api_token=api_token,
            get_access_token=lambda: ctx.tokens.access_token,
            extra_headers=extra_headers,
            force_refresh=False,
            **self._config.sdk_options,
        )
        sdk = None if self._fallback else self._clone(options, http, ctx)
        if sdk is None:
            sdk = QelosSDK(options)
            _rewire_clients(sdk, http)
        sdk._custom_headers = custom
        return sdk

    def _clone(self, options: QelosSDKOptions, http: httpx.AsyncClient, ctx: RequestCaller) -> Optional[QelosSDK]:
        prototype, entity_prototype = _prototypes()
        app_url = self._config.upstream_url
        memo: Dict[int, Any] = {}
        proto_options = prototype._ql_options

        def clone(obj: Any) -> Any:
            if id(obj) in memo:
                return memo[id(obj)]
            new = copy.copy(obj)
            memo[id(obj)] = new
            if isinstance(new, BaseSDK):
                new._app_url = app_url
            for name, value in vars(new).items():
                if isinstance(value, BaseSDK):
                    setattr(new, name, clone(value))
                elif value is proto_options:
                    setattr(new, name, options)
                elif isinstance(value, httpx.AsyncClient):
                    setattr(new, name, http)
                elif isinstance(value, (dict, list, set)):
                    setattr(new, name, type(value)())
            return new

        sdk: QelosSDK = clone(prototype)
        auth = sdk.authentication
        auth._access_token = ctx.tokens.access_token
        auth._refresh_token = ctx.tokens.refresh_token
        auth._api_token = self._config.api_token
        blueprints = sdk.blueprints

        def entities_of(blueprint_key: str) -> Any:
            cache = blueprints._entities
            if blueprint_key not in cache:
                memo.pop(id(entity_prototype), None)
                entities = clone(entity_prototype)
                entities._blueprint_key = blueprint_key
                cache[blueprint_key] = entities
            return cache[blueprint_key]

        # Entity managers are built per blueprint key on demand; ours are clones, not new clients.
        blueprints.entities_of = entities_of  # type: ignore[method-assign]
        if self._verified:
            return sdk
        sdk.entities("__check__")  # an entity manager built on demand must be rewired too
        rewired = _is_rewired(sdk, http, options, memo)
        blueprints._entities.clear()
        if rewired:
            self._verified = True
        else:
            self._fallback = True
            logger.warning(
                "qelos-sdk %s has a shape this integrator does not know; building the request SDK the slow "
                "way (about 0.5 s of CPU on first touch per request). Pin qelos-sdk<4.1 or upgrade this package.",
                _sdk_version(),
            )
            return None
        return sdk


_prototype_lock = threading.Lock()
_prototype: Optional[Tuple[QelosSDK, BaseSDK]] = None


def _prototypes() -> Tuple[QelosSDK, BaseSDK]:
    global _prototype
    with _prototype_lock:
        if _prototype is None:
            sdk = QelosSDK(QelosSDKOptions(app_url="http://qelos.prototype.invalid"))
            _prototype = (sdk, sdk.entities("__prototype__"))
        return _prototype


async def close_request_sdk(sdk: QelosSDK) -> None:
    """Close every client the request SDK holds (only the request's light client, unless we fell back)."""
    closed = set()
    for module in _modules(sdk):
        client = module._client
        if id(client) not in closed:
            closed.add(id(client))
            await client.aclose()


def _reachable(sdk: QelosSDK) -> Iterator[Any]:
    """Every object of the SDK's graph: modules, their helpers and entity managers (not clients)."""
    seen: Set[int] = set()
    stack: List[Any] = [sdk]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        yield obj
        for value in vars(obj).values():
            children = value.values() if isinstance(value, dict) else (value,)
            stack.extend(v for v in children if _is_part(v))


def _is_part(value: Any) -> bool:
    return (
        hasattr(value, "__dict__")
        and not callable(value)
        and not isinstance(value, (httpx.AsyncClient, QelosSDKOptions))
    )


def _modules(sdk: QelosSDK) -> List[BaseSDK]:
    return [obj for obj in _reachable(sdk) if isinstance(obj, BaseSDK)]


def _is_rewired(sdk: QelosSDK, http: httpx.AsyncClient, options: QelosSDKOptions, memo: Dict[int, Any]) -> bool:
    """True when nothing reachable from the clone still belongs to the prototype or its clients."""
    clones = {id(v) for v in memo.values()}
    for obj in _reachable(sdk):
        if isinstance(obj, BaseSDK) and (
            id(obj) not in clones
            or obj._client is not http
            or obj._ql_options is not options
            or obj._app_url != options.app_url
        ):
            return False
        if any(isinstance(v, httpx.AsyncClient) and v is not http for v in vars(obj).values()):
            return False
    return True


def _rewire_clients(sdk: QelosSDK, http: httpx.AsyncClient) -> None:
    for module in _modules(sdk):
        module._client = http


def _sdk_version() -> str:
    try:
        from importlib.metadata import version

        return version("qelos-sdk")
    except Exception:
        return "(unknown version)"
