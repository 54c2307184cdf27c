"""Errors of the integrator; each carries a stable ``code``::

QelosError                    base
├── QelosUnauthorized         UNAUTHORIZED: Qelos rejected the credential (401/403)
├── QelosUnavailable          QELOS_UNAVAILABLE: no usable answer (network, timeout, 5xx, bad body)
└── WorkspaceSwitchError      WORKSPACE_SWITCH_NEEDS_SESSION: Qelos activates workspaces
                              for session-cookie callers only
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple


class QelosError(Exception):
    """Base of the integrator's errors."""

    code = "QELOS_ERROR"
    # Set-Cookie headers Qelos sent with an answer that failed (a session rotation it made anyway).
    set_cookies: Sequence[str] = ()


class QelosUnauthorized(QelosError):
    """Qelos rejected the credential, or there was none to send."""

    code = "UNAUTHORIZED"


class QelosUnavailable(QelosError):
    """Qelos could not be reached, timed out, or answered with an error or an unusable body."""

    code = "QELOS_UNAVAILABLE"


class WorkspaceSwitchError(QelosError):
    """The caller's credential cannot carry a different active workspace."""

    code = "WORKSPACE_SWITCH_NEEDS_SESSION"


UNAVAILABLE_MESSAGE = "Qelos could not be asked who is calling (unreachable, slow or an unusable answer); retry shortly"


def refusal(error: Optional[str]) -> Tuple[int, Dict[str, str], Dict[str, str]]:
    """How to refuse a request that resolved no user: ``(status, body, headers)``.

    503 QELOS_UNAVAILABLE (``{"code", "message"}``, ``Retry-After``) when Qelos could not be asked,
    else 401 ``{"code": "UNAUTHORIZED"}`` with ``WWW-Authenticate: Bearer``, the body the spec fixes.
    """
    if error == QelosUnavailable.code:
        return 503, {"code": QelosUnavailable.code, "message": UNAVAILABLE_MESSAGE}, {"Retry-After": "5"}
    return 401, {"code": QelosUnauthorized.code}, {"WWW-Authenticate": "Bearer"}
