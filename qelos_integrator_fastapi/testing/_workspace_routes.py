from __future__ import annotations

from typing import Any, Dict, List

from starlette.responses import Response

from ._call import Call
from ._http import Problem, json_response, message
from ._identity import Caller, require_user
from ._ids import is_object_id, iso_time, object_id
from ._models import FakeMember, FakeWorkspace
from ._sessions import issue_cookie
from ._tokens import workspace_claim


async def list_workspaces(call: Call) -> Response:
    caller = require_user(call)
    items = []
    for workspace, member in call.store.memberships(caller.user_id):
        item: Dict[str, Any] = {"_id": workspace.id, "name": workspace.name}
        if workspace.logo:
            item["logo"] = workspace.logo
        item["tenant"] = workspace.tenant
        item["members"] = [member.as_json()]
        item["isPrivilegedUser"] = "admin" in member.roles
        items.append(item)
    return json_response(items)


async def get_workspace(call: Call) -> Response:
    caller = require_user(call)
    workspace = _workspace_for(call, caller)
    privileged = caller.is_privileged(call.settings.privileged_roles)
    member = workspace.member(caller.user_id)
    body = _document(workspace, [member] if member else [])
    if privileged or (member is not None and "admin" in member.roles):
        body["members"] = [m.as_json() for m in workspace.members]
        body["invites"] = list(workspace.invites)
    return json_response(body)


async def create_workspace(call: Call) -> Response:
    caller = require_user(call)
    body = await call.body()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return message(400, "workspace name is required")
    labels = body.get("labels")
    invites = body.get("invites")
    now = call.now
    workspace = FakeWorkspace(
        id=object_id(now),
        name=name,
        tenant=call.tenant,
        labels=[str(label) for label in labels] if isinstance(labels, list) else [],
        logo=body.get("logo") if isinstance(body.get("logo"), str) else None,
        members=[FakeMember(caller.user_id, ["admin", "user"], iso_time(now), object_id(now))],
        invites=[invite for invite in invites if isinstance(invite, dict)] if isinstance(invites, list) else [],
        created=iso_time(now),
    )
    call.store.workspaces[workspace.id] = workspace
    document: Dict[str, Any] = {"_id": workspace.id, "name": workspace.name, "tenant": workspace.tenant}
    if workspace.logo:
        document["logo"] = workspace.logo
    document.update(
        labels=workspace.labels,
        invites=workspace.invites,
        members=[m.as_json() for m in workspace.members],
        created=workspace.created,
        __v=0,
    )
    return json_response(document)


async def activate_workspace(call: Call) -> Response:
    caller = require_user(call)
    workspace = _workspace_for(call, caller)
    user = call.store.users.get(caller.user_id)
    if caller.kind != "cookie" or user is None:
        # Qelos re-reads the cookie here; without one `verifyToken(undefined)` throws.
        return message(500, "failed to activate workspace")
    call.store.remove_token(user.id, caller.payload.get("tokenIdentifier"))
    member = workspace.member(user.id)
    # A privileged caller's workspace is loaded without members, and Qelos then writes `['admin']`.
    privileged = caller.is_privileged(call.settings.privileged_roles)
    claim = workspace_claim(workspace, ["admin"] if privileged or member is None else member.roles)
    # The user is loaded without `username` and `phone`, so the new token lacks them until its next rotation.
    cookie = issue_cookie(
        call.services,
        user,
        tenant=str(caller.payload["tenant"]),
        workspace=claim,
        replacing=True,
        unloaded=("username", "phone"),
    )
    call.set_session_cookie(cookie)
    return json_response(_document(workspace, [member] if member else []))


def _workspace_for(call: Call, caller: Caller) -> FakeWorkspace:
    workspace_id = call.path_params["workspace_id"]
    if not is_object_id(workspace_id):
        raise Problem(message(500, "failed to load workspace data"))
    workspace = call.store.workspaces.get(workspace_id)
    visible = workspace is not None and (
        caller.is_privileged(call.settings.privileged_roles) or workspace.member(caller.user_id) is not None
    )
    if workspace is None or not visible:
        raise Problem(message(404, "workspace not found", **{"from": "get-workspace"}))
    return workspace


def _document(workspace: FakeWorkspace, members: List[FakeMember]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"_id": workspace.id, "name": workspace.name}
    if workspace.logo:
        body["logo"] = workspace.logo
    body["labels"] = list(workspace.labels)
    body["members"] = [member.as_json() for member in members]
    return body
