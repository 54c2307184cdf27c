from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

from starlette.requests import Request
from starlette.responses import Response

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class Problem(Exception):
    """Raised by a handler to answer with `response` instead of continuing."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class Unanswered(Exception):
    """Raised by a handler where Qelos never answers: the connection is dropped instead."""


def json_response(body: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, headers={"content-type": JSON_CONTENT_TYPE, **(headers or {})})


def message(status: int, text: str, **extra: Any) -> Response:
    return json_response({"message": text, **extra}, status)


def empty(status: int) -> Response:
    """Express's `res.status(n).end()`: no body and no content type."""
    return Response(status_code=status)


async def json_object(request: Request) -> Dict[str, Any]:
    """The request body as body-parser leaves it in `req.body`: `{}` unless a JSON object was sent."""
    if "json" not in request.headers.get("content-type", ""):
        return {}
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    # body-parser's strict mode accepts only objects and arrays.
    if not isinstance(data, (dict, list)):
        raise Problem(message(400, "invalid JSON body"))
    return data if isinstance(data, dict) else {}
