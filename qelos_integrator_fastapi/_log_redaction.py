"""Secrets never reach a log record of a logger the integrator drives: ours, httpx's and httpcore's.

httpx logs every request URL at INFO (Qelos puts single-use refresh tokens in query strings:
``/api/auth/callback?rt=...``), and httpcore logs every response's headers at DEBUG, Set-Cookie
included (the 30-day ``qlt_<tenant>`` session JWT on every sign-in and rotation). A filter on each of
those loggers rewrites a record whose message carries a credential; the loggers stay enabled.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import FrozenSet

MASK = "[redacted]"

# Logger filters only see records created on that very logger, not on its children: name them all.
_FAMILIES = ("httpx", "httpcore", "httpx2", "httpcore2")
_CHILDREN = ("connection", "connection_pool", "http11", "http2", "proxy", "socks")
LOGGERS = (
    "qelos_integrator_fastapi",
    # The app server's access log prints the query string of /auth/callback?rt=<refresh token>.
    "uvicorn.access",
    "gunicorn.access",
    "hypercorn.access",
    *_FAMILIES,
    *(f"{family}.{child}" for family in _FAMILIES if family.startswith("httpcore") for child in _CHILDREN),
)

_PATTERNS = (
    # Values of credential headers in header dumps: (b'set-cookie', b'qlt_0=...'), ('authorization', '...').
    (
        re.compile(
            r"""(?i)((?:set-cookie|cookie|authorization|proxy-authorization|x-api-key)['"]?\s*[,:=]\s*(?:(?-i:b)?['"])?)"""
            r"""[^'"\]\)\r\n]+"""
        ),
        rf"\g<1>{MASK}",
    ),
    # Credentials in query strings.
    (
        re.compile(r"(?i)([?&](?:rt|token|refreshToken|refresh_token|access_token|api_key|apiToken)=)[^&#\s'\"]+"),
        r"\1***",
    ),
    (re.compile(r"(?i)(\bbearer\s+)[^\s'\",;]+"), rf"\g<1>{MASK}"),
    # Any JWT (Qelos access, refresh and session tokens are JWTs), wherever else it appears.
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), MASK),
)

_lock = threading.Lock()
# Replaced, never mutated: a filter iterating it in one thread never sees it change size.
_known: FrozenSet[str] = frozenset()


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in _known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def add_secret(secret: str) -> None:
    """A configured secret (an API token) that is masked wherever it appears, whatever its format."""
    global _known
    with _lock:
        _known = _known | {secret}


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Arguments are masked one by one first, so that formatters that read them keep their shape
        # (uvicorn's access formatter unpacks five); the formatted message is the final check.
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed record is the logging module's to report
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _masked(arg: object) -> object:
    if arg is None or isinstance(arg, (int, float)):
        return arg
    text = str(arg)
    masked = redact(text)
    return arg if masked == text else masked


def install() -> None:
    """Idempotent: one RedactSecrets filter on each logger of LOGGERS and on any child of theirs that exists."""
    existing = [name for name in list(logging.Logger.manager.loggerDict) if name.startswith(LOGGERS)]
    for name in {*LOGGERS, *existing}:
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in target.filters):
            target.addFilter(RedactSecrets())
