from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

logger = logging.getLogger("qelos_integrator_fastapi")

# Event names, stable for metrics.
IDENTITY_RESOLVED = "identity_resolved"
IDENTITY_ANONYMOUS = "identity_anonymous"
CACHE_HIT = "cache_hit"
CACHE_MISS = "cache_miss"
TOKEN_REFRESHED = "token_refreshed"
REFRESH_REJECTED = "refresh_rejected"
UPSTREAM_ERROR = "upstream_error"
# Not tied to a request (mode and path are empty): Redis (QelosConfig.redis_url) failed, or answers again.
REDIS_UNAVAILABLE = "redis_unavailable"
REDIS_RECOVERED = "redis_recovered"


@dataclass(frozen=True)
class QelosEvent:
    """One thing the integrator did for a request; never carries a credential."""

    name: str
    mode: str
    path: str
    user_id: Optional[str] = None
    code: Optional[str] = None
    detail: Optional[str] = None


OnEvent = Callable[[QelosEvent], None]


def emit(hook: Optional[OnEvent], event: QelosEvent) -> None:
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        # A metrics hook must never break authentication.
        logger.exception("on_event hook raised for %s", event.name)
