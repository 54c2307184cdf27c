from __future__ import annotations

import re
from typing import Any, Dict

from starlette.responses import Response

from ._call import Call
from ._http import Problem, Unanswered, empty, json_response
from ._identity import require_user
from ._ids import iso_time, object_id
from ._models import FakeUser
from ._sessions import (
    claim_for,
    issue_cookie,
    issue_oauth_pair,
    signin_user_json,
    signin_workspace,
    template_name,
)

_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
_NAME = re.compile(r"^[^\W\d_]+(?:[ -][^\W\d_]+)*$")


def _signin_failure(errors: Dict[str, Any]) -> Problem:
    return Problem(json_response({"errors": errors}, 401))


async def signin(call: Call) -> Response:
    body = await call.body()
    password = body.get("password")
    if not isinstance(password, str) or not password.strip():
        raise _signin_failure({"password": {"code": "EMPTY_PASSWORD"}})
    username = body.get("username")
    if not isinstance(username, str) or not username:
        raise _signin_failure({"password": "password is incorrect"})
    login = username.strip() or body.get("email")
    login = login.strip() if isinstance(login, str) else ""
    wanted_roles = body.get("roles")
    roles = wanted_roles if isinstance(wanted_roles, list) else None
    user = call.store.find_login(login, roles) if login and call.serves_tenant else None
    if user is None or user.password != password.strip():
        raise _signin_failure({"general": {"message": "Invalid username or password"}})

    workspace = signin_workspace(call.services, user, body.get("workspace"))
    auth_type = body.get("authType") or "cookie"
    if auth_type not in ("cookie", "oauth"):
        # Qelos's async login strategy throws INVALID_AUTH_TYPE where nothing catches it: no answer ever comes.
        raise Unanswered()
    claim = claim_for(user, workspace) if workspace else None
    call.store.prune_expired(user.id, call.now)
    payload: Dict[str, Any] = {"user": signin_user_json(user)}
    if claim is not None and workspace is not None:
        payload["workspace"] = {**claim, "name": workspace.name}
    return _issue(call, user, str(auth_type), payload, claim)


async def signup(call: Call) -> Response:
    body = await call.body()
    errors: Dict[str, Any] = {}
    email, first_name, password = body.get("email"), body.get("firstName"), body.get("password")
    if not isinstance(email, str) or not _EMAIL.match(email.strip()):
        errors["email"] = {"code": "INVALID_EMAIL"}
    if not isinstance(first_name, str) or not _NAME.match(first_name.strip()):
        errors["firstName"] = {"code": "INVALID_NAME"}
    if not isinstance(password, str) or len(password.strip()) < 8:
        errors["password"] = {"code": "INVALID_PASSWORD"}
    if errors:
        return json_response({"errors": errors})
    username = body.get("username")
    if not username:
        # passport-local fails a form without a username, which Qelos answers as a payload with nothing in it.
        return json_response({"payload": {}})
    submission_failed = json_response({"errors": {"": "FORM_SUBMISSION_FAILED"}})
    if not isinstance(username, str) or not call.serves_tenant:
        return submission_failed
    auth_type = str(body.get("authType") or "cookie")
    if auth_type not in ("cookie", "oauth"):
        return submission_failed
    username = username.lower().strip() or str(email).lower().strip()
    if any(user.username == username for user in call.store.users.values()):
        return submission_failed
    last_name = body.get("lastName")
    last_name = last_name if isinstance(last_name, str) else None
    full_name = body.get("fullName") or body.get("name")
    user = FakeUser(
        id=object_id(call.now),
        username=username,
        password=str(password).strip(),
        # The signup form's email is not saved: Qelos's save hook derives one from the username.
        email=username if "@" in username else username + "@null",
        first_name=str(first_name),
        last_name=last_name,
        full_name=full_name if isinstance(full_name, str) else template_name(str(first_name), last_name),
        roles=[call.settings.default_role],
        birth_date=body.get("birthDate") if isinstance(body.get("birthDate"), str) else None,
        created=iso_time(call.now),
    )
    call.store.users[user.id] = user
    user_json = {
        "username": user.username,
        "email": user.email,
        "name": user.full_name,
        "fullName": user.full_name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "roles": list(user.roles),
    }
    user_json = {key: value for key, value in user_json.items() if value is not None}
    return _issue(call, user, auth_type, {"user": user_json}, None)


async def refresh_token(call: Call) -> Response:
    token = call.bearer_token()
    payload = call.signer.verify_refresh(token) if token else None
    user = call.store.users.get(str(payload["sub"])) if payload else None
    if payload is None or user is None or payload.get("tenant") != call.settings.tenant:
        return empty(401)
    if not call.store.remove_token(user.id, payload.get("tokenIdentifier")):
        return empty(401)
    workspace_id = payload.get("workspace")
    # `getSignedToken` fills in the name it was not given with an empty one.
    claim = {"_id": workspace_id, "name": ""} if isinstance(workspace_id, str) else None
    # Qelos re-issues the refresh token without its workspace: the second refresh loses it entirely.
    pair = issue_oauth_pair(
        call.services, user, tenant=str(payload["tenant"]), workspace=claim, workspace_in_refresh=False
    )
    body = {"user": {"email": user.email, "roles": list(user.roles)}, "token": pair.access_token}
    return json_response({"payload": {**body, "refreshToken": pair.refresh_token}})


async def logout(call: Call) -> Response:
    caller = require_user(call)
    if caller.kind == "cookie":
        call.store.remove_token(caller.user_id, caller.payload.get("tokenIdentifier"))
        call.clear_session_cookie()
    elif caller.kind == "bearer":
        call.store.remove_related(caller.user_id, caller.token)
    return empty(200)


def _issue(call: Call, user: FakeUser, auth_type: str, payload: Dict[str, Any], claim: Any) -> Response:
    if auth_type == "oauth":
        pair = issue_oauth_pair(call.services, user, tenant=call.tenant, workspace=claim)
        return json_response({"payload": {"token": pair.access_token, "refreshToken": pair.refresh_token, **payload}})
    call.set_session_cookie(issue_cookie(call.services, user, tenant=call.tenant, workspace=claim))
    return json_response({"payload": payload})
