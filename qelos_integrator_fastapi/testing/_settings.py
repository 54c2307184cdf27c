from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Tuple

# PyJWT warns about HMAC keys shorter than 32 bytes, so the fake does not use Qelos's short defaults.
DEFAULT_JWT_SECRET = "fake-qelos-jwt-secret-for-tests-only!"
DEFAULT_REFRESH_TOKEN_SECRET = "fake-qelos-refresh-secret-for-tests-only!"
# Qelos's BASIC_TENANT: the gateway's tenant for a request on its default host without a `tenant` header.
BASIC_TENANT = "0"


@dataclass(frozen=True)
class Settings:
    tenant: str
    url: str
    access_token_ttl: float
    refresh_token_ttl: float
    cookie_token_ttl: float
    cookie_rotation_after: float
    website_urls: Tuple[str, ...]
    jwt_secret: str
    refresh_token_secret: str
    # Host name (lower case, no port) -> tenant, for hosts that are a tenant's own domain.
    hosts: Mapping[str, str]
    privileged_roles: Tuple[str, ...] = ("admin",)
    default_role: str = "user"
    rotation_lock_ttl: float = 30.0
