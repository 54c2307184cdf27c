from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

from starlette.responses import Response

from ._endpoint import Endpoint
from ._http import JSON_CONTENT_TYPE, empty, json_response

_MALFORMED_JSON = b'{"payload": {"token": "truncated'


@dataclass
class Fault:
    endpoint: Endpoint
    status: Optional[int]
    body: Any
    latency: float
    malformed: bool
    drop: bool
    remaining: Optional[int]

    @property
    def replaces_response(self) -> bool:
        return self.malformed or self.status is not None or self.body is not None

    def response(self) -> Response:
        if self.malformed:
            return Response(_MALFORMED_JSON, headers={"content-type": JSON_CONTENT_TYPE})
        status = 200 if self.status is None else self.status
        if self.body is None:
            return empty(status)
        if isinstance(self.body, str):
            return Response(self.body, status_code=status, media_type="text/plain")
        return json_response(self.body, status)


class FaultPlan:
    """Faults injected per endpoint; the most recently injected matching fault applies."""

    def __init__(self) -> None:
        self._faults: List[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.latency < 0:
            raise ValueError("latency must be a non-negative number of seconds")
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be at least 1, or None for 'until clear_faults()'")
        if fault.drop and fault.replaces_response:
            raise ValueError("drop=True cannot be combined with status, body or malformed")
        self._faults.append(fault)

    def take(self, method: str, path: str) -> Optional[Fault]:
        for fault in reversed(self._faults):
            if fault.endpoint.matches(method, path):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()
