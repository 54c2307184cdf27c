"""The request SDK: a real ``qelos_sdk.QelosSDK`` bound to one request, built in microseconds.

``QelosSDK(...)`` 4.0.x builds 16 ``httpx.AsyncClient`` objects (each with its own TLS context,
hundreds of milliseconds in all) and closes one of them. We build one prototype per process and
give every request a shallow clone whose modules all share one light client over the
middleware's connection pool. Should a qelos-sdk release change its shape so that the clone is not
fully rewired, we fall back to plain construction (correct, slower) and warn once.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol, Set, Tuple, cast

import anyio
import httpx
from qelos_sdk import BaseSDK, QelosSDK, QelosSDKOptions, QlAuthentication, QlBlueprintEntities, QlBlueprints

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


# The request's caller rides on each upstream request, so one client and transport serve every request SDK.
_CALLER = "qelos_integrator.caller"


class _RequestTransport(httpx.AsyncBaseTransport):
    """Sends over the middleware's pool; retries once after a refresh when Qelos answers 401."""

    def __init__(self, pool: Callable[[], httpx.AsyncBaseTransport], timeout: httpx.Timeout, deadline: float) -> None:
        self._pool = pool
        self._timeout = timeout.as_dict()
        self._deadline = deadline

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        caller: RequestCaller = request.extensions[_CALLER]
        # qelos-sdk passes timeout=None, which httpx reads as "wait forever".
        if all(value is None for value in request.extensions.get("timeout", {}).values()):
            request.extensions["timeout"] = self._timeout
        response = await self._send(request)
        sent = request.headers.get("authorization", "")
        if response.status_code == 401 and sent.startswith("Bearer ") and request.url.path not in _NO_AUTH_PATHS:
            try:
                new_token = await caller.refresh_after_401(sent[len("Bearer ") :])
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
            caller.relay(cookies)
        if request.url.path == "/api/logout" and response.is_success:
            await caller._signed_out()
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
        # The deadline covers the body too: qelos-sdk reads it after this returns, where nothing bounds
        # the whole read (httpx's read timeout restarts with every byte of a dribbling answer).
        limit = self._deadline
        try:
            with anyio.fail_after(limit):
                response = await self._pool().handle_async_request(request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"Qelos did not answer within {limit}s", request=request) from exc
        return response

    async def aclose(self) -> None:
        """The pool belongs to the middleware; closing the request SDK must not close it."""


class _RequestClient:
    """The client every module of one request SDK holds: the shared client, told which request calls.

    Closed when its request ends (``close``), so a request SDK kept past its request fails as a closed
    ``httpx.AsyncClient`` does instead of acting for a request that is over.
    """

    __slots__ = ("_caller", "_http")

    def __init__(self, http: httpx.AsyncClient, caller: RequestCaller) -> None:
        self._http = http
        self._caller: Optional[RequestCaller] = caller

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self._caller is None:
            raise RuntimeError("Cannot send a request, as the client has been closed (its request has ended).")
        return await self._http.request(method, url, extensions={_CALLER: self._caller}, **kwargs)

    @property
    def is_closed(self) -> bool:
        return self._caller is None

    def close(self) -> None:
        self._caller = None

    async def aclose(self) -> None:
        """Closes this request's client only: the shared client and the pool belong to the middleware."""
        self.close()


class _RequestSdk(QelosSDK):
    """A ``QelosSDK`` whose modules are cloned from the prototype on first use, all on one light client."""

    # Not QelosSDK.__init__: it builds a dozen httpx clients; a module costs a shallow copy when first read.
    def __init__(self, options: QelosSDKOptions, client: _RequestClient) -> None:
        self._ql_options = options
        self._app_url = options.app_url.rstrip("/")
        self._client = client  # type: ignore[assignment]
        self._custom_headers = {}

    def _caller_tokens(self) -> TokenPair:
        caller = self.__dict__["_client"]._caller
        return caller.tokens if caller is not None else TokenPair()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not set yet: the modules.
        module = vars(_prototypes()[0]).get(name)
        if not isinstance(module, BaseSDK):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        clone = _clone(module, self._ql_options, self._client, {})
        if isinstance(clone, QlAuthentication):
            tokens = self._caller_tokens()
            clone._access_token = tokens.access_token
            clone._refresh_token = tokens.refresh_token
            clone._api_token = self._ql_options.api_token
        setattr(self, name, clone)
        return clone


class _RequestBlueprints(QlBlueprints):
    def entities_of(self, blueprint_key: str) -> QlBlueprintEntities:
        # Entity managers are cloned per blueprint key on demand, never new httpx clients.
        entities: Optional[QlBlueprintEntities] = self._entities.get(blueprint_key)
        if entities is None:
            entities = _clone(_prototypes()[1], self._ql_options, self._client, {})
            entities._blueprint_key = blueprint_key
            self._entities[blueprint_key] = entities
        return entities


