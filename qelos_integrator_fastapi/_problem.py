from __future__ import annotations

from starlette.responses import JSONResponse

from ._errors import QelosUnavailable


class Problem(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def unavailable(cls, error: QelosUnavailable) -> Problem:
        return cls(503, error.code, str(error))

    def response(self) -> JSONResponse:
        headers = {"Retry-After": "5"} if self.status == 503 else None
        return JSONResponse({"code": self.code, "message": self.message}, status_code=self.status, headers=headers)
