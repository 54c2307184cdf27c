from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qsl

from starlette.requests import Request

from ._problem import Problem

_MAX_BODY = 64 * 1024
_MAX_FIELD = 1024
_FORM = "application/x-www-form-urlencoded"


def is_form(request: Request) -> bool:
    return _media_type(request) == _FORM


async def read_fields(request: Request, *, allow_empty: bool = False) -> Tuple[bool, Dict[str, Any]]:
    content_type = _media_type(request)
    body = await _read_body(request)
    if allow_empty and not body.strip():
        return content_type == _FORM, {}
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            raise Problem(400, "INVALID_BODY", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise Problem(422, "INVALID_BODY", "send a JSON object such as {'username': ..., 'password': ...}")
        return False, data
    if content_type == _FORM:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
        except (UnicodeDecodeError, ValueError):
            raise Problem(400, "INVALID_BODY", "the form body is not valid UTF-8 urlencoded data") from None
        return True, dict(pairs)
    raise Problem(415, "UNSUPPORTED_MEDIA_TYPE", "send application/json or application/x-www-form-urlencoded")


def sign_in_fields(fields: Dict[str, Any]) -> Tuple[str, str, Optional[str]]:
    username = _text(fields.get("username")) or _text(fields.get("email"))
    password = _text(fields.get("password"), strip=False)
    if username is None or password is None:
        raise Problem(422, "MISSING_CREDENTIALS", "send a non-empty username (or email) and password")
    workspace = fields.get("workspace")
    if workspace not in (None, "") and _text(workspace) is None:
        raise Problem(422, "INVALID_BODY", "workspace must be a workspace id")
    return username, password, workspace or None


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_body(request: Request) -> bytes:
    too_large = Problem(413, "BODY_TOO_LARGE", f"the body exceeds {_MAX_BODY} bytes")
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
    return body


def _text(value: Any, *, strip: bool = True) -> Optional[str]:
    if not isinstance(value, str) or len(value) > _MAX_FIELD:
        return None
    text = value.strip() if strip else value
    return text if text.strip() else None
