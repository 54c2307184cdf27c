"""Errors of the integrator; each carries a stable ``code``::

QelosError                    base
├── QelosUnauthorized         UNAUTHORIZED: Qelos rejected the credential (401/403)
├── QelosUnavailable          QELOS_UNAVAILABLE: no usable answer (network, timeout, 5xx, bad body)
└── WorkspaceSwitchError      WORKSPACE_SWITCH_NEEDS_SESSION: Qelos activates workspaces
                              for session-cookie callers only
"""

from __future__ import annotations


class QelosError(Exception):
    """Base of the integrator's errors."""

    code = "QELOS_ERROR"


class QelosUnauthorized(QelosError):
    """Qelos rejected the credential, or there was none to send."""

    code = "UNAUTHORIZED"


class QelosUnavailable(QelosError):
    """Qelos could not be reached, timed out, or answered with an error or an unusable body."""

    code = "QELOS_UNAVAILABLE"


class WorkspaceSwitchError(QelosError):
    """The caller's credential cannot carry a different active workspace."""

    code = "WORKSPACE_SWITCH_NEEDS_SESSION"
