from __future__ import annotations

from typing import Any, Dict, Optional

from starlette.responses import Response

from ._call import Call
from ._http import json_response
from ._identity import Caller, require_user
from ._tokens import uri_decode

_PROFILE_FIELDS = ("fullName", "firstName", "lastName", "birthDate", "profileImage")


async def get_me(call: Call) -> Response:
    return json_response(me_json(call, require_user(call)))


async def post_me(call: Call) -> Response:
    caller = require_user(call)
    body = await call.body()
    user = call.store.users.get(caller.user_id)
    if user is None:
        return json_response({"message": "failed to update your user information"}, 500)
    if isinstance(body.get("password"), str) and body["password"]:
        user.password = body["password"]
    full_name = body.get("fullName", body.get("name"))
    if isinstance(full_name, str):
        user.full_name = full_name
    for key, attribute in (
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("birthDate", "birth_date"),
        ("profileImage", "profile_image"),
    ):
        if isinstance(body.get(key), str):
            setattr(user, attribute, body[key])
    profile = {
        "fullName": user.display_name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "birthDate": user.birth_date,
        "profileImage": user.profile_image,
    }
    call.store.profile_cache[user.id] = profile
    reply = me_json(call, caller)
    reply["roles"] = list(user.roles)
    if "username" in body:
        reply["username"] = body["username"]
    return json_response(reply)


def me_json(call: Call, caller: Caller) -> Dict[str, Any]:
    """`GET /api/me`: names from the profile cache, else from the claims; workspace as the claim has it."""
    claims = caller.payload
    user = call.store.users.get(caller.user_id)
    cached = call.store.profile_cache.get(caller.user_id)
    names: Dict[str, Any] = dict(cached) if cached else {key: _decoded(claims.get(key)) for key in _PROFILE_FIELDS}
    first, last = names.get("firstName"), names.get("lastName")
    full = names.get("fullName") or _decoded(claims.get("name")) or " ".join(p for p in (first, last) if p) or None
    reply: Dict[str, Any] = {
        "_id": caller.user_id,
        "tenant": claims.get("tenant"),
        "username": claims.get("username"),
        "email": claims.get("email"),
        "phone": claims.get("phone"),
        "name": full,
        "firstName": first,
        "lastName": last,
        "fullName": full,
        "profileImage": names.get("profileImage"),
        "birthDate": names.get("birthDate"),
        "roles": caller.roles,
        "metadata": dict(user.metadata) if user else {},
        "workspace": claims.get("workspace"),
    }
    return {key: value for key, value in reply.items() if value is not None}


def _decoded(value: Any) -> Optional[str]:
    return uri_decode(value) if isinstance(value, str) else None
