from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

from ._call import Services
from ._models import FakeTokenPair, FakeUser, FakeWorkspace
from ._store import TokenRecord
from ._tokens import user_claims, workspace_claim


def workspace_id_of(claim: Optional[Mapping[str, Any]]) -> Optional[str]:
    workspace_id = claim.get("_id") if claim else None
    return workspace_id if isinstance(workspace_id, str) else None


def claim_for(user: FakeUser, workspace: FakeWorkspace) -> Dict[str, Any]:
    """The workspace claim of a signin: the user's membership roles there, global admins included."""
    member = workspace.member(user.id)
    return workspace_claim(workspace, member.roles if member else [])


def signin_workspace(services: Services, user: FakeUser, requested: Any = None) -> Optional[FakeWorkspace]:
    """`getWorkspaceForUser` at signin: only the first truthy of the requested workspace, the last login's and
    the last token's is tried, and one the user is no member of gives none; without any, the first membership."""
    store = services.store
    records = store.tokens.get(user.id, [])
    candidate = requested or store.last_login_workspace.get(user.id) or (records[-1].workspace_id if records else None)
    memberships = [workspace for workspace, _ in store.memberships(user.id)]
    if not candidate:
        return memberships[0] if memberships else None
    return next((workspace for workspace in memberships if workspace.id == candidate), None)


def issue_cookie(
    services: Services,
    user: FakeUser,
    *,
    tenant: str,
    workspace: Optional[Mapping[str, Any]],
    ttl: Optional[float] = None,
    record: bool = True,
    replacing: bool = False,
    unloaded: Tuple[str, ...] = (),
) -> str:
    """Sign a cookie JWT with a fresh tokenIdentifier and, unless told otherwise, store that identifier and the
    last-login workspace. Only a replacement (rotation, activate) records the workspace on the token entry;
    `unloaded` names user fields the signing code never loaded, so they are missing from the claims."""
    settings = services.settings
    identifier = services.signer.new_token_identifier()
    claims = user_claims(user, tenant, workspace=workspace, token_identifier=identifier)
    for name in unloaded:
        claims.pop(name, None)
    lifetime = settings.cookie_token_ttl if ttl is None else ttl
    if record:
        expires_at = services.clock.now() + settings.cookie_token_ttl
        workspace_id = workspace_id_of(workspace)
        token_record = TokenRecord("cookie", identifier, expires_at, workspace_id=workspace_id if replacing else None)
        services.store.add_token(user.id, token_record)
        services.store.last_login_workspace[user.id] = workspace_id
    return services.signer.sign_access(claims, lifetime)


def issue_oauth_pair(
    services: Services,
    user: FakeUser,
    *,
    tenant: str,
    workspace: Optional[Mapping[str, Any]],
    workspace_in_refresh: bool = True,
) -> FakeTokenPair:
    settings = services.settings
    signer = services.signer
    access_token = signer.sign_access(user_claims(user, tenant, workspace=workspace), settings.access_token_ttl)
    identifier = signer.new_token_identifier()
    workspace_id = workspace_id_of(workspace) if workspace_in_refresh else None
    refresh_token = signer.sign_refresh(
        user_id=user.id, tenant=tenant, workspace_id=workspace_id, token_identifier=identifier
    )
    expires_at = services.clock.now() + settings.cookie_token_ttl
    record = TokenRecord("oauth", identifier, expires_at, related_token=access_token, workspace_id=workspace_id)
    services.store.add_token(user.id, record)
    services.store.last_login_workspace[user.id] = workspace_id_of(workspace)
    return FakeTokenPair(access_token=access_token, refresh_token=refresh_token)


def template_name(first: Optional[str], last: Optional[str]) -> str:
    """JavaScript's `${firstName} ${lastName}`, Qelos's name for a user without a full name."""
    return f"{'undefined' if first is None else first} {'undefined' if last is None else last}"


def signin_user_json(user: FakeUser) -> Dict[str, Any]:
    user_json = {
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "name": user.full_name or template_name(user.first_name, user.last_name),
        "roles": list(user.roles),
    }
    return {key: value for key, value in user_json.items() if value is not None}
