"""Optional sign-in, sign-out and social-login routes that talk to Qelos for the app's browsers."""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from fastapi import APIRouter
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .backend import OnTokenRefresh
from .client import auth_headers, no_cookie_jar
from .config import QelosConfig, QelosConfigError
from .context import QelosRequestContext, TokenPair, TokenRefreshContext
from .cookies import CookieBuffer, parse_set_cookie, relay_to_app, write_token_cookies
from .credentials import AuthMode, read_credentials

logger = logging.getLogger("qelos_integrator_fastapi")

SECRET_ENV = "QELOS_INTEGRATOR_SECRET"
# The social providers Qelos has routes for (contract §2.12).
QELOS_PROVIDERS = ("google", "github", "linkedin", "facebook")
STATE_COOKIE = "qelos_oauth_state"
CALLBACK_ROUTE = "qelos_auth_callback"
STATE_SALT = "qelos-integrator-oauth-state"

_MAX_BODY = 64 * 1024
_MAX_FIELD = 1024
_MIN_SECRET = 16


class _Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def safe_return_path(value: Any) -> Optional[str]:
    """``value`` when it is a same-origin relative path such as ``/dashboard?tab=1``, else None."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > 2048:
        return None
    # Browsers strip tabs and newlines and read "\" as "/", so "/\t/evil" and "/\evil" mean "//evil".
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


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
        self.state_max_age = state_max_age
        self.trusted_origins = frozenset(_origin_host(origin) for origin in trusted_origins)
        self.on_token_refresh = on_token_refresh if on_token_refresh is not None else write_token_cookies
        self.serializer = URLSafeTimedSerializer(_secret(secret_key), salt=STATE_SALT) if self.providers else None

    async def login(self, request: Request) -> Response:
        form = _is_form(request)
        fields: Dict[str, Any] = {}
        try:
            self._check_same_origin(request)
            form, fields = await _read_fields(request)
            return_to = _return_path(fields.get("next"), self.default_return_url)
            username = _text(fields.get("username")) or _text(fields.get("email"))
            password = _text(fields.get("password"), strip=False)
            if username is None or password is None:
                raise _Problem(422, "MISSING_CREDENTIALS", "send a non-empty username (or email) and password")
            workspace = fields.get("workspace")
            if workspace not in (None, "") and _text(workspace) is None:
                raise _Problem(422, "INVALID_BODY", "workspace must be a workspace id")
            payload, buffer = await self._sign_in(request, username, password, workspace or None)
        except _Problem as problem:
            return self._failure(problem, browser=form, next_path=safe_return_path(fields.get("next")))
        if form:
            response: Response = RedirectResponse(return_to, status_code=303)
        else:
            user, chosen = payload.get("user"), payload.get("workspace")
            response = JSONResponse({"user": user, "workspace": chosen, "mode": self.mode})
        buffer.flush_into(response.headers)
        return response

    async def logout(self, request: Request) -> Response:
        form = _is_form(request)
        try:
            self._check_same_origin(request)
            form, fields = await _read_fields(request, allow_empty=True)
            return_to = _return_path(fields.get("next"), self.default_return_url)
        except _Problem as problem:
            return self._failure(problem, browser=False)
        revoked = await self._revoke(request)
        buffer = CookieBuffer()
        self._clear_cookies(request, buffer, token=True, session=True)
        response: Response
        if form:
            response = RedirectResponse(return_to, status_code=303)
        else:
            response = JSONResponse({"signed_out": True, "revoked": revoked})
        buffer.flush_into(response.headers)
        return response

    async def social_start(self, request: Request) -> Response:
        provider = request.path_params["provider"]
        if provider not in self.providers or self.serializer is None:
            known = ", ".join(self.providers) or "none"
            return _error(404, "UNKNOWN_PROVIDER", f"no social login {provider!r} here (enabled: {known})")
        return_to = safe_return_path(request.query_params.get("next", self.default_return_url))
        if return_to is None:
            return _error(400, "UNSAFE_RETURN_URL", "next must be a relative path on this site, such as /dashboard")
        nonce = secrets.token_urlsafe(24)
        state = self.serializer.dumps({"n": nonce, "p": provider, "r": return_to})
        query = urlencode({"returnUrl": self._callback_url(request), "state": state})
        response = RedirectResponse(f"{self.public_url}/api/auth/{provider}?{query}", status_code=302)
        # Double-submit: the signed state names a nonce that only this browser holds, in an HttpOnly cookie.
        response.set_cookie(
            STATE_COOKIE,
            nonce,
            max_age=self.state_max_age,
            path=self._callback_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    async def callback(self, request: Request) -> Response:
        try:
            return_to = self._verify_state(request)
            rt = (request.query_params.get("rt") or "").strip()
            if not rt or len(rt) > self.config.max_credential_length:
                raise _Problem(400, "MISSING_RT", "the callback carries no rt refresh token from Qelos")
            buffer = await self._exchange(request, rt)
        except _Problem as problem:
            response = self._failure(problem, browser=True)
        else:
            response = RedirectResponse(return_to, status_code=303)
            buffer.flush_into(response.headers)
        response.delete_cookie(
            STATE_COOKIE,
            path=self._callback_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )
        return response

    def _verify_state(self, request: Request) -> str:
        assert self.serializer is not None
        state = request.query_params.get("state")
        if not state:
            raise _Problem(400, "INVALID_OAUTH_STATE", "the callback carries no state; start again from the login page")
        try:
            data = self.serializer.loads(state, max_age=self.state_max_age)
        except SignatureExpired:
            raise _Problem(400, "OAUTH_STATE_EXPIRED", "the social login took too long; start again") from None
        except BadData:
            raise _Problem(400, "INVALID_OAUTH_STATE", "the state is not one this app signed") from None
        nonce = data.get("n") if isinstance(data, dict) else None
        return_to = safe_return_path(data.get("r")) if isinstance(data, dict) else None
        if not isinstance(nonce, str) or return_to is None:
            raise _Problem(400, "INVALID_OAUTH_STATE", "the state is not one this app signed")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), nonce.encode()):
            raise _Problem(
                400, "OAUTH_STATE_MISMATCH", "this social login was not started in this browser; start again"
            )
        return return_to

    async def _sign_in(
        self, request: Request, username: str, password: str, workspace: Any
    ) -> Tuple[Dict[str, Any], CookieBuffer]:
        body: Dict[str, Any] = {
            "username": username,
            "password": password,
            "authType": "cookie" if self.mode == "session" else "oauth",
        }
        if workspace is not None:
            body["workspace"] = workspace
        reply = await self._call("POST", "/api/signin", json=body)
        if reply.status_code == 401:
            raise _Problem(401, "INVALID_CREDENTIALS", "invalid username or password")
        payload = _payload(reply, "POST /api/signin")
        buffer = CookieBuffer()
        if self.mode == "session":
            self._relay_session(request, reply, buffer, "POST /api/signin")
        else:
            await self._write_tokens(request, buffer, payload.get("token"), payload.get("refreshToken"))
        return payload, buffer

    async def _exchange(self, request: Request, rt: str) -> CookieBuffer:
        buffer = CookieBuffer()
        if self.mode == "session":
            reply = await self._call("POST", "/api/auth/callback", params={"rt": rt})
            if reply.status_code in (400, 401):
                raise _Problem(401, "SOCIAL_LOGIN_REJECTED", "Qelos did not accept the social login; start again")
            _payload(reply, "POST /api/auth/callback")
            self._relay_session(request, reply, buffer, "POST /api/auth/callback")
        else:
            # rt is a plain Qelos refresh token: one refresh turns it into the oauth pair of token mode.
            reply = await self._call("POST", "/api/token/refresh", headers={"authorization": f"Bearer {rt}"})
            if reply.status_code in (400, 401):
                raise _Problem(401, "SOCIAL_LOGIN_REJECTED", "Qelos did not accept the social login; start again")
            payload = _payload(reply, "POST /api/token/refresh")
            await self._write_tokens(request, buffer, payload.get("token"), payload.get("refreshToken"))
        return buffer

    def _relay_session(self, request: Request, reply: httpx.Response, buffer: CookieBuffer, what: str) -> None:
        relayed = False
        for header in reply.headers.get_list("set-cookie"):
            cookie = parse_set_cookie(header)
            if cookie is None or cookie.name not in self.config.session_cookie_names or cookie.is_deletion:
                continue
            relay_to_app(
                buffer,
                cookie,
                path=self.config.session_cookie_path,
                secure=request.url.scheme == "https",
                domain=self.config.session_cookie_domain,
            )
            relayed = True
        if not relayed:
            raise _Problem(
                503,
                "QELOS_UNAVAILABLE",
                f"{what} answered 200 without a {self.config.session_cookie_names[0]} session cookie; "
                "check that QelosConfig.tenant matches the Qelos tenant",
            )
        # Token cookies win over a session cookie in the middleware: stale ones would mask this sign-in.
        self._clear_cookies(request, buffer, token=True, session=False)

    async def _write_tokens(self, request: Request, buffer: CookieBuffer, access: Any, refresh: Any) -> None:
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise _Problem(503, "QELOS_UNAVAILABLE", "Qelos answered 200 without payload.token/refreshToken")
        tokens = TokenPair(access, refresh)
        # The same hook that stores refreshed tokens stores the first pair, so both cookies always match.
        await self.on_token_refresh(
            TokenRefreshContext(
                request=request,
                response=buffer,
                config=self.config,
                old_tokens=TokenPair(),
                new_tokens=tokens,
                context=QelosRequestContext(tokens=tokens.copy(), mode=AuthMode.TOKEN),
            )
        )
        self._clear_cookies(request, buffer, token=False, session=True)

    async def _revoke(self, request: Request) -> bool:
        credentials = read_credentials(request.scope, self.config)
        tokens = TokenPair(credentials.access_token, credentials.refresh_token)
        headers = auth_headers(tokens, credentials.session_cookie, None)
        if not headers:
            return False
        try:
            reply = await self._call("POST", "/api/logout", headers=headers)
        except _Problem as problem:
            logger.warning("sign-out could not reach Qelos (%s); the app's cookies are cleared anyway", problem.message)
            return False
        return reply.status_code == 200

    def _clear_cookies(self, request: Request, buffer: CookieBuffer, *, token: bool, session: bool) -> None:
        secure = request.url.scheme == "https"
        present = request.cookies
        if token:
            for name in (self.config.access_token_cookie, self.config.refresh_token_cookie):
                if name in present:
                    buffer.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
        if session:
            for name in self.config.session_cookie_names:
                if name in present:
                    buffer.delete_cookie(
                        name,
                        path=self.config.session_cookie_path,
                        domain=self.config.session_cookie_domain,
                        secure=secure,
                        httponly=True,
                        samesite="lax",
                    )

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Sign-ins are rare: a short-lived client keeps the router independent of the middleware's pool.
        async with httpx.AsyncClient(
            base_url=self.config.app_url,
            transport=self.config.transport,
            timeout=httpx.Timeout(self.config.timeout),
            headers={"tenant": self.config.tenant},
            cookies=no_cookie_jar(),
            follow_redirects=False,
            trust_env=False,
        ) as http:
            try:
                response = await http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                raise _Problem(
                    503, "QELOS_UNAVAILABLE", f"{method} {path} timed out after {self.config.timeout}s"
                ) from None
            except (httpx.TransportError, OSError) as exc:
                raise _Problem(503, "QELOS_UNAVAILABLE", f"{method} {path} failed: {type(exc).__name__}") from None
        return response

    def _failure(self, problem: _Problem, *, browser: bool, next_path: Optional[str] = None) -> Response:
        if browser and self.login_page is not None and problem.code != "UNSAFE_RETURN_URL":
            query = {"error": problem.code, **({"next": next_path} if next_path else {})}
            return RedirectResponse(f"{self.login_page}?{urlencode(query)}", status_code=303)
        return _error(problem.status, problem.code, problem.message)

    def _check_same_origin(self, request: Request) -> None:
        # Cross-site form posts could sign a victim into someone else's account (login CSRF).
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise _Problem(403, "CROSS_SITE_REQUEST", "sign-in and sign-out accept same-origin requests only")
        origin = request.headers.get("origin")
        if origin is None:
            return
        host = _origin_host(origin)
        if host != request.headers.get("host", "").lower() and host not in self.trusted_origins:
            raise _Problem(403, "CROSS_SITE_REQUEST", "sign-in and sign-out accept same-origin requests only")

    def _callback_url(self, request: Request) -> str:
        if self.callback_url is not None:
            return self.callback_url
        if self.public_url.startswith("/"):
            # Qelos served from this very origin (FakeQelos mounted in the demo): a relative return URL is ours.
            return self._callback_path(request)
        return str(request.url_for(CALLBACK_ROUTE))

    def _callback_path(self, request: Request) -> str:
        return request.url_for(CALLBACK_ROUTE).path


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
        name = route.name
        methods = sorted(route.methods or ())
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=[m for m in methods if m != "HEAD"],
            name=name,
            response_model=None,
            summary=_SUMMARIES[name],
            responses=_RESPONSES[name],
            openapi_extra=_REQUEST_BODIES.get(name),
        )
    return router


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def _secret(secret_key: Optional[str]) -> str:
    key = secret_key if secret_key is not None else os.environ.get(SECRET_ENV)
    if not isinstance(key, str) or not key.strip():
        raise QelosConfigError(
            f"the Qelos auth router signs the OAuth state of social logins and needs a secret key: pass "
            f"secret_key=... or set {SECRET_ENV} (for example to the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), the same in every worker; "
            "or pass providers=() to serve password sign-in only"
        )
    if len(key) < _MIN_SECRET:
        raise QelosConfigError(f"the auth router's secret key must be at least {_MIN_SECRET} characters long")
    return key


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


def _origin_host(origin: str) -> str:
    return urlsplit(origin).netloc.lower() if "://" in origin else origin.lower()


def _is_form(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/x-www-form-urlencoded"


async def _read_fields(request: Request, *, allow_empty: bool = False) -> Tuple[bool, Dict[str, Any]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    too_large = _Problem(413, "BODY_TOO_LARGE", f"the body exceeds {_MAX_BODY} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_BODY:
        raise too_large
    body = b""
    stream = request.stream()
    try:
        async for chunk in stream:
            body += chunk
            if len(body) > _MAX_BODY:
                raise too_large
    finally:
        await stream.aclose()
    if allow_empty and not body.strip():
        return content_type == "application/x-www-form-urlencoded", {}
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise _Problem(400, "INVALID_BODY", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _Problem(422, "INVALID_BODY", "send a JSON object such as {'username': ..., 'password': ...}")
        return False, data
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
        except (UnicodeDecodeError, ValueError):
            raise _Problem(400, "INVALID_BODY", "the form body is not valid UTF-8 urlencoded data") from None
        return True, dict(pairs)
    raise _Problem(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json or application/x-www-form-urlencoded")


def _text(value: Any, *, strip: bool = True) -> Optional[str]:
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        return None
    text = value.strip() if strip else value
    return text if text.strip() else None


def _return_path(value: Any, default: str) -> str:
    if value in (None, ""):
        return default
    path = safe_return_path(value)
    if path is None:
        raise _Problem(400, "UNSAFE_RETURN_URL", "next must be a relative path on this site, such as /dashboard")
    return path


def _payload(reply: httpx.Response, what: str) -> Dict[str, Any]:
    if reply.status_code != 200:
        raise _Problem(503, "QELOS_UNAVAILABLE", f"{what} answered {reply.status_code}{_upstream_message(reply)}")
    try:
        body = reply.json()
    except ValueError:
        raise _Problem(503, "QELOS_UNAVAILABLE", f"{what} answered 200 with a body that is not JSON") from None
    payload = body.get("payload") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        raise _Problem(503, "QELOS_UNAVAILABLE", f"{what} answered 200 without a payload object")
    return payload


def _upstream_message(reply: httpx.Response) -> str:
    try:
        message = reply.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f" ({message[:200]})" if isinstance(message, str) else ""


_ERROR_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            }
        }
    }
}


def _described(**descriptions: str) -> Dict[Any, Dict[str, Any]]:
    return {int(status[1:]): {"description": text, **_ERROR_BODY} for status, text in descriptions.items()}


_SUMMARIES = {
    "qelos_auth_login": "Sign in with a Qelos username and password",
    "qelos_auth_logout": "Sign out of Qelos and clear the app's credential cookies",
    "qelos_auth_social": "Start a Qelos social login (redirects to Qelos)",
    CALLBACK_ROUTE: "Finish a Qelos social login (redirects to the return path)",
}
_RESPONSES: Dict[str, Dict[Any, Dict[str, Any]]] = {
    "qelos_auth_login": {
        303: {"description": "Form sign-in: redirect to `next` (or to `login_page?error=CODE` on failure)."},
        **_described(
            s400="INVALID_BODY or UNSAFE_RETURN_URL",
            s401="INVALID_CREDENTIALS",
            s403="CROSS_SITE_REQUEST",
            s413="BODY_TOO_LARGE",
            s415="UNSUPPORTED_MEDIA_TYPE",
            s422="MISSING_CREDENTIALS or INVALID_BODY",
            s503="QELOS_UNAVAILABLE",
        ),
    },
    "qelos_auth_logout": {
        303: {"description": "Form sign-out: redirect to `next`."},
        **_described(s400="INVALID_BODY or UNSAFE_RETURN_URL", s403="CROSS_SITE_REQUEST"),
    },
    "qelos_auth_social": {
        302: {"description": "Redirect to Qelos, which sends the browser to the provider."},
        **_described(s400="UNSAFE_RETURN_URL", s404="UNKNOWN_PROVIDER"),
    },
    CALLBACK_ROUTE: {
        303: {"description": "Signed in: redirect to the return path kept in the signed state."},
        **_described(
            s400="INVALID_OAUTH_STATE, OAUTH_STATE_EXPIRED, OAUTH_STATE_MISMATCH or MISSING_RT",
            s401="SOCIAL_LOGIN_REJECTED",
            s503="QELOS_UNAVAILABLE",
        ),
    },
}
_CREDENTIALS_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "Qelos username (or send `email`)"},
        "password": {"type": "string", "format": "password"},
        "workspace": {"type": "string", "description": "Optional id of the workspace to sign in to"},
        "next": {"type": "string", "description": "Relative path to redirect a form post to"},
    },
}
_NEXT_SCHEMA = {"type": "object", "properties": {"next": _CREDENTIALS_SCHEMA["properties"]["next"]}}  # type: ignore[index]
_REQUEST_BODIES: Dict[str, Dict[str, Any]] = {
    name: {
        "requestBody": {
            "required": name == "qelos_auth_login",
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }
    for name, schema in (("qelos_auth_login", _CREDENTIALS_SCHEMA), ("qelos_auth_logout", _NEXT_SCHEMA))
}
