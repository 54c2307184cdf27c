from __future__ import annotations

import logging
import re
from typing import Any

import httpx

# Qelos puts single-use refresh tokens in query strings (/api/auth/callback?rt=...), and httpx logs
# every request URL at INFO: mask those values in httpx's records.
_SECRET_PARAMS = re.compile(r"(?i)([?&](?:rt|token|refreshToken|access_token)=)[^&#\s]+")


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\1***", text)


class _RedactSecretParams(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(arg: Any) -> Any:
    if isinstance(arg, (httpx.URL, str)):
        text = str(arg)
        masked = redact(text)
        return masked if masked != text else arg
    return arg


def install() -> None:
    """Idempotent: one filter on the ``httpx`` logger."""
    target = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactSecretParams) for f in target.filters):
        target.addFilter(_RedactSecretParams())
