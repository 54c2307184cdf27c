from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

from ._call import Call
from ._http import Problem, message
from ._ids import iso_time
from ._sessions import issue_cookie
from ._tokens import workspace_claim


@dataclass
class Caller:
    """The verified identity of a request: `req.userPayload` plus the credential it came from."""

    payload: Dict[str, Any]
    kind: str
    token: str

    @property
    def user_id(self) -> str:
        return str(self.payload["sub"])

    @property
    def roles(self) -> List[str]:
        roles = self.payload.get("roles")
        return [str(role) for role in roles] if isinstance(roles, list) else []

    @property
    def workspace(self) -> Optional[Dict[str, Any]]:
        workspace = self.payload.get("workspace")
        return workspace if isinstance(workspace, dict) else None

    def is_privileged(self, privileged_roles: Any) -> bool:
        return any(role in privileged_roles for role in self.roles)


def verify_user(call: Call) -> Optional[Caller]:
    """The auth service's `verifyUser`: x-api-key, else the session cookie, else Authorization."""
    api_key = call.request.headers.get("x-api-key")
    if api_key:
        return _api_key_caller(call, api_key)
    cookie = call.session_cookie_value()
    if cookie is not None:
        return _cookie_caller(call, cookie)
    if call.request.headers.get("authorization"):
        token = call.bearer_token()
        payload = call.signer.verify_access(token) if token else None
        if payload is None:
            raise Problem(message(401, "authorization token is not valid."))
        _sync_tenant(call, payload)
        return Caller(payload, "bearer", str(token))
    return None


def _sync_tenant(call: Call, payload: Dict[str, Any]) -> None:
    # The auth service rewrites its tenant to the verified JWT's claim (`syncTenantHeaderFromPayload`).
    if payload.get("tenant"):
        call.tenant = str(payload["tenant"])


def require_user(call: Call) -> Caller:
    caller = verify_user(call)
    if caller is None:
        raise Problem(message(401, "you are not authorized. must be logged in."))
    return caller


def gateway_user(call: Call) -> Optional[Caller]:
    """The gateway's pre-resolution for non-auth services: any failure leaves the request anonymous."""
    headers = call.request.headers
    if not ("authorization" in headers or "x-api-key" in headers or "qlt_" in headers.get("cookie", "")):
        return None
    try:
        # The gateway asks the auth service in a request of its own: the tenant it syncs stays there.
        return verify_user(replace(call))
    except Problem:
        return None


def _api_key_caller(call: Call, raw: str) -> Caller:
    invalid = Problem(message(401, "Invalid or expired API token"))
    record = call.store.api_token(raw) if raw.startswith("ql_") else None
    if record is None or record.expires_at <= call.now or record.tenant != call.tenant:
        raise invalid
    user = call.store.users.get(record.user_id)
    if user is None:
        raise invalid
    workspace = None
    if record.workspace_id is not None:
        scoped = call.store.workspaces.get(record.workspace_id)
        member = scoped.member(user.id) if scoped else None
        if scoped is None or member is None:
            raise invalid
        workspace = workspace_claim(scoped, member.roles)
    record.usage_count += 1
    record.last_used_at = iso_time(call.now)
    payload: Dict[str, Any] = {
        "sub": user.id,
        "tenant": record.tenant,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "name": user.display_name,
        "fullName": user.full_name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "birthDate": user.birth_date,
        "profileImage": user.profile_image,
        "roles": list(user.roles),
        "workspace": workspace,
        "isApiToken": True,
    }
    return Caller({key: value for key, value in payload.items() if value is not None}, "api_key", raw)


def _cookie_caller(call: Call, token: str) -> Optional[Caller]:
    payload = call.signer.verify_access(token)
    if payload is None:
        return None
    _sync_tenant(call, payload)
    caller = Caller(payload, "cookie", token)
    identifier = payload.get("tokenIdentifier")
    age = call.signer.identifier_age(identifier)
    if age is None or age < call.settings.cookie_rotation_after:
        return caller
    if not call.store.try_lock(str(identifier), call.now, call.settings.rotation_lock_ttl):
        return caller
    user = call.store.users.get(caller.user_id)
    if user is None or not call.store.remove_token(user.id, identifier):
        # Rotated away or logged out: Qelos still accepts the old payload until its exp.
        return caller
    fresh = issue_cookie(
        call.services, user, tenant=str(payload.get("tenant")), workspace=caller.workspace, replacing=True
    )
    call.set_session_cookie(fresh)
    return Caller(call.signer.verify_access(fresh) or payload, "cookie", fresh)
