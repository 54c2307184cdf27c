from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl

from ._store import PropertySpec

_CONTROL_KEYS = {"$populate", "$sort", "$limit", "$page", "$outerPopulate", "$flat", "$q", "$qProps", "bypassAdmin"}
_BRACKETED = re.compile(r"^([^\[\]]+)\[(\$[A-Za-z]+)\]$")
_LEADING_INT = re.compile(r"^\s*([+-]?\d+)")
_DEFAULT_LIMIT = 1000


class UnsupportedQuery(ValueError):
    """A query Mongo would reject, such as the unknown top-level operators `$skip` and `$select`."""


@dataclass
class Condition:
    path: str
    operator: str
    value: Any

    def holds(self, document: Mapping[str, Any]) -> bool:
        actual = _lookup(document, self.path)
        if self.operator == "$eq":
            return _equal(actual, self.value)
        if self.operator == "$ne":
            return not _equal(actual, self.value)
        if self.operator == "$regex":
            return isinstance(actual, str) and self.value.search(actual) is not None
        return _compare(actual, self.operator, self.value)


@dataclass
class EntityQuery:
    conditions: List[Condition] = field(default_factory=list)
    search: List[Condition] = field(default_factory=list)
    sort: List[Tuple[str, bool]] = field(default_factory=list)
    limit: Optional[int] = None
    skip: int = 0

    def matches(self, document: Mapping[str, Any]) -> bool:
        if not all(condition.holds(document) for condition in self.conditions):
            return False
        return not self.search or any(condition.holds(document) for condition in self.search)

    def select(self, documents: Iterable[Dict[str, Any]]) -> List[Dict[str, Any]]:
        found = [document for document in documents if self.matches(document)]
        for path, descending in reversed(self.sort):
            found.sort(key=lambda document: _sort_key(_lookup(document, path)), reverse=descending)
        end = None if self.limit is None else self.skip + self.limit
        return found[self.skip : end]


def parse_entity_query(query_string: str, properties: Mapping[str, PropertySpec]) -> EntityQuery:
    """No-code's list query: `$sort`, `$limit`, `$page`, `$q`, and any other key as a Mongo filter."""
    params: Dict[str, str] = dict(parse_qsl(query_string, keep_blank_values=True))
    query = EntityQuery(sort=_sort(params.get("$sort") or "created", properties))
    for key, raw in params.items():
        if key in _CONTROL_KEYS:
            continue
        bracketed = _BRACKETED.match(key)
        name, operator = (bracketed.group(1), bracketed.group(2)) if bracketed else (key, "$eq")
        if name.startswith("$"):
            raise UnsupportedQuery(f"unknown top level operator: {name}")
        spec = properties.get(name)
        path = f"metadata.{name}" if spec else name
        if operator == "$regex":
            options = params.get(f"{name}[$options]", "i")
            query.conditions.append(Condition(path, operator, _regex(raw, options)))
        elif operator in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            query.conditions.append(Condition(path, operator, _coerce(raw, spec)))
        elif operator != "$options":
            raise UnsupportedQuery(f"unknown operator: {operator}")
    if params.get("$q"):
        pattern = _regex(params["$q"], "i")
        searched = params.get("$qProps", "").split(",") if params.get("$qProps") else _default_search(properties)
        query.search = [Condition(f"metadata.{name}", "$regex", pattern) for name in searched if name]
    limit = _parse_int(params.get("$limit")) or _DEFAULT_LIMIT if params.get("$limit") else None
    if params.get("$page"):
        page = _parse_int(params["$page"]) or 1
        limit = abs(limit) if limit else _DEFAULT_LIMIT
        query.skip = max(page - 1, 0) * limit
    query.limit = abs(limit) if limit else None
    return query


def _sort(value: str, properties: Mapping[str, PropertySpec]) -> List[Tuple[str, bool]]:
    keys = []
    for word in re.split(r"[\s,]+", value.strip()):
        if not word:
            continue
        descending = word.startswith("-")
        name = word.lstrip("-+")
        keys.append((f"metadata.{name}" if name in properties else name, descending))
    return keys


def _default_search(properties: Mapping[str, PropertySpec]) -> List[str]:
    return [name for name, spec in properties.items() if spec.type == "string" and spec.required][:3]


def _coerce(raw: str, spec: Optional[PropertySpec]) -> Any:
    if spec is None:
        return raw
    if spec.type == "boolean":
        return raw.lower() in ("true", "1")
    if spec.type == "number":
        return _parse_int(raw)
    return raw


def _parse_int(raw: Optional[str]) -> Optional[int]:
    """JavaScript's `parseInt`; None stands for NaN."""
    match = _LEADING_INT.match(raw or "")
    return int(match.group(1)) if match else None


def _regex(pattern: str, options: str) -> re.Pattern[str]:
    flags = re.IGNORECASE if "i" in options else 0
    try:
        return re.compile(pattern, flags)
    except re.error:
        raise UnsupportedQuery(f"invalid regular expression: {pattern}") from None


def _lookup(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list) and not isinstance(expected, list):
        return any(_equal(item, expected) for item in actual)
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return bool(actual == expected)


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    numbers = (int, float)
    comparable = (
        isinstance(actual, numbers)
        and isinstance(expected, numbers)
        and not isinstance(actual, bool)
        and not isinstance(expected, bool)
    ) or (isinstance(actual, str) and isinstance(expected, str))
    if not comparable:
        return False
    if operator == "$gt":
        return bool(actual > expected)
    if operator == "$gte":
        return bool(actual >= expected)
    if operator == "$lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def _sort_key(value: Any) -> Tuple[int, Any]:
    # Mongo's BSON order across types: null, numbers, strings, objects, arrays, booleans.
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (5, value)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, dict):
        return (3, str(value))
    return (4, str(value))
