"""The demo's server-rendered pages, shared by the FastAPI and the Starlette example."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any, Dict, List, Optional, Sequence, Tuple

from examples.inspector import COOKIES_SLOT

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
    "expired": (
        "FakeQelos' clock jumped ahead: your access token expired (token mode), or your session cookie reached "
        "the age at which Qelos re-signs it (session mode). The panel shows what the middleware did about it "
        "on this page: the calls to Qelos and the cookies it set."
    ),
}
SOCIAL_NAMES = {"github": "GitHub", "google": "Google", "facebook": "Facebook", "linkedin": "LinkedIn"}

# Served at /demo.css by both demos: no CDN, no build step.
STYLESHEET = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dfe3ea; --paper: #ffffff; --wash: #f5f7fa; --accent: #2f5bd3;
  --good: #0b6e4f; --bad: #b00020; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  background: var(--wash); }
header { background: var(--paper); border-bottom: 1px solid var(--line); }
header nav { max-width: 68rem; margin: 0 auto; padding: .7rem 1.2rem; display: flex; gap: 1.2rem;
  align-items: center; }
header nav .brand { font-weight: 600; margin-right: auto; color: var(--ink); text-decoration: none; }
header nav a { color: var(--accent); text-decoration: none; } header nav a:hover { text-decoration: underline; }
header nav form { margin: 0; }
.page { max-width: 68rem; margin: 1.5rem auto; padding: 0 1.2rem; display: grid;
  grid-template-columns: minmax(0, 1fr) 24rem; gap: 1.5rem; align-items: start; }
@media (max-width: 60rem) { .page { grid-template-columns: 1fr; } }
main, aside { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 1.2rem 1.4rem; }
h1 { font-size: 1.4rem; margin: 0 0 1rem; } h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
label { display: block; margin: .8rem 0 .25rem; color: var(--muted); font-size: .9rem; }
input, select { width: 100%; max-width: 22rem; padding: .45rem .6rem; border: 1px solid var(--line);
  border-radius: 6px; font: inherit; }
button { margin-top: .9rem; padding: .45rem 1rem; border: 1px solid var(--accent); border-radius: 6px;
  background: var(--accent); color: #fff; font: inherit; cursor: pointer; }
button.quiet { background: transparent; color: var(--accent); margin-top: 0; }
.error { color: var(--bad); min-height: 1.5em; } .notice { color: var(--good); min-height: 1.5em; }
table { border-collapse: collapse; min-width: 16rem; } th, td { text-align: left; padding: .35rem .8rem .35rem 0;
  border-bottom: 1px solid var(--line); }
code { font: .85em/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; background: var(--wash); padding: 0 .25em;
  border-radius: 4px; overflow-wrap: anywhere; }
aside h2:first-child { margin-top: 0; } aside { font-size: .9rem; }
aside dl { display: grid; grid-template-columns: 7.5rem 1fr; gap: .3rem .6rem; margin: 0; }
aside dt { color: var(--muted); } aside dd { margin: 0; overflow-wrap: anywhere; }
aside ul { margin: .2rem 0; padding-left: 1.1rem; } aside p { margin: .2rem 0; }
input { display: block; }
.social a { display: inline-block; margin: 1rem .6rem 0 0; padding: .4rem .8rem; border: 1px solid var(--line);
  border-radius: 6px; color: var(--ink); text-decoration: none; } .social a:hover { border-color: var(--accent); }
"""


def _layout(title: str, body: str, panel: str, nav: str = "") -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f'<link rel="stylesheet" href="/demo.css"></head><body>'
        f'<header><nav><a class="brand" href="/">Qelos integrator demo</a>{nav}</nav></header>'
        f'<div class="page"><main>{body}</main>{panel}</div></body></html>'
    )


def _nav(api_docs: bool, *, can_expire: bool = False) -> str:
    # Only the FastAPI demo has OpenAPI docs; the Starlette one links its JSON route instead.
    docs = '<a href="/docs">API docs</a>' if api_docs else '<a href="/me">JSON: /me</a>'
    expire = (
        '<form method="post" action="/demo/expire"><button class="quiet" id="expire" type="submit">'
        "Expire my credential</button></form>"
        if can_expire
        else ""
    )
    return (
        f'<a href="/">Home</a><a href="/products">Products</a>{docs}{expire}'
        '<form method="post" action="/auth/logout"><button class="quiet" id="sign-out" type="submit">Sign out</button>'
        "</form>"
    )


