from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Optional


@dataclass(frozen=True)
class Endpoint:
    """`"POST /api/token/refresh"` or `"/api/me"` (any method); `*` in the path matches anything."""

    method: Optional[str]
    path: str

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        method, _, path = text.strip().partition(" ")
        if not path:
            method, path = "", method
        if not path.startswith("/"):
            raise ValueError(f"endpoint {text!r} must look like 'POST /api/token/refresh' or '/api/me'")
        return cls(method.upper() or None, path.strip())

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return fnmatchcase(path, self.path)
