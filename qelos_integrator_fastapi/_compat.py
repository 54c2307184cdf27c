"""4.0.1's public names, kept for the 5.x series: each warns once, naming what replaces it (MIGRATING.md).

Deprecated names resolve through the package's ``__getattr__`` but stay out of ``__all__`` and
``dir()``, as httpx does with its deprecated names: new code never discovers them.
"""

from __future__ import annotations

import re
import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._config import QelosConfig

if TYPE_CHECKING:
    from qelos_sdk import QelosSDK
    from starlette.requests import HTTPConnection

_GUIDE = "see MIGRATING.md"
_SKIPS_ADDED = "the middleware no longer skips /api/ itself: requests under proxy_prefix are left to the proxy"

# name -> (private module, attribute there, what to write instead)
DEPRECATED: Dict[str, Tuple[str, str, str]] = {
    "QelosMiddleware": ("_middleware", "QelosIntegratorMiddleware", "QelosIntegratorMiddleware (same keywords)"),
    "QelosWorkspace": ("_compat_fastapi", "QelosWorkspace", "the workspace dicts of request.state.qelos"),
    "WorkspaceResolver": (
        "_context",
        "ResolveWorkspace",
        "a plain callable (connection, user, workspaces) -> workspace for resolve_workspace=",
    ),
    "create_request_sdk": ("_compat", "create_request_sdk", "request.state.qelos.sdk"),
    "get_qelos_sdk": ("_compat_fastapi", "get_qelos_sdk", "Depends(require_user) or Depends(get_qelos), then .sdk"),
    "get_qelos_user": (
        "_compat_fastapi",
        "get_qelos_user",
        "Depends(require_user) (its .user dict) or request.user (a QelosUser)",
    ),
    "qelos_middleware": ("_middleware", "QelosIntegratorMiddleware", "QelosIntegratorMiddleware (same keywords)"),
    "resolve_qelos_proxy_target": ("_compat", "resolve_qelos_proxy_target", "QelosConfig(...).upstream_url"),
    "rewrite_set_cookie_domain": (
        "_compat",
        "rewrite_set_cookie_domain",
        "nothing: the middleware and the proxy relay Qelos's session cookie rewritten for the app's host",
    ),
    "rewrite_set_cookie_domains": (
        "_compat",
        "rewrite_set_cookie_domains",
        "nothing: the middleware and the proxy relay Qelos's session cookie rewritten for the app's host",
    ),
}


def deprecated_name(package: str, name: str, namespace: Dict[str, Any]) -> Any:
    """A deprecated root name: warn (once, it is then cached in the package) and resolve it."""
    module, attribute, replacement = DEPRECATED[name]
    warnings.warn(
        f"{package}.{name} is deprecated since 5.0.0 and will be removed in 6.0.0; use {replacement} ({_GUIDE})",
        DeprecationWarning,
        stacklevel=3,
    )
    value = getattr(import_module(f".{module}", package), attribute)
    namespace[name] = value
    return value


def warn_module(module: str, replacement: str) -> None:
    """Called by a 4.0.1 module on import: the importer's line is named, importlib's frames skipped."""
    warnings.warn(
        f"the module {module} is deprecated since 5.0.0 and will be removed in 6.0.0; {replacement} ({_GUIDE})",
        DeprecationWarning,
        stacklevel=3,
    )


def resolve_qelos_proxy_target(config: QelosConfig) -> Optional[str]:
    """Where Qelos calls go: the first non-blank QELOS_PROXY_TARGET, QELOS_IP, QELOS_API_IP, else app_url.

    Read when the QelosConfig was built (4.0.1 read the environment on every call).
    """
    return config.upstream_url


def create_request_sdk(config: QelosConfig, request: HTTPConnection) -> QelosSDK:
    """The request's SDK when the middleware serves ``config``; else a new one with the request's one credential.

    A new one is 4.0.1's behaviour: slow to build (hundreds of ms) and the caller's to close.
    """
    from qelos_sdk import QelosSDK, QelosSDKOptions

    from ._context import served_context
    from ._credentials import read_credentials, upstream_headers

    ctx = served_context(request.scope, config)
    if ctx is not None:
        return ctx.sdk
    options: Dict[str, Any] = {"app_url": config.upstream_url, "force_refresh": False, **config.sdk_options}
    if config.api_token:
        return QelosSDK(QelosSDKOptions(api_token=config.api_token, **options))
    credentials = read_credentials(request.scope, config)
    headers = upstream_headers(
        config.tenant, bearer=credentials.access_token, session_cookie=credentials.session_cookie
    )

    async def extra_headers(relative_url: str, force_refresh: bool = False) -> Dict[str, str]:
        return dict(headers)

    return QelosSDK(QelosSDKOptions(extra_headers=extra_headers, **options))


_DOMAIN = re.compile(r";\s*Domain\s*=\s*[^;]*", re.IGNORECASE)


def strip_port(host: str) -> str:
    """``host[:port]`` or ``[v6]:port`` without the port (and brackets)."""
    if host.startswith("["):
        end = host.find("]")
        return host if end == -1 else host[1:end]
    return host.split(":", 1)[0]


def rewrite_set_cookie_domain(set_cookie: str, new_domain: Optional[str]) -> str:
    """Set the ``Domain`` attribute of a Set-Cookie value to ``new_domain`` (port stripped); drop it if blank.

    A value without a Domain attribute is returned unchanged.
    """
    if not _DOMAIN.search(set_cookie):
        return set_cookie
    domain = strip_port(new_domain.strip()) if new_domain else ""
    if not domain:
        return _DOMAIN.sub("", set_cookie)
    return _DOMAIN.sub(lambda match: match.group(0).split("=", 1)[0] + "=" + domain, set_cookie, count=1)


def rewrite_set_cookie_domains(values: List[str], new_domain: Optional[str]) -> List[str]:
    return [rewrite_set_cookie_domain(value, new_domain) for value in values]


def effective_skip_paths(config: QelosConfig) -> List[str]:
    """4.0.1's skip list; ours has no ``/api/`` in it: requests under ``proxy_prefix`` are left to the proxy."""
    return list(config.skip_paths)


def should_skip(request: HTTPConnection, skip_paths: List[str]) -> bool:
    """Whether the middleware skips the request: whole path segments, as QelosConfig.is_skipped matches."""
    path = request.url.path
    return any(path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/") for prefix in skip_paths)
