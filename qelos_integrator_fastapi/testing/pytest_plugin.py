"""pytest fixtures for apps that use qelos-integrator-fastapi, loaded through the ``qelos`` entry point.

``fake_qelos`` (a fresh FakeQelos), ``qelos_config`` (a QelosConfig served by it), ``qelos_client``
(an httpx client signed in as a FakeQelos user), ``qelos_headers`` (a Bearer header for any client)
and ``qelos_override`` (pins ``get_qelos``/``require_user`` of a FastAPI app, no Qelos involved).
pytest loads this module in every run once the package is installed, so it imports only pytest;
everything else is imported when a fixture is used. Disable it with ``-p no:qelos``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI
    from starlette.types import ASGIApp

    from qelos_integrator_fastapi import QelosConfig, QelosRequestContext

    from . import FakeQelos, FakeUser, FakeWorkspace

__all__ = [
    "QelosClientFactory",
    "QelosOverride",
    "fake_qelos",
    "qelos_client",
    "qelos_config",
    "qelos_headers",
    "qelos_override",
]


class QelosClientFactory:
    """``qelos_client(app, user)``: an ``httpx.AsyncClient`` for ``app`` carrying ``user``'s credentials.

    ``mode="token"`` puts a fresh oauth pair in the ``q_access_token``/``q_refresh_token`` cookies;
    ``mode="session"`` puts a Qelos session cookie (``qlt_<tenant>``). ``user=None`` is anonymous.
    Use it as ``async with qelos_client(app, alice) as http: ...``.
    """

    def __init__(self, fake: FakeQelos) -> None:
        self.fake = fake

    def __call__(
        self,
        app: ASGIApp,
        user: Optional[FakeUser] = None,
        *,
        workspace: Optional[FakeWorkspace] = None,
        mode: str = "token",
        base_url: str = "http://testserver",
        access_token_cookie: str = "q_access_token",
        refresh_token_cookie: str = "q_refresh_token",
    ) -> httpx.AsyncClient:
        import httpx

        if mode not in ("token", "session"):
            raise ValueError(f"mode must be 'token' or 'session', got {mode!r}")
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
        if user is not None and mode == "token":
            pair = self.fake.issue_tokens(user, workspace=workspace)
            client.cookies.set(access_token_cookie, pair.access_token)
            client.cookies.set(refresh_token_cookie, pair.refresh_token)
        elif user is not None:
            client.cookies.set(self.fake.session_cookie_name, self.fake.issue_session_cookie(user, workspace=workspace))
        return client


class QelosOverride:
    """``qelos_override(app, user={...})``: every ``get_qelos``/``require_user`` of a FastAPI app sees this context.

    No Qelos call is made. Pass a ready ``QelosRequestContext``, or ``user``/``workspace``/
    ``workspaces``/``sdk`` to build one; ``user=None`` makes ``require_user`` answer 401 as usual.
    The handler's ``request.state.qelos`` is the same context. ``request.user`` is not changed: for
    that, sign in against ``fake_qelos``. Overrides are removed when the test ends.
    """

    def __init__(self) -> None:
        self._restore: List[Tuple[Dict[Callable[..., Any], Callable[..., Any]], Callable[..., Any], Any]] = []

    def __call__(
        self,
        app: FastAPI,
        context: Optional[QelosRequestContext] = None,
        *,
        user: Optional[Dict[str, Any]] = None,
        workspace: Optional[Dict[str, Any]] = None,
        workspaces: Optional[Sequence[Dict[str, Any]]] = None,
        sdk: Any = None,
    ) -> QelosRequestContext:
        from starlette.requests import HTTPConnection

        from qelos_integrator_fastapi import AuthMode, QelosRequestContext, get_qelos, require_user

        overrides = getattr(app, "dependency_overrides", None)
        if not isinstance(overrides, dict):
            raise TypeError(
                "qelos_override needs a FastAPI app (it uses app.dependency_overrides); for a Starlette app, "
                "sign in against fake_qelos with qelos_client instead"
            )
        if context is None:
            listed = list(workspaces) if workspaces is not None else ([workspace] if workspace else [])
            mode = AuthMode.TOKEN if user is not None else AuthMode.ANONYMOUS
            context = QelosRequestContext(user=user, workspace=workspace, workspaces=listed, mode=mode, sdk=sdk)
        pinned: QelosRequestContext = context

        async def pinned_get_qelos(request: HTTPConnection) -> Optional[QelosRequestContext]:
            request.scope.setdefault("state", {})["qelos"] = pinned
            return pinned

        async def pinned_require_user(request: HTTPConnection) -> QelosRequestContext:
            request.scope.setdefault("state", {})["qelos"] = pinned
            return await require_user(request)

        # FastAPI reads these annotations at run time; this module's annotations are strings (PEP 563).
        pinned_get_qelos.__annotations__["request"] = HTTPConnection
        pinned_require_user.__annotations__["request"] = HTTPConnection
        for dependency, replacement in ((get_qelos, pinned_get_qelos), (require_user, pinned_require_user)):
            self._restore.append((overrides, dependency, overrides.get(dependency, _MISSING)))
            overrides[dependency] = replacement
        return pinned

    def undo(self) -> None:
        while self._restore:
            overrides, dependency, previous = self._restore.pop()
            if previous is _MISSING:
                overrides.pop(dependency, None)
            else:
                overrides[dependency] = previous


_MISSING = object()


@pytest.fixture
def fake_qelos() -> FakeQelos:
    """A fresh, empty FakeQelos; seed it with ``add_user``/``add_workspace``/``add_blueprint``."""
    from . import FakeQelos

    return FakeQelos()


@pytest.fixture
def qelos_config(fake_qelos: FakeQelos) -> QelosConfig:
    """A QelosConfig whose Qelos calls are served in-process by ``fake_qelos``."""
    from qelos_integrator_fastapi import QelosConfig

    return QelosConfig(app_url=fake_qelos.url, transport=fake_qelos.transport, tenant=fake_qelos.tenant)


@pytest.fixture
def qelos_client(fake_qelos: FakeQelos) -> QelosClientFactory:
    """A factory of httpx clients signed in as ``fake_qelos`` users; see QelosClientFactory."""
    return QelosClientFactory(fake_qelos)


@pytest.fixture
def qelos_headers(fake_qelos: FakeQelos) -> Callable[..., Dict[str, str]]:
    """``qelos_headers(user, workspace=None)``: ``{"Authorization": "Bearer ..."}`` for any client (TestClient too)."""

    def headers(user: FakeUser, workspace: Optional[FakeWorkspace] = None) -> Dict[str, str]:
        return {"Authorization": f"Bearer {fake_qelos.issue_tokens(user, workspace=workspace).access_token}"}

    return headers


@pytest.fixture
def qelos_override() -> Iterator[QelosOverride]:
    """Pins the Qelos context of a FastAPI app for one test; see QelosOverride."""
    override = QelosOverride()
    yield override
    override.undo()
