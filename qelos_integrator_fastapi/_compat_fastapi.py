"""4.0.1's FastAPI-only names (pydantic models and dependencies), deprecated; see _compat.py."""

from __future__ import annotations

from typing import Any, List, Optional

from fastapi import HTTPException
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from qelos_sdk import QelosSDK
from starlette.requests import HTTPConnection

from ._dependencies import _context


class QelosUser(BaseModel):
    """4.0.1's typed view of ``GET /api/me``: what ``get_qelos_user`` returns."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str] = Field(default=None, validation_alias=AliasChoices("_id", "id"))
    username: Optional[str] = None
    email: Optional[str] = None
    full_name: Optional[str] = Field(default=None, validation_alias=AliasChoices("fullName", "full_name"))
    first_name: Optional[str] = Field(default=None, validation_alias=AliasChoices("firstName", "first_name"))
    last_name: Optional[str] = Field(default=None, validation_alias=AliasChoices("lastName", "last_name"))
    birth_date: Optional[str] = Field(default=None, validation_alias=AliasChoices("birthDate", "birth_date"))
    roles: Optional[List[Any]] = None
    metadata: Optional[Any] = None


class QelosWorkspace(BaseModel):
    """4.0.1's typed view of a workspace."""

    model_config = ConfigDict(extra="allow")

    id: Optional[str] = Field(default=None, validation_alias=AliasChoices("_id", "id"))
    name: Optional[str] = None
    labels: Optional[List[Any]] = None


# Plain functions, as in 4.0.1, so code that called them directly keeps working.
def get_qelos_user(request: HTTPConnection) -> QelosUser:
    """4.0.1's dependency: the signed-in user as a QelosUser model; 401 ``{"code": "UNAUTHORIZED"}`` otherwise."""
    ctx = _context(request)
    if ctx is None or ctx.user is None:
        raise HTTPException(status_code=401, detail={"code": "UNAUTHORIZED"})
    return QelosUser.model_validate(ctx.user)


def get_qelos_sdk(request: HTTPConnection) -> QelosSDK:
    """4.0.1's dependency: the request's SDK; 500 ``QELOS_MIDDLEWARE_MISSING`` where the middleware did not run."""
    ctx = _context(request)
    if ctx is None:
        raise HTTPException(status_code=500, detail={"code": "QELOS_MIDDLEWARE_MISSING"})
    return ctx.sdk
