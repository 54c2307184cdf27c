from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import httpx

from ._origin import origin_of

logger = logging.getLogger("qelos_integrator_fastapi")

# camelCase keys of a Node-style integrator config, mapped to QelosSDKOptions fields.
_SDK_OPTION_ALIASES = {
    "appUrl": "app_url",
    "apiToken": "api_token",
    "accessToken": "access_token",
    "refreshToken": "refresh_token",
    "getAccessToken": "get_access_token",
    "extraHeaders": "extra_headers",
    "forceRefresh": "force_refresh",
    "onFailedRefreshToken": "on_failed_refresh_token",
    "extraQueryParams": "extra_query_params",
}
_SDK_OPTION_FIELDS = frozenset(_SDK_OPTION_ALIASES.values())
# Credentials and auth plumbing are ours: the request SDK is bound to the caller's credentials.
_SDK_OPTIONS_WE_OWN = frozenset(
    {"app_url", "api_token", "access_token", "refresh_token", "get_access_token", "extra_headers", "force_refresh"}
)
_COOKIE_DOMAIN = re.compile(r"^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# 4.0.1's development overrides of where Qelos is reached, first non-blank one wins (then app_url).
TARGET_ENV_VARS = ("QELOS_PROXY_TARGET", "QELOS_IP", "QELOS_API_IP")


class QelosConfigError(ValueError):
    """An invalid QelosConfig value; raised at construction."""

    code = "QELOS_CONFIG_INVALID"


def mask_secret(value: Optional[str]) -> str:
    if not value:
        return repr(value)
    return f"'{value[:3]}…({len(value)} chars)'" if len(value) > 12 else "'***'"


def session_cookie_name(tenant: str) -> str:
    """Qelos's session cookie for a tenant: ``qlt_`` and the tenant's first 8 characters."""
    return f"qlt_{tenant[:8]}"


def normalize_sdk_options(options: Mapping[str, Any]) -> Dict[str, Any]:
    normalized: Dict[str, Any] = {}
    for key, value in options.items():
        name = _SDK_OPTION_ALIASES.get(key, key)
        if name not in _SDK_OPTION_FIELDS:
            settable = {key for key, field in _SDK_OPTION_ALIASES.items() if field not in _SDK_OPTIONS_WE_OWN}
            known = ", ".join(sorted(settable | (_SDK_OPTION_FIELDS - _SDK_OPTIONS_WE_OWN)))
            raise QelosConfigError(f"sdk_options: unknown option {key!r}; known options are {known}")
        if name in normalized:
            raise QelosConfigError(f"sdk_options: {key!r} given twice (camelCase and snake_case)")
        normalized[name] = value
    return normalized


@dataclass(frozen=True)
class QelosConfig:
    """Settings of QelosIntegratorMiddleware; every value is validated here, at construction."""

    app_url: str
    api_token: Optional[str] = None
    access_token_cookie: str = "q_access_token"
    refresh_token_cookie: str = "q_refresh_token"
    require_auth: bool = False
    skip_paths: Sequence[str] = ()
    sdk_options: Mapping[str, Any] = field(default_factory=dict)
    # Seconds for one upstream call to Qelos (connect, read, write and pool wait each), or an
    # httpx.Timeout with a value per phase; a whole call never lasts longer than the largest value.
    timeout: Union[float, httpx.Timeout] = 5.0
    # Seconds for POST /api/token/refresh: longer, because abandoning a refresh that Qelos still
    # completes leaves the browser with a spent single-use refresh token.
    refresh_timeout: float = 15.0
    # The Qelos tenant; names the session cookie qlt_<tenant[:8]>.
    tenant: str = "0"
    # Path given to Qelos session cookies relayed to the browser (Qelos itself uses /api).
    session_cookie_path: str = "/"
    # Domain attribute of relayed session cookies; None makes them host-only cookies of the app.
    session_cookie_domain: Optional[str] = None
    # Seconds an identity may be served from memory; 0 disables the cache.
    identity_cache_ttl: float = 0.0
    identity_cache_size: int = 10_000
    # Longest credential accepted from a client, in characters; longer ones are never sent upstream.
    max_credential_length: int = 8192
    # Largest body read from a Qelos answer the middleware and the auth router parse themselves, in
    # bytes (counted while streaming; the rest is never read). 4 MiB is about a thousand times a
    # /api/me answer and holds a workspace list of ~10,000 memberships.
    max_upstream_body: int = 4 * 1024 * 1024
    # Connection pool of the one httpx client shared by every request: httpx.Limits, or the
    # max_connections shorthand, which keeps min(max_connections, 20) idle connections alive.
    limits: Optional[httpx.Limits] = field(default=None, compare=False)
    max_connections: Optional[int] = None
    # Refuse state-changing requests (and WebSocket handshakes) that a cookie authenticates unless
    # they come from the app's own origin or one of trusted_origins (docs/security.md).
    csrf_check: bool = True
    # Origins besides the app's own allowed to send cookie-authenticated state-changing requests,
    # written scheme://host[:port]; stored with the port written out.
    trusted_origins: Sequence[str] = ()
    # Redis shared by every worker and host of the app, e.g. "redis://redis.internal:6379/0": one refresh per
    # spent refresh token, a shared successor memory and identity cache (docs/deployment.md). Needs the extra
    # qelos-integrator-fastapi[redis]; None keeps all of it in each process.
    redis_url: Optional[str] = None
    # Route Qelos calls through this httpx transport instead of the network (FakeQelos in tests).
    transport: Optional[httpx.AsyncBaseTransport] = field(default=None, compare=False)
    # Where the /api/** proxy routes are served in this app (docs/proxy.md); Qelos itself is always at /api.
    proxy_prefix: str = "/api"
    # False (4.0.1's default): requests under proxy_prefix are left for the proxy, whose upstream call Qelos
    # authenticates itself: the middleware reads and refreshes their credential but does not ask Qelos who is
    # calling. True: they are resolved like every other path.
    disable_proxy: bool = False
    # app_url, or the first of TARGET_ENV_VARS set when the config was built: where every Qelos call goes.
    upstream_url: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "app_url", _validate_app_url(self.app_url))
        if self.api_token is not None and (not isinstance(self.api_token, str) or not self.api_token.strip()):
            raise QelosConfigError("api_token must be a non-empty string, or None for browser credentials")
        for name in ("access_token_cookie", "refresh_token_cookie"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _COOKIE_NAME.match(value):
                raise QelosConfigError(f"{name} must be a valid cookie name, got {value!r}")
        if self.access_token_cookie == self.refresh_token_cookie:
            raise QelosConfigError("access_token_cookie and refresh_token_cookie must differ")
        if not isinstance(self.require_auth, bool):
            raise QelosConfigError(f"require_auth must be True or False, got {self.require_auth!r}")
        object.__setattr__(self, "skip_paths", _validate_skip_paths(self.skip_paths))
        if not isinstance(self.sdk_options, Mapping):
            raise QelosConfigError("sdk_options must be a mapping of QelosSDKOptions fields")
        sdk_options = normalize_sdk_options(self.sdk_options)
        owned = sorted(set(sdk_options) & _SDK_OPTIONS_WE_OWN - {"app_url"})
        if owned:
            raise QelosConfigError(
                f"sdk_options: {', '.join(owned)} cannot be set; the request SDK is bound to the caller's "
                "credentials (use api_token= on QelosConfig for service-to-service calls)"
            )
        if "app_url" in sdk_options and _validate_app_url(sdk_options.pop("app_url")) != self.app_url:
            raise QelosConfigError("sdk_options: appUrl/app_url differs from QelosConfig.app_url")
        object.__setattr__(self, "sdk_options", sdk_options)
        for name in ("refresh_timeout", "identity_cache_ttl"):
            value = getattr(self, name)
            if not _is_seconds(value):
                raise QelosConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        _check_timeout(self.timeout)
        if self.refresh_timeout < self.deadline:
            raise QelosConfigError(
                f"refresh_timeout ({self.refresh_timeout}s) must be at least timeout ({self.deadline}s): a refresh "
                "abandoned early may still spend the caller's single-use refresh token"
            )
        for name in ("identity_cache_size", "max_credential_length", "max_upstream_body", "max_connections"):
            value = getattr(self, name)
            if name == "max_connections" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise QelosConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.limits is not None and not isinstance(self.limits, httpx.Limits):
            raise QelosConfigError(f"limits must be an httpx.Limits, got {self.limits!r}")
        if self.limits is not None and self.max_connections is not None:
            raise QelosConfigError("pass limits=httpx.Limits(...) or the max_connections shorthand, not both")
        if not isinstance(self.tenant, str) or not self.tenant or not _COOKIE_NAME.match(self.tenant):
            raise QelosConfigError(f"tenant must be a non-empty token such as '0', got {self.tenant!r}")
        if not isinstance(self.session_cookie_path, str) or not self.session_cookie_path.startswith("/"):
            raise QelosConfigError(f"session_cookie_path must start with '/', got {self.session_cookie_path!r}")
        if self.session_cookie_domain is not None and (
            not isinstance(self.session_cookie_domain, str) or not _COOKIE_DOMAIN.match(self.session_cookie_domain)
        ):
            raise QelosConfigError(f"session_cookie_domain must be a host name, got {self.session_cookie_domain!r}")
        if not isinstance(self.csrf_check, bool):
            raise QelosConfigError(f"csrf_check must be True or False, got {self.csrf_check!r}")
        object.__setattr__(self, "trusted_origins", validate_origins("trusted_origins", self.trusted_origins))
        if self.redis_url is not None:
            _check_redis_url(self.redis_url)
        if self.transport is not None and not isinstance(self.transport, httpx.AsyncBaseTransport):
            raise QelosConfigError("transport must be an httpx.AsyncBaseTransport")
        if not isinstance(self.disable_proxy, bool):
            raise QelosConfigError(f"disable_proxy must be True or False, got {self.disable_proxy!r}")
        object.__setattr__(self, "proxy_prefix", _validate_proxy_prefix(self.proxy_prefix))
        object.__setattr__(self, "upstream_url", _upstream_url(self.app_url))

    def __repr__(self) -> str:
        return (
            f"QelosConfig(app_url={self.app_url!r}, api_token={mask_secret(self.api_token)}, "
            f"require_auth={self.require_auth!r}, skip_paths={list(self.skip_paths)!r}, tenant={self.tenant!r})"
        )

    @property
    def http_timeout(self) -> httpx.Timeout:
        """``timeout`` as the httpx.Timeout every upstream call uses."""
        return self.timeout if isinstance(self.timeout, httpx.Timeout) else httpx.Timeout(self.timeout)

    @property
    def deadline(self) -> float:
        """Seconds one upstream call may take in all: the largest value of ``timeout``."""
        if isinstance(self.timeout, httpx.Timeout):
            return max(v for v in self.timeout.as_dict().values() if v is not None)
        return float(self.timeout)

    @property
    def pool_limits(self) -> httpx.Limits:
        """The shared pool's limits: ``limits``, else those of the ``max_connections`` shorthand."""
        if self.limits is not None:
            return self.limits
        connections = 100 if self.max_connections is None else self.max_connections
        return httpx.Limits(max_connections=connections, max_keepalive_connections=min(connections, 20))

    @property
    def is_https(self) -> bool:
        return self.app_url.startswith("https://")

    @property
    def session_cookie_names(self) -> Tuple[str, str]:
        """The Qelos session cookie of this tenant, then the legacy name Qelos still accepts."""
        return (session_cookie_name(self.tenant), "token")

    def is_skipped(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.skip_paths)

    def is_proxied(self, path: str) -> bool:
        """Whether the middleware leaves ``path`` to the proxy (see ``disable_proxy``)."""
        prefix = self.proxy_prefix
        return not self.disable_proxy and (path == prefix or path.startswith(prefix + "/"))


REDIS_EXTRA = "pip install 'qelos-integrator-fastapi[redis]'"


def _check_redis_url(url: Any) -> None:
    if not isinstance(url, str) or urlsplit(url.strip()).scheme not in ("redis", "rediss", "unix"):
        raise QelosConfigError(
            "redis_url must be a redis://, rediss:// or unix:// URL such as 'redis://localhost:6379/0', got "
            f"{mask_secret(url) if isinstance(url, str) else repr(url)}"
        )
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise QelosConfigError(
            f"redis_url needs the redis client and cryptography, which the extra installs: {REDIS_EXTRA} "
            f"(could not import {exc.name})"
        ) from None


def _is_seconds(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0 and value == value


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, httpx.Timeout):
        values = timeout.as_dict()
        if any(v is None or not _is_seconds(v) or v == 0 for v in values.values()):
            raise QelosConfigError(
                f"timeout must give every phase a number of seconds > 0 (an auth middleware must never wait "
                f"forever), got {timeout!r}"
            )
        return
    if not _is_seconds(timeout):
        raise QelosConfigError(f"timeout must be a number of seconds > 0 or an httpx.Timeout, got {timeout!r}")
    if timeout == 0:
        raise QelosConfigError("timeout must be > 0 seconds; an auth middleware must never wait forever")


def _validate_app_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise QelosConfigError("app_url is required, for example QelosConfig(app_url='https://qelos.example.com')")
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise QelosConfigError(f"app_url must be an http:// or https:// URL with a host, got {value!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise QelosConfigError(f"app_url must not carry a query, fragment or credentials, got {value!r}")
    if parts.path.rsplit("/", 1)[-1] == "api":
        raise QelosConfigError(
            f"app_url is where Qelos is served, without /api (the integrator adds /api/... itself), got {value!r}"
        )
    return url


def _upstream_url(app_url: str) -> str:
    for name in TARGET_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        try:
            url = _validate_app_url(value)
        except QelosConfigError as exc:
            raise QelosConfigError(f"{name} (which overrides app_url): {exc}") from None
        if url != app_url:
            logger.warning("Qelos calls go to %s, set by the %s environment variable, not to app_url", url, name)
        return url
    return app_url


def _validate_proxy_prefix(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.rstrip("/") == "" or "{" in value:
        raise QelosConfigError(f"proxy_prefix must be a path such as '/api', got {value!r}")
    return value.rstrip("/")


def validate_origins(name: str, value: Any) -> Tuple[str, ...]:
    """Origins such as ``https://front.example.com``, each as origin_of writes it (port written out)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise QelosConfigError(f"{name} must be a list of origins such as ['https://front.example.com'], got {value!r}")
    origins = []
    for entry in value:
        origin = origin_of(entry) if isinstance(entry, str) else None
        if origin is None or urlsplit(entry.strip()).path not in ("", "/") or "?" in entry or "#" in entry:
            raise QelosConfigError(
                f"{name} entries must be origins written scheme://host[:port], such as 'https://front.example.com', "
                f"got {entry!r}"
            )
        origins.append(origin)
    return tuple(origins)


def _validate_skip_paths(value: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise QelosConfigError(f"skip_paths must be a list of path prefixes such as ['/health'], got {value!r}")
    paths = []
    for prefix in value:
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise QelosConfigError(f"skip_paths entries must start with '/', got {prefix!r}")
        paths.append(prefix.rstrip("/"))
    return tuple(paths)
