from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from starlette.requests import HTTPConnection

from .config import QelosConfig, mask_secret
from .credentials import AuthMode
from .errors import WorkspaceSwitchError

if TYPE_CHECKING:
    from qelos_sdk import QelosSDK

    from .cookies import CookieBuffer


@dataclass
class TokenPair:
    """The caller's access and refresh tokens; mutated in place when they are refreshed."""

    access_token: Optional[str] = None
    refresh_token: Optional[str] = None

    def __repr__(self) -> str:
        return (
            f"TokenPair(access_token={mask_secret(self.access_token)}, refresh_token={mask_secret(self.refresh_token)})"
        )

    def copy(self) -> TokenPair:
        return TokenPair(self.access_token, self.refresh_token)


class QelosRequestContext:
    """What the middleware resolved for one request: ``request.state.qelos``.

    ``sdk`` is a real ``qelos_sdk.QelosSDK`` bound to this request's current credentials, built on
    first access. ``error`` is ``None``, or a code such as ``"QELOS_UNAVAILABLE"`` when Qelos could
    not answer and the request was left anonymous.
    """

    def __init__(
        self,
        *,
        sdk: Optional[QelosSDK] = None,
        tokens: Optional[TokenPair] = None,
        user: Optional[Dict[str, Any]] = None,
        workspace: Optional[Dict[str, Any]] = None,
        workspaces: Optional[List[Dict[str, Any]]] = None,
        mode: AuthMode = AuthMode.ANONYMOUS,
        error: Optional[str] = None,
        sdk_factory: Optional[Callable[[QelosRequestContext], QelosSDK]] = None,
    ) -> None:
        self.tokens = tokens if tokens is not None else TokenPair()
        self.user = user
        self.workspace = workspace
        self.workspaces = workspaces if workspaces is not None else []
        self.mode = mode
        self.error = error
        self._sdk = sdk
        self._sdk_factory = sdk_factory

    @property
    def sdk(self) -> QelosSDK:
        if self._sdk is None:
            if self._sdk_factory is None:
                raise RuntimeError("this QelosRequestContext was built without an SDK; pass sdk= to its constructor")
            self._sdk = self._sdk_factory(self)
        return self._sdk

    @sdk.setter
    def sdk(self, value: QelosSDK) -> None:
        self._sdk = value

    @property
    def sdk_built(self) -> bool:
        return self._sdk is not None

    @property
    def is_authenticated(self) -> bool:
        return self.user is not None

    async def activate_workspace(self, workspace_id: str) -> Dict[str, Any]:
        """Make ``workspace_id`` the caller's active workspace in Qelos, for this and later requests.

        Session-cookie callers only: Qelos signs a new session cookie carrying the workspace, which
        reaches the browser with this response. Bearer and ``q_*`` token callers get
        WorkspaceSwitchError, because Qelos cannot change the workspace of an oauth token (sign in
        again with ``{"workspace": id}``).
        """
        if self.mode is not AuthMode.SESSION:
            raise WorkspaceSwitchError(
                f"Qelos activates workspaces for session-cookie callers only; this request used {self.mode.value} "
                "credentials. Sign in again with {'workspace': <id>} to get tokens for another workspace."
            )
        activated: Dict[str, Any] = await self.sdk.workspaces.activate(workspace_id)
        self.workspace = next((w for w in self.workspaces if w.get("_id") == workspace_id), activated)
        if self.user is not None:
            self.user = {**self.user, "workspace": {"_id": workspace_id, "name": activated.get("name")}}
        return activated

    def __repr__(self) -> str:
        user_id = self.user.get("_id") if self.user else None
        workspace_id = self.workspace.get("_id") if self.workspace else None
        return (
            f"QelosRequestContext(mode={self.mode.value}, user={user_id!r}, workspace={workspace_id!r}, "
            f"workspaces={len(self.workspaces)}, tokens={self.tokens!r}, error={self.error!r})"
        )


class TokenRefreshContext:
    """What ``on_token_refresh`` hooks receive after a refresh rotated the caller's tokens.

    ``response`` is the request's CookieBuffer: cookies set on it land on the real response.
    """

    def __init__(
        self,
        *,
        request: HTTPConnection,
        response: CookieBuffer,
        config: QelosConfig,
        old_tokens: TokenPair,
        new_tokens: TokenPair,
        context: QelosRequestContext,
    ) -> None:
        self.request = request
        self.response = response
        self.config = config
        self.old_tokens = old_tokens
        self.new_tokens = new_tokens
        self._context = context

    @property
    def sdk(self) -> QelosSDK:
        return self._context.sdk

    def __repr__(self) -> str:
        return f"TokenRefreshContext(old_tokens={self.old_tokens!r}, new_tokens={self.new_tokens!r})"
