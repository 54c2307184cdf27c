from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ._call import Services
from ._models import FakeTokenPair, FakeUser, FakeWorkspace
from ._store import TokenRecord
from ._tokens import user_claims, workspace_claim


def workspace_id_of(claim: Optional[Mapping[str, Any]]) -> Optional[str]:
    workspace_id = claim.get("_id") if claim else None
    return workspace_id if isinstance(workspace_id, str) else None


def claim_for(services: Services, user: FakeUser, workspace: FakeWorkspace) -> Dict[str, Any]:
    member = workspace.member(user.id)
    if any(role in services.settings.privileged_roles for role in user.roles):
        roles = ["admin"]
    else:
        roles = member.roles if member else []
    return workspace_claim(workspace, roles)


def default_workspace(services: Services, user: FakeUser, requested: Any = None) -> Optional[FakeWorkspace]:
    """Signin's choice: the requested workspace, the last login's, the last token's, the first membership."""
    store = services.store
    memberships = {workspace.id: workspace for workspace, _ in store.memberships(user.id)}
    last_token = next((r.workspace_id for r in reversed(store.tokens.get(user.id, [])) if r.workspace_id), None)
    for candidate in (requested, store.last_login_workspace.get(user.id), last_token):
        if isinstance(candidate, str) and candidate in memberships:
            return memberships[candidate]
    return next(iter(memberships.values()), None)


def issue_cookie(
    services: Services,
    user: FakeUser,
    *,
    tenant: str,
    workspace: Optional[Mapping[str, Any]],
    ttl: Optional[float] = None,
    record: bool = True,
) -> str:
    """Sign a cookie JWT with a fresh tokenIdentifier and, unless told otherwise, store that identifier."""
    settings = services.settings
    identifier = services.signer.new_token_identifier()
    claims = user_claims(user, tenant, workspace=workspace, token_identifier=identifier)
    lifetime = settings.cookie_token_ttl if ttl is None else ttl
    if record:
        expires_at = services.clock.now() + settings.cookie_token_ttl
        token_record = TokenRecord("cookie", identifier, expires_at, workspace_id=workspace_id_of(workspace))
        services.store.add_token(user.id, token_record)
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
    return FakeTokenPair(access_token=access_token, refresh_token=refresh_token)


def signin_user_json(user: FakeUser) -> Dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "name": user.display_name,
        "roles": list(user.roles),
    }