def _clone(obj: Any, options: QelosSDKOptions, client: Any, memo: Dict[int, Any]) -> Any:
    """A shallow copy of a prototype module, rewired to this request: options, client, app_url, own state."""
    if id(obj) in memo:
        return memo[id(obj)]
    new = copy.copy(obj)
    memo[id(obj)] = new
    if type(new) is QlBlueprints:
        new.__class__ = _RequestBlueprints
    proto_options = _prototypes()[0]._ql_options
    for name, value in vars(new).items():
        if isinstance(value, BaseSDK):
            setattr(new, name, _clone(value, options, client, memo))
        elif value is proto_options:
            setattr(new, name, options)
        elif isinstance(value, (httpx.AsyncClient, _RequestClient)):
            setattr(new, name, client)
        elif isinstance(value, (dict, list, set)):
            setattr(new, name, type(value)())
    if isinstance(new, BaseSDK):
        new._app_url = options.app_url.rstrip("/")
    return new


class RequestSdkFactory:
    def __init__(self, config: QelosConfig, pool: Callable[[], httpx.AsyncBaseTransport]) -> None:
        self._config = config
        self._pool = pool
        self._http: Optional[httpx.AsyncClient] = None
        # qelos-sdk releases of another shape get a plain QelosSDK per request (correct, slower).
        self._fallback: Optional[bool] = None

    def _shared(self) -> httpx.AsyncClient:
        # One client for every request SDK of this middleware (made on first use); each call carries its request.
        if self._http is None:
            self._http = httpx.AsyncClient(
                transport=_RequestTransport(self._pool, self._config.http_timeout, self._config.deadline),
                cookies=no_cookie_jar(),
                timeout=self._config.http_timeout,
                trust_env=False,
            )
        return self._http

    def build(self, ctx: RequestCaller) -> QelosSDK:
        client = _RequestClient(self._shared(), ctx)
        tenant = self._config.tenant
        custom: Dict[str, str] = {}

        # qelos-sdk has no tenant option: every SDK call asks here for its headers, so the tenant goes here.
        async def extra_headers(relative_url: str, force_refresh: bool = False) -> Dict[str, str]:
            if relative_url.split("?", 1)[0] in _NO_AUTH_PATHS:
                return {**upstream_headers(tenant), **custom}
            return {**ctx.upstream_headers(), **custom}

        options = QelosSDKOptions(
            app_url=self._config.upstream_url,
            api_token=self._config.api_token,
            get_access_token=lambda: ctx.tokens.access_token,
            extra_headers=extra_headers,
            force_refresh=False,
            **self._config.sdk_options,
        )
        if self._fallback is None:
            self._fallback = not _clone_is_rewired(options, client)
        sdk: QelosSDK
        if self._fallback:
            sdk = QelosSDK(options)
            for module in _modules(sdk):
                module._client = client  # type: ignore[assignment]
        else:
            sdk = _RequestSdk(options, client)
        sdk._custom_headers = custom
        return sdk


_prototype_lock = threading.Lock()
_prototype: Optional[Tuple[QelosSDK, QlBlueprintEntities]] = None


def _prototypes() -> Tuple[QelosSDK, QlBlueprintEntities]:
    global _prototype
    if _prototype is None:
        with _prototype_lock:
            if _prototype is None:
                sdk = QelosSDK(QelosSDKOptions(app_url="http://qelos.prototype.invalid"))
                _prototype = (sdk, sdk.entities("__prototype__"))
    return _prototype


def build_prototype() -> None:
    """Build the SDK prototype now (about 0.5 s of CPU), then move the heap out of the collector's way.

    Called at lifespan startup, so no request pays for it; ``gc.freeze()`` puts every object alive then
    (the app's imports, the prototype's ~35,000 objects) in the permanent generation, which later
    collections do not walk.
    """
    _prototypes()
    gc.freeze()


def _clone_is_rewired(options: QelosSDKOptions, client: _RequestClient) -> bool:
    """Checked once per factory: a clone with every module read reaches nothing of the prototype's."""
    prototype = _prototypes()[0]
    check = _RequestSdk(options, client)
    own = set(vars(check))
    try:
        for name in vars(prototype):
            if name not in own:
                getattr(check, name)
    except AttributeError:
        return _unknown_shape()
    check.entities("__check__")  # an entity manager built on demand must be rewired too
    prototype_parts = {id(obj) for obj in _reachable(prototype)}
    for obj in _reachable(check):
        if (
            id(obj) in prototype_parts
            or any(isinstance(v, httpx.AsyncClient) for v in vars(obj).values())
            or (
                isinstance(obj, BaseSDK)
                and (
                    obj._client is not cast(Any, client)
                    or obj._ql_options is not options
                    or obj._app_url != check._app_url
                )
            )
        ):
            return _unknown_shape()
    return True
    return _unknown_shape()


def _unknown_shape() -> bool:
    logger.warning(
        "qelos-sdk %s has a shape this integrator does not know; building the request SDK the slow "
        "way (about 0.5 s of CPU on first touch per request). Pin qelos-sdk<4.1 or upgrade this package.",
        _sdk_version(),
    )
    return False


def end_request_sdk(sdk: QelosSDK) -> None:
    """The request is over: its SDK must not act for it any more (no I/O, nothing to walk)."""
    client = sdk._client
    if isinstance(client, _RequestClient):
        client.close()


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
        and not isinstance(value, (httpx.AsyncClient, _RequestClient, QelosSDKOptions))
    )


def _modules(sdk: QelosSDK) -> List[BaseSDK]:
    return [obj for obj in _reachable(sdk) if isinstance(obj, BaseSDK)]


def _sdk_version() -> str:
    try:
        from importlib.metadata import version

        return version("qelos-sdk")
    except Exception:
        return "(unknown version)"
