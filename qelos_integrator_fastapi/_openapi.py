from __future__ import annotations

from typing import Any, Dict

from ._oauth_state import CALLBACK_ROUTE

_ERROR_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            }
        }
    }
}


def _errors(codes: Dict[int, str]) -> Dict[Any, Dict[str, Any]]:
    return {status: {"description": text, **_ERROR_BODY} for status, text in codes.items()}


SUMMARIES = {
    "qelos_auth_login": "Sign in with a Qelos username and password",
    "qelos_auth_logout": "Sign out of Qelos and clear the app's credential cookies",
    "qelos_auth_social": "Start a Qelos social login (redirects to Qelos)",
    CALLBACK_ROUTE: "Finish a Qelos social login (redirects to the return path)",
}
RESPONSES: Dict[str, Dict[Any, Dict[str, Any]]] = {
    "qelos_auth_login": {
        303: {"description": "Form sign-in: redirect to `next` (or to `login_page?error=CODE` on failure)."},
        **_errors(
            {
                400: "INVALID_BODY or UNSAFE_RETURN_URL",
                401: "INVALID_CREDENTIALS",
                403: "CROSS_SITE_REQUEST",
                413: "BODY_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE",
                422: "MISSING_CREDENTIALS or INVALID_BODY",
                503: "QELOS_UNAVAILABLE",
            }
        ),
    },
    "qelos_auth_logout": {
        303: {"description": "Form sign-out: redirect to `next`."},
        **_errors({400: "INVALID_BODY or UNSAFE_RETURN_URL", 403: "CROSS_SITE_REQUEST"}),
    },
    "qelos_auth_social": {
        302: {"description": "Redirect to Qelos, which sends the browser to the provider."},
        **_errors({400: "UNSAFE_RETURN_URL", 404: "UNKNOWN_PROVIDER"}),
    },
    CALLBACK_ROUTE: {
        303: {"description": "Signed in: redirect to the return path kept in the signed state."},
        **_errors(
            {
                400: "INVALID_OAUTH_STATE, OAUTH_STATE_EXPIRED, OAUTH_STATE_MISMATCH or MISSING_RT",
                401: "SOCIAL_LOGIN_REJECTED",
                503: "QELOS_UNAVAILABLE",
            }
        ),
    },
}

_NEXT_FIELD = {"type": "string", "description": "Relative path to redirect a form post to"}
_CREDENTIALS_SCHEMA = {
    "type": "object",
    "properties": {
        "username": {"type": "string", "description": "Qelos username (or send `email`)"},
        "password": {"type": "string", "format": "password"},
        "workspace": {"type": "string", "description": "Optional id of the workspace to sign in to"},
        "next": _NEXT_FIELD,
    },
}
_NEXT_SCHEMA = {"type": "object", "properties": {"next": _NEXT_FIELD}}
REQUEST_BODIES: Dict[str, Dict[str, Any]] = {
    name: {
        "requestBody": {
            "required": name == "qelos_auth_login",
            "content": {
                "application/json": {"schema": schema},
                "application/x-www-form-urlencoded": {"schema": schema},
            },
        }
    }
    for name, schema in (("qelos_auth_login", _CREDENTIALS_SCHEMA), ("qelos_auth_logout", _NEXT_SCHEMA))
}