@dataclass(frozen=True)
class Saw:
    """What the middleware saw for this request (see examples/inspector.py)."""

    user: str
    scopes: Sequence[str]
    mode: str
    workspace: str
    identity: str
    refreshed: bool
    # None when the calls were not counted (against a real Qelos).
    calls: Optional[Sequence[Tuple[str, str, str, float]]]


def panel(saw: Saw) -> str:
    if saw.calls is None:
        calls_html = "<h2>Calls to Qelos</h2><p>counted only on the embedded FakeQelos</p>"
    else:
        items = "".join(
            f"<li><code>{escape(method)} {escape(path)}</code> → {escape(status)}, {ms:.1f} ms</li>"
            for method, path, status, ms in saw.calls
        )
        total = f", {sum(ms for *_, ms in saw.calls):.1f} ms" if saw.calls else ""
        calls_html = (
            f"<h2>Calls to Qelos: <span id='panel-calls'>{len(saw.calls)}</span>{total}</h2>"
            f"{f'<ul>{items}</ul>' if items else '<p>none</p>'}"
        )
    refreshed = "yes: new tokens this request" if saw.refreshed else "no"
    return (
        '<aside id="panel"><h2>What the middleware saw</h2><dl>'
        f"<dt>request.user</dt><dd id='panel-user'>{escape(saw.user)}</dd>"
        f"<dt>request.auth</dt><dd id='panel-scopes'>{escape(', '.join(saw.scopes) or 'no scopes')}</dd>"
        f"<dt>credential</dt><dd id='panel-mode'>{escape(saw.mode)}</dd>"
        f"<dt>workspace</dt><dd id='panel-workspace'>{escape(saw.workspace)}</dd>"
        f"<dt>identity</dt><dd id='panel-identity'>{escape(saw.identity)}</dd>"
        f"<dt>token refresh</dt><dd id='panel-refreshed'>{refreshed}</dd>"
        "</dl>"
        f"{calls_html}"
        f"<h2>Cookies this response sets</h2><div id='panel-cookies'>{COOKIES_SLOT}</div>"
        "</aside>"
    )


def login_page(*, error: Optional[str], next_path: str, hint: Sequence[str], providers: Sequence[str], saw: Saw) -> str:
    message = LOGIN_ERRORS.get(error or "", "Sign-in failed." if error else "")
    social = "".join(
        f'<a id="social-{escape(p)}" href="/auth/{escape(p)}?next={escape(next_path)}">'
        f"Continue with {escape(SOCIAL_NAMES.get(p, p.capitalize()))}</a>"
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
        f'<div class="social">{social}</div>' + (f"<h2>Demo users</h2><ul>{hints}</ul>" if hints else ""),
        panel(saw),
    )


def home_page(
    *,
    user: Dict[str, Any],
    workspace: Optional[Dict[str, Any]],
    workspaces: List[Dict[str, Any]],
    mode: str,
    notice: Optional[str],
    api_docs: bool,
    can_expire: bool,
    saw: Saw,
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
        f"<h1>Hello, <span id='user-name'>{escape(str(name))}</span></h1>"
        f'<p class="notice" id="notice">{escape(NOTICES.get(notice or "", ""))}</p>'
        f"<p>Username: <code id='username'>{escape(str(user.get('username')))}</code> · "
        f"roles: {escape(', '.join(map(str, user.get('roles') or [])))} · credential: <code id='mode'>"
        f"{escape(mode)}</code></p>"
        f"<p>Active workspace: <strong id='workspace-name'>{escape(str(workspace.get('name')) if workspace else '—')}"
        f"</strong></p>{switcher}",
        panel(saw),
        _nav(api_docs, can_expire=can_expire),
    )


def products_page(
    *, workspace: Optional[Dict[str, Any]], products: List[Dict[str, Any]], api_docs: bool, can_expire: bool, saw: Saw
) -> str:
    rows = "".join(
        f"<tr><td class='product-name'>{escape(str(p.get('name') or p.get('metadata', {}).get('name')))}</td>"
        f"<td>{escape(str(p.get('price') if 'price' in p else p.get('metadata', {}).get('price')))}</td></tr>"
        for p in products
    )
    where = escape(str(workspace.get("name"))) if workspace else "no workspace"
    return _layout(
        "Products",
        f"<h1>Products of <span id='workspace-name'>{where}</span></h1>"
        f"<table id='products'><tr><th>Name</th><th>Price</th></tr>{rows}</table>"
        f'<p>Read through <code>qelos.sdk.entities("products").get_list()</code>, as the signed-in user.</p>',
        panel(saw),
        _nav(api_docs, can_expire=can_expire),
    )


def demo_hint(users: Sequence[Sequence[str]]) -> List[str]:
    return [f"{name} / {password}" for name, password, *_ in users]
