"""The demo's server-rendered pages, shared by the FastAPI and the Starlette example."""

from __future__ import annotations

from html import escape
from typing import Any, Dict, List, Optional, Sequence

LOGIN_ERRORS = {
    "INVALID_CREDENTIALS": "Invalid username or password.",
    "MISSING_CREDENTIALS": "Enter a username and a password.",
    "QELOS_UNAVAILABLE": "Qelos is not reachable right now; try again in a moment.",
    "CROSS_SITE_REQUEST": "Sign in from this site's own login page.",
    "OAUTH_STATE_EXPIRED": "The social login took too long; try again.",
    "OAUTH_STATE_MISMATCH": "That social login was started in another browser; try again.",
    "INVALID_OAUTH_STATE": "The social login could not be verified; try again.",
    "SOCIAL_LOGIN_REJECTED": "Qelos did not accept the social login.",
    "UNSAFE_RETURN_URL": "That link would have sent you to another site after signing in; sign in to continue here.",
}
NOTICES = {
    "switched": "Workspace switched.",
    "token-mode": (
        "This app signs in with Qelos tokens (QELOS_AUTH_MODE=token). Qelos binds the workspace into a token "
        "when it signs you in, so switching needs a new sign-in with that workspace (or run the demo in "
        "session mode, where Qelos re-issues the session cookie for the new workspace)."
    ),
    "switch-failed": "Qelos refused to switch to that workspace.",
}

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
label { display: block; margin: .6rem 0 .2rem; } input, select { padding: .4rem; width: 100%; box-sizing: border-box; }
button { margin-top: 1rem; padding: .5rem 1rem; } .error { color: #b00020; } .notice { color: #0b6e4f; }
nav { margin-bottom: 2rem; } nav a, nav form { margin-right: 1rem; display: inline; } table { width: 100%; }
"""


def _layout(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def _nav(api_docs: bool) -> str:
    # Only the FastAPI demo has OpenAPI docs; the Starlette one links its JSON route instead.
    docs = '<a href="/docs">API docs</a>' if api_docs else '<a href="/me">JSON: /me</a>'
    return (
        f'<nav><a href="/">Home</a><a href="/products">Products</a>{docs}'
        '<form method="post" action="/auth/logout"><button id="sign-out" type="submit">Sign out</button></form></nav>'
    )


def login_page(*, error: Optional[str], next_path: str, hint: Sequence[str], providers: Sequence[str]) -> str:
    message = LOGIN_ERRORS.get(error or "", "Sign-in failed." if error else "")
    social = "".join(
        f'<p><a id="social-{escape(p)}" href="/auth/{escape(p)}?next={escape(next_path)}">'
        f"Continue with {escape(p.capitalize())}</a></p>"
        for p in providers
    )
    hints = "".join(f"<li><code>{escape(line)}</code></li>" for line in hint)
    return _layout(
        "Sign in",
        f"<h1>Sign in</h1>"
        f'<p class="error" id="error">{escape(message)}</p>'
        f'<form method="post" action="/auth/login">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        f'<label for="username">Username or email</label><input id="username" name="username" autocomplete="username">'
        f'<label for="password">Password</label>'
        f'<input id="password" name="password" type="password" autocomplete="current-password">'
        f'<button id="sign-in" type="submit">Sign in</button></form>'
        f"{social}" + (f"<h2>Demo users</h2><ul>{hints}</ul>" if hints else ""),
    )


def home_page(
    *,
    user: Dict[str, Any],
    workspace: Optional[Dict[str, Any]],
    workspaces: List[Dict[str, Any]],
    mode: str,
    notice: Optional[str],
    api_docs: bool,
) -> str:
    name = user.get("fullName") or user.get("username") or user.get("email") or user.get("_id")
    active = workspace.get("_id") if workspace else None
    options = "".join(
        f'<option value="{escape(str(w.get("_id")))}"{" selected" if w.get("_id") == active else ""}>'
        f"{escape(str(w.get('name')))}</option>"
        for w in workspaces
    )
    switcher = (
        f'<form method="post" action="/workspace"><label for="workspace">Switch workspace</label>'
        f'<select id="workspace" name="workspace_id">{options}</select>'
        f'<button id="switch" type="submit">Switch</button></form>'
        if workspaces
        else "<p>You belong to no workspace.</p>"
    )
    return _layout(
        "Home",
        f"{_nav(api_docs)}<h1>Hello, <span id='user-name'>{escape(str(name))}</span></h1>"
        f'<p class="notice" id="notice">{escape(NOTICES.get(notice or "", ""))}</p>'
        f"<p>Username: <code id='username'>{escape(str(user.get('username')))}</code> · "
        f"roles: {escape(', '.join(map(str, user.get('roles') or [])))} · credential: <code id='mode'>"
        f"{escape(mode)}</code></p>"
        f"<p>Active workspace: <strong id='workspace-name'>{escape(str(workspace.get('name')) if workspace else '—')}"
        f"</strong></p>{switcher}",
    )


def products_page(*, workspace: Optional[Dict[str, Any]], products: List[Dict[str, Any]], api_docs: bool) -> str:
    rows = "".join(
        f"<tr><td class='product-name'>{escape(str(p.get('name') or p.get('metadata', {}).get('name')))}</td>"
        f"<td>{escape(str(p.get('price') if 'price' in p else p.get('metadata', {}).get('price')))}</td></tr>"
        for p in products
    )
    where = escape(str(workspace.get("name"))) if workspace else "no workspace"
    return _layout(
        "Products",
        f"{_nav(api_docs)}<h1>Products of <span id='workspace-name'>{where}</span></h1>"
        f"<table id='products'><tr><th>Name</th><th>Price</th></tr>{rows}</table>"
        f'<p>Read through <code>qelos.sdk.entities("products").get_list()</code>, as the signed-in user.</p>',
    )


def demo_hint(users: Sequence[Sequence[str]]) -> List[str]:
    return [f"{name} / {password}" for name, password, *_ in users]
