from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Dict, List, Literal, Mapping, Optional, Union

from ._identity import Caller
from ._store import Blueprint, PropertySpec

Scopes = Union[Literal[True], List[str]]
OPERATIONS = ("create", "read", "update", "delete")
PROPERTY_TYPES = ("string", "number", "boolean", "date", "datetime", "time", "object", "file")


class InvalidEntity(ValueError):
    """A metadata value no-code's `validateValue` rejects; answered with 406."""


def default_permissions(scope: str) -> List[Dict[str, Any]]:
    """Every operation for holders of the default `user` role, at the blueprint's scope."""
    return [{"scope": scope, "operation": operation, "roleBased": ["user"]} for operation in OPERATIONS]


def permitted_scopes(caller: Optional[Caller], blueprint: Blueprint, operation: str, bypass_admin: bool) -> Scopes:
    """`getUserPermittedScopes`: True for admins, else the scopes of the matching permission entries."""
    roles = caller.roles if caller else []
    if not bypass_admin and "admin" in roles:
        return True
    workspace = (caller.workspace if caller else None) or {}
    workspace_roles = workspace.get("roles")
    workspace_labels = workspace.get("labels")
    if not isinstance(workspace_labels, list):
        workspace_labels = []
    scopes: List[str] = []
    for entry in blueprint.permissions:
        if entry.get("operation") != operation:
            continue
        if not entry.get("guest"):
            labels = entry.get("workspaceLabelsBased") or []
            if labels and not any(label == "*" or label in workspace_labels for label in labels):
                continue
            by_role = any(role == "*" or role in roles for role in entry.get("roleBased") or [])
            by_workspace_role = isinstance(workspace_roles, list) and any(
                role == "*" or role in workspace_roles for role in entry.get("workspaceRoleBased") or []
            )
            if not (by_role or by_workspace_role):
                continue
        scope = entry.get("scope") or "user"
        if scope not in scopes:
            scopes.append(scope)
    return scopes


def valid_metadata(metadata: Mapping[str, Any], blueprint: Blueprint) -> Dict[str, Any]:
    """`getValidBlueprintMetadata`: only blueprint properties survive, each validated."""
    valid: Dict[str, Any] = {}
    for key, spec in blueprint.properties.items():
        value = metadata.get(key)
        if spec.multi:
            if spec.required and not isinstance(value, list):
                raise InvalidEntity(f"Property {key} must be an array")
            for item in value if isinstance(value, list) else []:
                _validate(key, item, spec)
        else:
            _validate(key, value if key in metadata else _MISSING, spec)
        if key in metadata:
            valid[key] = value
    return valid


_MISSING = object()


def _validate(key: str, value: Any, spec: PropertySpec) -> None:
    if value is _MISSING:
        if not spec.required:
            return
        value = None
    problem = _type_problem(value, spec.type)
    if problem:
        raise InvalidEntity(f"Property {key} must be {problem}")
    if spec.enum and value not in spec.enum:
        raise InvalidEntity(f"Property {key} must be one of {', '.join(str(option) for option in spec.enum)}")
    if spec.min is not None and _is_number(value) and value < spec.min:
        raise InvalidEntity(f"Property {key} must be greater than {spec.min}")
    if spec.max is not None and _is_number(value) and value > spec.max:
        raise InvalidEntity(f"Property {key} must be less than {spec.max}")
    if spec.required and not value:
        raise InvalidEntity(f"Property {key} is required")


def _type_problem(value: Any, kind: str) -> Optional[str]:
    if kind == "number" and _is_nan(value):
        return "a number"
    if kind == "boolean" and not isinstance(value, bool):
        return "a boolean"
    if kind == "string" and not isinstance(value, str):
        return "a string"
    if kind == "object" and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
        return "a valid object"
    if kind in ("date", "datetime") and not _is_date(value):
        return f"a {kind}"
    if kind == "time" and not _is_time(value):
        return "a time"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_nan(value: Any) -> bool:
    """JavaScript's `isNaN(value)`, for the JSON values a body can carry."""
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isnan(value)
    if isinstance(value, str):
        if not value.strip():
            return False
        try:
            return math.isnan(float(value))
        except ValueError:
            return True
    if isinstance(value, list):
        return len(value) > 1 or (len(value) == 1 and _is_nan(value[0]))
    return True


def _is_date(value: Any) -> bool:
    if _is_number(value):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_time(value: Any) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    hours, minutes = value.split(":")[:2]
    return hours.strip().lstrip("+-").isdigit() and minutes.strip()[:2].isdigit()
