from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from starlette.responses import Response

from ._call import Call
from ._entity_query import EntityQuery, UnsupportedQuery, parse_entity_query
from ._entity_rules import InvalidEntity, Scopes, permitted_scopes, valid_metadata
from ._http import Problem, empty, json_response, message
from ._identity import Caller, gateway_user
from ._ids import iso_time, uuid7
from ._store import Blueprint, EntityRecord

_DEPRECATION_HEADERS = {
    "deprecation": "true",
    "link": '<https://docs.qelos.io/api/blueprint-entities#flat-response-shape>; rel="deprecation"; type="text/html"',
}


async def list_entities(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    query, records = _readable(call, caller, blueprint)
    selected = query.select(entity_document(record) for record in records)
    flat = _is_flat(call)
    return _entity_json(call, [_shape(document, flat, with_version=False) for document in selected])


async def count_entities(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    if caller is None:
        return empty(401)
    query, records = _readable(call, caller, blueprint)
    query.limit, query.skip = None, 0
    return json_response({"count": len(query.select(entity_document(record) for record in records))})


def _readable(call: Call, caller: Optional[Caller], blueprint: Blueprint) -> Tuple[EntityQuery, List[EntityRecord]]:
    """The list query of the request and the records the caller may read (list and count share it)."""
    scopes = _require_scopes(caller, blueprint, "read", _bypass_admin(call))
    try:
        records = _visible(call, caller, blueprint, scopes)
        query = parse_entity_query(call.request.url.query, blueprint.properties)
    except UnsupportedQuery:
        raise Problem(message(500, "something went wrong with entities")) from None
    return query, records


async def get_entity(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    scopes = _require_scopes(caller, blueprint, "read", _bypass_admin(call))
    record = _find(call, caller, blueprint, scopes, "something went wrong with entity")
    return _entity_json(call, _shape(entity_document(record), _is_flat(call), with_version=True))


async def create_entity(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    body = await call.body()
    scopes = _require_scopes(caller, blueprint, "create", _bypass_admin(call, body))
    user = caller.user_id if caller else None
    workspace = _workspace_id(caller)
    if scopes is True:
        user = str(body["user"]) if body.get("user") else user
        workspace = str(body["workspace"]) if body.get("workspace") else workspace
    try:
        metadata = valid_metadata(_metadata_of(body, blueprint), blueprint)
    except InvalidEntity as invalid:
        return message(406, str(invalid))
    created = iso_time(call.now)
    record = EntityRecord(call.tenant, uuid7(call.now), blueprint.key, user, workspace, metadata, created, created)
    call.store.entities.setdefault(blueprint.key, {})[record.identifier] = record
    return _entity_json(call, _shape(entity_document(record), _is_flat(call), with_version=True))


async def update_entity(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    body = await call.body()
    scopes = _require_scopes(caller, blueprint, "update", _bypass_admin(call, body))
    record = _find(call, caller, blueprint, scopes, "something went wrong with entity")
    try:
        metadata = valid_metadata({**record.metadata, **_metadata_of(body, blueprint)}, blueprint)
    except InvalidEntity as invalid:
        return message(406, str(invalid))
    record.metadata = metadata
    record.updated = iso_time(call.now)
    return _entity_json(call, _shape(entity_document(record), _is_flat(call), with_version=True))


async def delete_entity(call: Call) -> Response:
    caller, blueprint = _resolve(call)
    scopes = _require_scopes(caller, blueprint, "delete", _bypass_admin(call))
    record = _find(call, caller, blueprint, scopes, "something went wrong with entity deletion")
    del call.store.entities[blueprint.key][record.identifier]
    return _entity_json(call, _shape(entity_document(record), _is_flat(call), with_version=True))


def entity_document(record: EntityRecord) -> Dict[str, Any]:
    document: Dict[str, Any] = {"tenant": record.tenant, "identifier": record.identifier, "blueprint": record.blueprint}
    if record.user is not None:
        document["user"] = record.user
    if record.workspace is not None:
        document["workspace"] = record.workspace
    document.update(
        metadata=dict(record.metadata), indexes=[], created=record.created, updated=record.updated, __v=record.version
    )
    return document


def flat_entity(record: EntityRecord) -> Dict[str, Any]:
    return _shape(entity_document(record), flat=True, with_version=True)


def _shape(document: Dict[str, Any], flat: bool, *, with_version: bool) -> Dict[str, Any]:
    shaped = {key: value for key, value in document.items() if with_version or key != "__v"}
    shaped["id"] = document["identifier"]
    if flat:
        shaped.update(document["metadata"])
    return shaped


def _resolve(call: Call) -> Tuple[Optional[Caller], Blueprint]:
    caller = gateway_user(call)
    blueprint = call.store.blueprints.get(call.path_params["key"]) if call.serves_tenant else None
    if blueprint is None:
        raise Problem(message(404, "blueprint not found"))
    return caller, blueprint


def _require_scopes(caller: Optional[Caller], blueprint: Blueprint, operation: str, bypass_admin: bool) -> Scopes:
    scopes = permitted_scopes(caller, blueprint, operation, bypass_admin)
    if scopes is not True and not scopes:
        raise Problem(message(403, "not permitted"))
    return scopes


def _visible(call: Call, caller: Optional[Caller], blueprint: Blueprint, scopes: Scopes) -> List[EntityRecord]:
    """`getEntityQuery`: the entities the caller's scopes reach."""
    records = [r for r in call.store.entities.get(blueprint.key, {}).values() if r.tenant == call.tenant]
    if scopes is True or "tenant" in scopes:
        return records
    if blueprint.permission_scope == "workspace":
        workspace = _workspace_id(caller)
        if workspace is None:
            raise Problem(message(403, "user is not connected to a workspace"))
        return [record for record in records if record.workspace == workspace]
    if blueprint.permission_scope == "user":
        if caller is None:
            raise Problem(message(401, "you must be logged in to access"))
        return [record for record in records if record.user == caller.user_id]
    return records


def _find(call: Call, caller: Optional[Caller], blueprint: Blueprint, scopes: Scopes, failure: str) -> EntityRecord:
    try:
        records = _visible(call, caller, blueprint, scopes)
    except Problem:
        # These handlers do not map no-code's ResponseError: a scope failure surfaces as a 500.
        raise Problem(message(500, failure)) from None
    identifier = call.path_params["identifier"]
    record = next((r for r in records if r.identifier == identifier), None)
    if record is None:
        raise Problem(message(404, "entity not found"))
    return record


def _metadata_of(body: Dict[str, Any], blueprint: Blueprint) -> Dict[str, Any]:
    if isinstance(body.get("metadata"), dict):
        return dict(body["metadata"])
    return {key: body[key] for key in blueprint.properties if key in body}


def _workspace_id(caller: Optional[Caller]) -> Optional[str]:
    workspace = caller.workspace if caller else None
    workspace_id = workspace.get("_id") if workspace else None
    return workspace_id if isinstance(workspace_id, str) else None


def _bypass_admin(call: Call, body: Optional[Dict[str, Any]] = None) -> bool:
    if body is not None and "bypassAdmin" in body:
        return bool(body["bypassAdmin"])
    header = call.request.headers.get("x-bypass-admin", "").lower()
    return call.request.query_params.get("bypassAdmin") == "true" or header in ("true", "1")


def _is_flat(call: Call) -> bool:
    if call.request.headers.get("accept-version") == "v1":
        return True
    return call.request.query_params.get("$flat", "true").lower() not in ("false", "0")


def _entity_json(call: Call, body: Any) -> Response:
    return json_response(body, headers=None if _is_flat(call) else _DEPRECATION_HEADERS)
