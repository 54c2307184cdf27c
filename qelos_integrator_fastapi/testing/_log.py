from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from starlette.requests import Request

from ._endpoint import Endpoint


@dataclass(frozen=True)
class LoggedRequest:
    """A request FakeQelos received; `status` is None when a fault dropped the connection."""

    method: str
    path: str
    query: str
    headers: Dict[str, str]
    status: Optional[int]


class RequestLog:
    def __init__(self) -> None:
        self._entries: List[LoggedRequest] = []

    @property
    def entries(self) -> List[LoggedRequest]:
        return list(self._entries)

    def record(self, request: Request, status: Optional[int]) -> None:
        headers: Dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        entry = LoggedRequest(request.method, request.url.path, request.url.query, headers, status)
        self._entries.append(entry)

    def count(self, endpoint: str) -> int:
        wanted = Endpoint.parse(endpoint)
        return sum(1 for entry in self._entries if wanted.matches(entry.method, entry.path))

    def reset(self) -> None:
        self._entries.clear()
