"""Optional sign-in, sign-out and social-login routes that talk to Qelos for the app's browsers.

Plain Starlette: the FastAPI router wrapper lives in ``_fastapi_router.py``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ._config import QelosConfig, QelosConfigError, validate_origins
from ._cookies import CookieBuffer
from ._oauth_state import CALLBACK_ROUTE as CALLBACK_ROUTE
from ._oauth_state import SECRET_ENV as SECRET_ENV
from ._oauth_state import STATE_COOKIE as STATE_COOKIE
from ._oauth_state import STATE_SALT as STATE_SALT
from ._oauth_state import OAuthState, callback_path
from ._origin import cross_origin
from ._problem import Problem
from ._qelos_auth import QelosAuth
from ._refresh import OnTokenRefresh
from ._request_body import is_form, read_fields, sign_in_fields
from ._return_path import return_path, unsafe_return_url
from ._return_path import safe_return_path as safe_return_path

# The social providers Qelos has routes for (contract §2.12).
QELOS_PROVIDERS = ("google", "github", "linkedin", "facebook")


class _AuthEndpoints:
    def __init__(
        self,
        config: QelosConfig,
        *,
        secret_key: Optional[str],
        mode: str,
        providers: Sequence[str],
        public_url: Optional[str],
        callback_url: Optional[str],
        login_page: Optional[str],
        default_return_url: str,
        state_max_age: int,
        trusted_origins: Sequence[str],
        on_token_refresh: Optional[OnTokenRefresh],
    ) -> None:
        if not isinstance(config, QelosConfig):
            raise QelosConfigError(f"config must be a QelosConfig, got {type(config).__name__}")
        if config.api_token:
            raise QelosConfigError(
                "the auth router signs browsers in, but this QelosConfig has api_token=, which makes the "
                "middleware ignore browser credentials; use a QelosConfig without api_token for the router"
            )
        if mode not in ("session", "token"):
            raise QelosConfigError(f"mode must be 'session' or 'token', got {mode!r}")
        unknown = [p for p in providers if p not in QELOS_PROVIDERS]
        if isinstance(providers, str) or unknown:
            raise QelosConfigError(
                f"providers must be a list drawn from {', '.join(QELOS_PROVIDERS)}, got {providers!r}"
            )
        if safe_return_path(default_return_url) is None:
            raise QelosConfigError(
                f"default_return_url must be a relative path such as '/', got {default_return_url!r}"
            )
        if login_page is not None and safe_return_path(login_page) is None:
            raise QelosConfigError(f"login_page must be a relative path such as '/login', got {login_page!r}")
        if isinstance(state_max_age, bool) or not isinstance(state_max_age, int) or state_max_age < 1:
            raise QelosConfigError(f"state_max_age must be a positive number of seconds, got {state_max_age!r}")
        self.config = config
        self.mode = mode
        self.providers = tuple(providers)
        self.public_url = _public_url(public_url, config)
        self.callback_url = callback_url
        self.login_page = login_page
        self.default_return_url = default_return_url
        own = validate_origins("trusted_origins", trusted_origins)
        self.trusted_origins = frozenset((*own, *config.trusted_origins))
        self.qelos = QelosAuth(config, mode=mode, on_token_refresh=on_token_refresh)
        self.state = OAuthState(secret_key, state_max_age) if self.providers else None

    async def login(self, request: Request) -> Response:
        form = is_form(request)
        fields: Dict[str, Any] = {}
        try:
            self._check_same_origin(request)
            form, fields = await read_fields(request)
            return_to = return_path(fields.get("next"), self.default_return_url)
            username, password, workspace = sign_in_fields(fields)
            payload, buffer = await self.qelos.sign_in(request, username, password, workspace)
        except Problem as problem:
            return self._failure(problem, browser=form, next_path=safe_return_path(fields.get("next")))
        body = {"user": payload.get("user"), "workspace": payload.get("workspace"), "mode": self.mode}
        return _respond(form, return_to, body, buffer)

    async def logout(self, request: Request) -> Response:
        try:
            self._check_same_origin(request)
            form, fields = await read_fields(request, allow_empty=True)
            return_to = return_path(fields.get("next"), self.default_return_url)
        except Problem as problem:
            return self._failure(problem, browser=False)
        revoked, buffer = await self.qelos.sign_out(request)
        return _respond(form, return_to, {"signed_out": True, "revoked": revoked}, buffer)

    async def social_start(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in self.providers or self.state is None:
            known = ", ".join(self.providers) or "none"
            return Problem(404, "UNKNOWN_PROVIDER", f"no social login {provider!r} here (enabled: {known})").response()
        return_to = safe_return_path(request.query_params.get("next", self.default_return_url))
        if return_to is None:
            return unsafe_return_url().response()
        state, nonce = self.state.sign(provider, return_to)
        query = urlencode({"returnUrl": self._callback_url(request), "state": state})
        response = RedirectResponse(f"{self.public_url}/api/auth/{provider}?{query}", status_code=302)
        self.state.set_cookie(request, response, nonce)
        return response

    async def callback(self, request: Request) -> Response:
        assert self.state is not None
        try:
            return_to = self.state.verify(request)
            rt = (request.query_params.get("rt") or "").strip()
            if not rt or len(rt) > self.config.max_credential_length:
                raise Problem(400, "MISSING_RT", "the callback carries no rt refresh token from Qelos")
            buffer = await self.qelos.exchange(request, rt)
        except Problem as problem:
            response = self._failure(problem, browser=True)
        else:
            response = RedirectResponse(return_to, status_code=303)
            buffer.flush_into(response.headers)
        self.state.delete_cookie(request, response)
        return response

    def _failure(self, problem: Problem, *, browser: bool, next_path: Optional[str] = None) -> Response:
        if browser and self.login_page is not None:
            # An off-site next is dropped (never echoed back); the login page says why.
            query = {"error": problem.code, **({"next": next_path} if next_path else {})}
            return RedirectResponse(f"{self.login_page}?{urlencode(query)}", status_code=303)
        return problem.response()

    def _check_same_origin(self, request: Request) -> None:
        # Cross-site form posts could sign a victim into someone else's account (login CSRF).
        if cross_origin(request.scope, self.trusted_origins) is not None:
            raise Problem(403, "CROSS_SITE_REQUEST", "sign-in and sign-out accept same-origin requests only")

    def _callback_url(self, request: Request) -> str:
        if self.callback_url is not None:
            return self.callback_url
        if self.public_url.startswith("/"):
            # Qelos served from this very origin (FakeQelos mounted in the demo): a relative return URL is ours.
            return callback_path(request)
        return str(request.url_for(CALLBACK_ROUTE))


def create_qelos_auth_routes(
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
) -> List[BaseRoute]:
    """The auth routes as plain Starlette routes (``Starlette(routes=[*create_qelos_auth_routes(config)])``).

    Same options as create_qelos_auth_router.
    """
    endpoints = _AuthEndpoints(
        config,
        secret_key=secret_key,
        mode=mode,
        providers=providers,
        public_url=public_url,
        callback_url=callback_url,
        login_page=login_page,
        default_return_url=default_return_url,
        state_max_age=state_max_age,
        trusted_origins=trusted_origins,
        on_token_refresh=on_token_refresh,
    )
    prefix = _prefix(prefix)
    routes: List[BaseRoute] = [
        Route(f"{prefix}/login", endpoints.login, methods=["POST"], name="qelos_auth_login"),
        Route(f"{prefix}/logout", endpoints.logout, methods=["POST"], name="qelos_auth_logout"),
    ]
    if endpoints.providers:
        routes += [
            Route(f"{prefix}/callback", endpoints.callback, methods=["GET"], name=CALLBACK_ROUTE),
            Route(f"{prefix}/{{provider}}", endpoints.social_start, methods=["GET"], name="qelos_auth_social"),
        ]
    return routes


def _respond(form: bool, return_to: str, body: Dict[str, Any], buffer: CookieBuffer) -> Response:
    response: Response = RedirectResponse(return_to, status_code=303) if form else JSONResponse(body)
    buffer.flush_into(response.headers)
    return response


def _public_url(public_url: Optional[str], config: QelosConfig) -> str:
    if public_url is None:
        return config.app_url
    if isinstance(public_url, str) and safe_return_path(public_url) is not None:
        return public_url.rstrip("/")
    parts = urlsplit(public_url if isinstance(public_url, str) else "")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise QelosConfigError(f"public_url must be an http(s) URL or a path on this site, got {public_url!r}")
    return public_url.rstrip("/")


def _prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix.startswith("/") or safe_return_path(prefix) is None or "?" in prefix:
        raise QelosConfigError(f"prefix must be a path such as '/auth', got {prefix!r}")
    return prefix.rstrip("/")
