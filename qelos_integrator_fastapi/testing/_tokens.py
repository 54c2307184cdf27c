from __future__ import annotations

import base64
import secrets
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote, unquote

try:
    import jwt
except ModuleNotFoundError as exc:  # pragma: no cover - tested in a subprocess
    raise ModuleNotFoundError(
        "FakeQelos signs real JWTs with PyJWT, which comes with the testing extra: "
        "pip install 'qelos-integrator-fastapi[testing]'",
        name=exc.name,
    ) from exc

from ._clock import FakeClock
from ._models import FakeUser, FakeWorkspace
from ._settings import Settings

_ALGORITHM = "HS256"
# The clock is checked by hand: PyJWT would compare exp and iat with wall time.
_DECODE_OPTIONS: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


def uri_encode(value: str) -> str:
    """`encodeURIComponent`, which Qelos applies to names inside JWT claims."""
    return quote(value, safe="!~*'()")


def uri_decode(value: str) -> str:
    return unquote(value)


def workspace_claim(workspace: FakeWorkspace, roles: List[str]) -> Dict[str, Any]:
    return {
        "_id": workspace.id,
        "name": uri_encode(workspace.name),
        "roles": list(roles),
        "labels": list(workspace.labels),
    }


def user_claims(
    user: FakeUser,
    tenant: str,
    *,
    workspace: Optional[Mapping[str, Any]] = None,
    token_identifier: Optional[str] = None,
) -> Dict[str, Any]:
    claims: Dict[str, Any] = {"sub": user.id, "tenant": tenant}
    if workspace is not None:
        claims["workspace"] = dict(workspace)
    claims["username"] = user.username
    claims["email"] = user.email
    optional = {
        "phone": user.phone,
        "fullName": uri_encode(user.full_name) if user.full_name else None,
        "firstName": uri_encode(user.first_name) if user.first_name else None,
        "lastName": uri_encode(user.last_name) if user.last_name else None,
    }
    claims.update({key: value for key, value in optional.items() if value is not None})
    claims["roles"] = list(user.roles)
    if user.profile_image:
        claims["profileImage"] = user.profile_image
    if token_identifier is not None:
        claims["tokenIdentifier"] = token_identifier
    return claims


class TokenSigner:
    def __init__(self, settings: Settings, clock: FakeClock) -> None:
        self._settings = settings
        self._clock = clock

    def sign_access(self, claims: Mapping[str, Any], ttl: float) -> str:
        return self._sign(claims, ttl, self._settings.jwt_secret)

    def sign_refresh(self, *, user_id: str, tenant: str, workspace_id: Optional[str], token_identifier: str) -> str:
        claims: Dict[str, Any] = {"sub": user_id, "tenant": tenant}
        if workspace_id is not None:
            claims["workspace"] = workspace_id
        claims["tokenIdentifier"] = token_identifier
        return self._sign(claims, self._settings.refresh_token_ttl, self._settings.refresh_token_secret)

    def verify_access(self, token: str) -> Optional[Dict[str, Any]]:
        return self._verify(token, self._settings.jwt_secret)

    def verify_refresh(self, token: str) -> Optional[Dict[str, Any]]:
        return self._verify(token, self._settings.refresh_token_secret)

    def new_token_identifier(self) -> str:
        millis = int(self._clock.now() * 1000)
        random_text = f"0.{secrets.randbelow(10**16):016d}"
        return f"{millis}:{base64.b64encode(random_text.encode()).decode()}"

    def identifier_age(self, identifier: Any) -> Optional[float]:
        if not isinstance(identifier, str):
            return None
        millis, _, _ = identifier.partition(":")
        if not millis.isdigit():
            return None
        return self._clock.now() - int(millis) / 1000

    def _sign(self, claims: Mapping[str, Any], ttl: float, secret: str) -> str:
        issued_at = int(self._clock.now())
        payload = {**claims, "iat": issued_at, "exp": issued_at + int(ttl)}
        return jwt.encode(payload, secret, algorithm=_ALGORITHM)

    def _verify(self, token: str, secret: str) -> Optional[Dict[str, Any]]:
        try:
            payload = jwt.decode(token, secret, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.PyJWTError:
            return None
        expires = payload.get("exp")
        if not isinstance(expires, (int, float)) or expires <= self._clock.now():
            return None
        if not isinstance(payload.get("sub"), str):
            return None
        return payload
