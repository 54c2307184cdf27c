from __future__ import annotations

import hmac
import os
import secrets
from typing import Optional, Tuple

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ._config import QelosConfigError
from ._problem import Problem
from ._return_path import safe_return_path

SECRET_ENV = "QELOS_INTEGRATOR_SECRET"
STATE_COOKIE = "qelos_oauth_state"
CALLBACK_ROUTE = "qelos_auth_callback"
STATE_SALT = "qelos-integrator-oauth-state"

_MIN_SECRET = 16


class OAuthState:
    def __init__(self, secret_key: Optional[str], max_age: int) -> None:
        self._serializer = URLSafeTimedSerializer(_secret(secret_key), salt=STATE_SALT)
        self._max_age = max_age

    def sign(self, provider: str, return_to: str) -> Tuple[str, str]:
        nonce = secrets.token_urlsafe(24)
        return self._serializer.dumps({"n": nonce, "p": provider, "r": return_to}), nonce

    def set_cookie(self, request: Request, response: Response, nonce: str) -> None:
        # Double-submit: the signed state names a nonce that only this browser holds, in an HttpOnly cookie.
        response.set_cookie(
            STATE_COOKIE,
            nonce,
            max_age=self._max_age,
            path=callback_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )

    def verify(self, request: Request) -> str:
        state = request.query_params.get("state")
        if not state:
            raise Problem(400, "INVALID_OAUTH_STATE", "the callback carries no state; start again from the login page")
        try:
            data = self._serializer.loads(state, max_age=self._max_age)
        except SignatureExpired:
            raise Problem(400, "OAUTH_STATE_EXPIRED", "the social login took too long; start again") from None
        except BadData:
            raise Problem(400, "INVALID_OAUTH_STATE", "the state is not one this app signed") from None
        nonce = data.get("n") if isinstance(data, dict) else None
        return_to = safe_return_path(data.get("r")) if isinstance(data, dict) else None
        if not isinstance(nonce, str) or return_to is None:
            raise Problem(400, "INVALID_OAUTH_STATE", "the state is not one this app signed")
        cookie = request.cookies.get(STATE_COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), nonce.encode()):
            raise Problem(400, "OAUTH_STATE_MISMATCH", "this social login was not started in this browser; start again")
        return return_to

    def delete_cookie(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            STATE_COOKIE,
            path=callback_path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",
        )


def callback_path(request: Request) -> str:
    return request.url_for(CALLBACK_ROUTE).path


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
