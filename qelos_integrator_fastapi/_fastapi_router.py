"""The auth routes as a FastAPI router, with their OpenAPI documentation (needs FastAPI)."""

from __future__ import annotations

from typing import List, Optional, Sequence

from fastapi import APIRouter
from starlette.routing import Route

from ._config import QelosConfig
from ._openapi import REQUEST_BODIES, RESPONSES, SUMMARIES
from ._proxy import create_qelos_proxy_routes
from ._refresh import OnTokenRefresh
from ._routes import QELOS_PROVIDERS, create_qelos_auth_routes


def create_qelos_auth_router(
    config: QelosConfig,
    *,
    secret_key: Optional[str] = None,
    mode: str = "session",
    prefix: str = "/auth",
    providers: Sequence[str] = QELOS_PROVIDERS,
    public_url: Optional[str] = None,
    callback_url: Optional[str] = None,
    login_page: Optional[str] = None,
    default_return_url: str = "/",
    state_max_age: int = 600,
    trusted_origins: Sequence[str] = (),
    on_token_refresh: Optional[OnTokenRefresh] = None,
    tags: Optional[List[str]] = None,
) -> APIRouter:
    """A FastAPI router with ``POST {prefix}/login``, ``POST {prefix}/logout``, ``GET {prefix}/{provider}``
    and ``GET {prefix}/callback``; see docs/auth-router.md."""
    routes = create_qelos_auth_routes(
        config,
        secret_key=secret_key,
        mode=mode,
        prefix=prefix,
        providers=providers,
        public_url=public_url,
        callback_url=callback_url,
        login_page=login_page,
        default_return_url=default_return_url,
        state_max_age=state_max_age,
        trusted_origins=trusted_origins,
        on_token_refresh=on_token_refresh,
    )
    router = APIRouter(tags=list(tags) if tags is not None else ["auth"])
    for route in routes:
        assert isinstance(route, Route)
        methods = sorted(route.methods or ())
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=[m for m in methods if m != "HEAD"],
            name=route.name,
            response_model=None,
            summary=SUMMARIES[route.name],
            responses=RESPONSES[route.name],
            openapi_extra=REQUEST_BODIES.get(route.name),
        )
    return router


def create_qelos_proxy_router(
    config: QelosConfig, *, forward_client_tenant: bool = False, forward_client_api_key: bool = False
) -> APIRouter:
    """``create_qelos_proxy_routes`` as a FastAPI router (4.0.1's call shape); see docs/proxy.md.

    Include it after the app's own routes under the prefix, so those stay authoritative. Its routes
    stay out of the OpenAPI schema: they are Qelos's API, documented by Qelos.
    """
    router = APIRouter()
    router.routes.extend(
        create_qelos_proxy_routes(
            config, forward_client_tenant=forward_client_tenant, forward_client_api_key=forward_client_api_key
        )
    )
    return router
