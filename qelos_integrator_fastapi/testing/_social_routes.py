from __future__ import annotations

from typing import Any, Dict
from urllib.parse import urlencode, urlsplit, urlunsplit

from starlette.responses import Response

from ._call import Call
from ._http import empty, json_response, message
from ._models import FakeUser
from ._sessions import claim_for, issue_cookie, issue_oauth_pair, signin_workspace

_DEFAULT_PORTS = {"http": 80, "https": 443}
_PROVIDERS = {"linkedin": "LinkedIn", "facebook": "Facebook", "google": "Google", "github": "GitHub"}


async def social_login(call: Call) -> Response:
    """The fake provider approves at once and redirects as Qelos's provider callback would."""
    provider = call.path_params["provider"]
    label = _PROVIDERS.get(provider, provider[:1].upper() + provider[1:])
    if provider not in _PROVIDERS:
        return message(400, f"{label} social login does not exist")
    user = call.store.users.get(call.store.social_user_id or "")
    if user is None or not call.serves_tenant:
        return message(400, f"{label} social login is not enabled")
    return_url = call.request.query_params.get("returnUrl")
    state = call.request.query_params.get("state")
    workspace = signin_workspace(call.services, user)
    claim = claim_for(user, workspace) if workspace else None
    if not return_url or not _safe_return_url(call, return_url):
        # Browser flow: Qelos signs this cookie with an identifier it never stores, so it never rotates.
        call.set_session_cookie(issue_cookie(call.services, user, tenant=call.tenant, workspace=claim, record=False))
        return _redirect("/")
    pair = issue_oauth_pair(call.services, user, tenant=call.tenant, workspace=claim)
    params = {"rt": pair.refresh_token, **({"state": state} if state else {})}
    return _redirect(_with_query(return_url, params))


async def auth_callback(call: Call) -> Response:
    refresh = call.request.query_params.get("rt")
    if not refresh:
        return empty(401)
    if not refresh.strip():
        return json_response({"error": "Refresh token is missing"}, 400)
    payload = call.signer.verify_refresh(refresh.strip())
    if payload is None:
        return json_response({"error": "Invalid refresh token"}, 401)
    user = call.store.users.get(str(payload["sub"]))
    if user is None:
        return json_response({"errors": {"general": "User not found"}}, 401)
    if not call.store.remove_token(user.id, payload.get("tokenIdentifier")):
        return json_response({"errors": {"general": "Refresh token not valid"}}, 401)
    workspace_id = payload.get("workspace")
    workspace = {"_id": workspace_id} if isinstance(workspace_id, str) else None
    # Signed through `getToken` with no lifetime: the JWT lives as long as an access token, and
    # `getSignedToken` gives the workspace the empty name it was not given.
    claim = {**workspace, "name": ""} if workspace else None
    token = issue_cookie(
        call.services, user, tenant=str(payload["tenant"]), workspace=claim, ttl=call.settings.access_token_ttl
    )
    call.set_session_cookie(token)
    return json_response({"payload": {"user": _user_document(user, str(payload["tenant"])), "workspace": workspace}})


def _safe_return_url(call: Call, return_url: str) -> bool:
    """`isReturnUrlSafe`: a path not starting with `//`, or a URL whose host is one of the tenant's websites."""
    if return_url.startswith("/"):
        return not return_url.startswith("//")
    try:
        host = _url_host(return_url)
    except ValueError:
        return False
    allowed = (_website_host(url) for url in call.settings.website_urls)
    return bool(host) and any(_hosts_match(host, entry) for entry in allowed if entry)


def _url_host(url: str) -> str:
    """WHATWG's `new URL(url).host`: the hostname, and the port unless it is the scheme's default."""
    parts = urlsplit(url)
    port = parts.port
    if port is None or _DEFAULT_PORTS.get(parts.scheme) == port:
        return parts.hostname or ""
    return f"{parts.hostname}:{port}"


def _website_host(entry: str) -> str:
    entry = entry.strip()
    if "://" in entry:
        try:
            return _url_host(entry)
        except ValueError:
            pass
    return entry.split("/")[0]


def _hosts_match(host: str, allowed: str) -> bool:
    return host == allowed or (":" not in allowed and host.split(":")[0] == allowed)


def _with_query(url: str, params: Dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(part for part in (parts.query, urlencode(params)) if part)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _redirect(location: str) -> Response:
    return Response(status_code=302, headers={"location": location})


def _user_document(user: FakeUser, tenant: str) -> Dict[str, Any]:
    document = {
        "_id": user.id,
        "tenant": tenant,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "fullName": user.full_name,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "birthDate": user.birth_date,
        "profileImage": user.profile_image,
        "roles": list(user.roles),
        "metadata": dict(user.metadata),
        "created": user.created,
    }
    return {key: value for key, value in document.items() if value is not None}
