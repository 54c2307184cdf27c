"""Where the examples find Qelos: the real one at QELOS_APP_URL, or a FakeQelos inside the app itself.

Embedded, the fake answers the middleware and the auth routes in-process (``transport=fake.transport``)
and is also mounted at ``/_qelos`` on the app, because the social login sends the browser to Qelos.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Tuple

from starlette.types import ASGIApp, Receive, Scope, Send

from examples.inspector import CountingTransport
from qelos_integrator_fastapi import QelosConfig

if TYPE_CHECKING:
    from qelos_integrator_fastapi.testing import FakeQelos

FAKE_PREFIX = "/_qelos"
# FakeQelos' defaults, named here because "Expire my credential" jumps past them.
ACCESS_TOKEN_TTL = 300 * 60.0
COOKIE_ROTATION_AFTER = 30 * 60.0
# The users FakeQelos.demo() seeds.
DEMO_USERS: Tuple[Tuple[str, str, str], ...] = (
    ("alice", "alice-pass", "two workspaces: Acme and Globex Corporation; social login signs her in"),
    ("bob", "bob-pass", "one workspace: Acme"),
)


@dataclass(frozen=True)
class DemoQelos:
    config: QelosConfig
    secret_key: str
    mode: str
    # Where browsers reach Qelos (social login); None means config.app_url.
    public_url: Optional[str] = None
    # The embedded FakeQelos, to mount at FAKE_PREFIX; None against a real Qelos.
    fake_app: Optional[ASGIApp] = None
    fake: Optional[FakeQelos] = None
    # Seconds FakeQelos' clock jumps for "Expire my credential": past the access token's lifetime (token
    # mode) or the age at which Qelos rotates a session cookie (session mode).
    expire_after: float = 0.0

    @property
    def embedded(self) -> bool:
        return self.fake_app is not None

    def banner(self, framework: str) -> str:
        port = _uvicorn_option("--port") or os.environ.get("PORT", "8000")
        lines = [f"Qelos integrator demo ({framework}), auth mode {self.mode!r} (QELOS_AUTH_MODE=session|token)"]
        if self.embedded:
            lines.append("Qelos: an embedded FakeQelos (set QELOS_APP_URL to use a real Qelos)")
            lines.append(f"Open http://127.0.0.1:{port}/login and sign in as:")
            lines += [f"  {name} / {password}   ({about})" for name, password, about in DEMO_USERS]
        else:
            lines.append(f"Qelos: {self.config.app_url} (tenant {self.config.tenant!r})")
            lines.append(f"Open http://127.0.0.1:{port}/login and sign in with a user of that Qelos")
        if "QELOS_INTEGRATOR_SECRET" not in os.environ:
            lines.append("OAuth state key: random per process (set QELOS_INTEGRATOR_SECRET for several workers)")
        return "\n".join(lines)


def demo_qelos() -> DemoQelos:
    mode = os.environ.get("QELOS_AUTH_MODE", "session")
    secret_key = os.environ.get("QELOS_INTEGRATOR_SECRET") or secrets.token_urlsafe(32)
    app_url = os.environ.get("QELOS_APP_URL")
    if app_url:
        # The product's own pool talks to a real Qelos; the panel then does not list the calls.
        config = QelosConfig(app_url=app_url, tenant=os.environ.get("QELOS_TENANT", "0"))
        return DemoQelos(config, secret_key, mode)

    from qelos_integrator_fastapi.testing import FakeClock, FakeQelos

    workers = _uvicorn_option("--workers") or os.environ.get("WEB_CONCURRENCY")
    if workers and workers.isdigit() and int(workers) > 1:
        # Each worker would embed its own FakeQelos: a session signed in by one is unknown to the others.
        raise SystemExit(
            f"The demo embeds FakeQelos in its process, so it runs one worker (got --workers {workers}). For "
            "several workers, serve one FakeQelos for all of them: `make fake` in another terminal, then "
            "QELOS_APP_URL=http://127.0.0.1:8100 uvicorn examples.fastapi_app.app:app --workers 2"
        )
    # The demo is served over plain http on localhost: an http app_url leaves the q_* token cookies
    # without Secure (Secure follows app_url), so every browser sends them back to it. Its clock is the
    # real one, so dates are today's and tokens expire as they would.
    fake = FakeQelos.demo(
        url="http://qelos.test",
        clock=FakeClock.wall(),
        access_token_ttl=ACCESS_TOKEN_TTL,
        cookie_rotation_after=COOKIE_ROTATION_AFTER,
    )
    # The inspector's transport notes each call to Qelos for the page's panel. The identity cache stays off
    # (its default): it would serve a credential "Expire my credential" just expired for a few more seconds.
    config = QelosConfig(
        app_url=fake.url, transport=CountingTransport(fake.transport), tenant=fake.tenant, skip_paths=[FAKE_PREFIX]
    )
    return DemoQelos(
        config,
        secret_key,
        mode,
        public_url=FAKE_PREFIX,
        fake_app=_Unprefixed(fake, FAKE_PREFIX),
        fake=fake,
        expire_after=(ACCESS_TOKEN_TTL if mode == "token" else COOKIE_ROTATION_AFTER) + 1,
    )


def _uvicorn_option(name: str) -> Optional[str]:
    """An option of the uvicorn command line serving the demo (``--port 9000`` or ``--port=9000``)."""
    argv = sys.argv[1:]
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


class _Unprefixed:
    """Serves an app that expects to live at "/" (FakeQelos) under a path prefix."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith(self.prefix):
            path = scope["path"][len(self.prefix) :] or "/"
            scope = {**scope, "path": path, "raw_path": path.encode(), "root_path": ""}
        await self.app(scope, receive, send)
