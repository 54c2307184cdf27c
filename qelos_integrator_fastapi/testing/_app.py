from __future__ import annotations

import asyncio
import secrets
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import anyio
import httpx
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ._call import Call, Services, gateway_tenant
from ._clock import FakeClock
from ._cookies import session_cookie_name, strip_port
from ._endpoint import Endpoint
from ._entities import flat_entity
from ._entity_rules import PROPERTY_TYPES, default_permissions, valid_metadata
from ._faults import Fault, FaultPlan
from ._http import Unanswered
from ._ids import iso_time, object_id, uuid7
from ._log import LoggedRequest, RequestLog
from ._models import FakeMember, FakeTokenPair, FakeUser, FakeWorkspace
from ._routes import Router
from ._sessions import claim_for, issue_cookie, issue_oauth_pair
from ._settings import DEFAULT_JWT_SECRET, DEFAULT_REFRESH_TOKEN_SECRET, Settings
from ._store import ApiTokenRecord, Blueprint, EntityRecord, PropertySpec, Store, hash_api_token
from ._tokens import TokenSigner

PropertyDefinition = Union[str, Mapping[str, Any]]
JSONBody = Union[None, str, Dict[str, Any], List[Any]]

_DAY = 86400.0


class FakeQelos:
    """An in-memory Qelos backend, as an ASGI application. See the package docstring for the contract."""

    def __init__(
        self,
        *,
        tenant: str = "0",
        clock: Optional[FakeClock] = None,
        url: str = "https://qelos.test",
        access_token_ttl: float = 300 * 60.0,
        refresh_token_ttl: float = 30 * _DAY,
        cookie_token_ttl: float = 30 * _DAY,
        cookie_rotation_after: float = 30 * 60.0,
        website_urls: Sequence[str] = (),
        jwt_secret: str = DEFAULT_JWT_SECRET,
        refresh_token_secret: str = DEFAULT_REFRESH_TOKEN_SECRET,
        hosts: Optional[Mapping[str, str]] = None,
    ) -> None:
        settings = Settings(
            tenant=tenant,
            url=url.rstrip("/"),
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
            cookie_token_ttl=cookie_token_ttl,
            cookie_rotation_after=cookie_rotation_after,
            website_urls=tuple(website_urls),
            jwt_secret=jwt_secret,
            refresh_token_secret=refresh_token_secret,
            hosts={strip_port(host).lower(): mapped for host, mapped in (hosts or {}).items()},
        )
        self.clock = clock if clock is not None else FakeClock()
        self._services = Services(settings, self.clock, Store(), TokenSigner(settings, self.clock))
        self._router = Router()
        self._log = RequestLog()
        self._faults = FaultPlan()
        self._transport: Optional[httpx.AsyncBaseTransport] = None

    @property
    def tenant(self) -> str:
        return self._services.settings.tenant

    @property
    def url(self) -> str:
        return self._services.settings.url

    @property
    def session_cookie_name(self) -> str:
        return session_cookie_name(self.tenant)

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that serves requests from this fake in-process."""
        if self._transport is None:
            self._transport = _InProcessTransport(self, self.url, self._services.settings.hosts)
        return self._transport

    @property
    def requests(self) -> List[LoggedRequest]:
        return self._log.entries

    def count(self, endpoint: str) -> int:
        return self._log.count(endpoint)

    def reset_log(self) -> None:
        self._log.reset()

    def inject(
        self,
        endpoint: str,
        *,
        status: Optional[int] = None,
        body: JSONBody = None,
        latency: float = 0.0,
        malformed: bool = False,
        drop: bool = False,
        times: Optional[int] = None,
    ) -> None:
        fault = Fault(Endpoint.parse(endpoint), status, body, latency, malformed, drop, times)
        self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def add_user(
        self,
        username: str,
        password: str,
        email: str,
        *,
        first_name: Optional[str] = None,
        last_name: Optional[str] = None,
        full_name: Optional[str] = None,
        roles: Sequence[str] = ("user",),
        metadata: Optional[Mapping[str, Any]] = None,
        phone: Optional[str] = None,
        profile_image: Optional[str] = None,
        birth_date: Optional[str] = None,
    ) -> FakeUser:
        store = self._services.store
        if any(u.username.lower() == username.lower() or u.email.lower() == email.lower() for u in self._users()):
            raise ValueError(f"a user with username {username!r} or email {email!r} already exists")
        now = self.clock.now()
        user = FakeUser(
            id=object_id(now),
            username=username,
            password=password,
            email=email,
            first_name=first_name,
            last_name=last_name,
            full_name=full_name,
            roles=list(roles),
            metadata=dict(metadata or {}),
            phone=phone,
            profile_image=profile_image,
            birth_date=birth_date,
            created=iso_time(now),
        )
        store.users[user.id] = user
        return user

    def user(self, username: str) -> FakeUser:
        """The seeded user with this username, e.g. `FakeQelos.demo().user("alice")`."""
        found = next((user for user in self._users() if user.username == username), None)
        if found is None:
            raise KeyError(f"no user {username!r}")
        return found

    def workspace(self, name: str) -> FakeWorkspace:
        found = next((w for w in self._services.store.workspaces.values() if w.name == name), None)
        if found is None:
            raise KeyError(f"no workspace {name!r}")
        return found

    def add_workspace(
        self,
        name: str,
        *,
        members: Optional[Mapping[FakeUser, Sequence[str]]] = None,
        labels: Sequence[str] = (),
        logo: Optional[str] = None,
    ) -> FakeWorkspace:
        now = self.clock.now()
        workspace = FakeWorkspace(object_id(now), name, self.tenant, list(labels), logo, created=iso_time(now))
        self._services.store.workspaces[workspace.id] = workspace
        for user, roles in (members or {}).items():
            self.add_member(workspace, user, roles)
        return workspace

    def add_member(self, workspace: FakeWorkspace, user: FakeUser, roles: Sequence[str]) -> None:
        self._check_known(user, workspace)
        member = workspace.member(user.id)
        if member is not None:
            member.roles = list(roles)
            return
        now = self.clock.now()
        workspace.members.append(FakeMember(user.id, list(roles), iso_time(now), object_id(now)))

    def remove_member(self, workspace: FakeWorkspace, user: FakeUser) -> None:
        workspace.members = [member for member in workspace.members if member.user != user.id]

    def issue_tokens(self, user: FakeUser, *, workspace: Optional[FakeWorkspace] = None) -> FakeTokenPair:
        """An oauth pair recorded as a signin would record it; the workspace claim is the full object."""
        self._check_known(user, workspace)
        claim = claim_for(user, workspace) if workspace else None
        return issue_oauth_pair(self._services, user, tenant=self.tenant, workspace=claim)

    def issue_session_cookie(self, user: FakeUser, *, workspace: Optional[FakeWorkspace] = None) -> str:
        """A 30-day cookie JWT whose tokenIdentifier is recorded, as a cookie signin would issue it."""
        self._check_known(user, workspace)
        claim = claim_for(user, workspace) if workspace else None
        return issue_cookie(self._services, user, tenant=self.tenant, workspace=claim)

    def add_api_token(
        self,
        user: FakeUser,
        *,
        workspace: Optional[FakeWorkspace] = None,
        expires_in: float = 3600.0,
        nickname: str = "FakeQelos token",
    ) -> str:
        """Create an API token for `x-api-key`; only its sha256 is stored, as in Qelos."""
        self._check_known(user, workspace)
        raw = "ql_" + secrets.token_hex(32)
        now = self.clock.now()
        record = ApiTokenRecord(
            id=object_id(now),
            user_id=user.id,
            tenant=self.tenant,
            workspace_id=workspace.id if workspace else None,
            nickname=nickname,
            token_hash=hash_api_token(raw),
            expires_at=now + expires_in,
            created=iso_time(now),
        )
        self._services.store.api_tokens[record.token_hash] = record
        return raw

    def add_blueprint(
        self,
        key: str,
        *,
        properties: Mapping[str, PropertyDefinition],
        permission_scope: str = "workspace",
        permissions: Optional[Sequence[Mapping[str, Any]]] = None,
    ) -> None:
        """Register a blueprint. `permissions=None` lets holders of the `user` role CRUD at `permission_scope`."""
        if permission_scope not in ("user", "workspace", "tenant"):
            raise ValueError("permission_scope must be 'user', 'workspace' or 'tenant'")
        specs = {name: _property_spec(name, definition) for name, definition in properties.items()}
        if permissions is None:
            entries = default_permissions(permission_scope)
        else:
            entries = [dict(entry) for entry in permissions]
        self._services.store.blueprints[key] = Blueprint(key, specs, permission_scope, entries)

    def add_entity(
        self,
        blueprint_key: str,
        metadata: Mapping[str, Any],
        *,
        user: Optional[FakeUser] = None,
        workspace: Optional[FakeWorkspace] = None,
    ) -> Dict[str, Any]:
        """Seed an entity (validated like a create) and return it in the flat shape."""
        store = self._services.store
        blueprint = store.blueprints.get(blueprint_key)
        if blueprint is None:
            raise KeyError(f"no blueprint {blueprint_key!r}; call add_blueprint first")
        now = self.clock.now()
        record = EntityRecord(
            tenant=self.tenant,
            identifier=uuid7(now),
            blueprint=blueprint_key,
            user=user.id if user else None,
            workspace=workspace.id if workspace else None,
            metadata=valid_metadata(metadata, blueprint),
            created=iso_time(now),
            updated=iso_time(now),
        )
        store.entities.setdefault(blueprint_key, {})[record.identifier] = record
        return flat_entity(record)

    def entities(self, blueprint_key: str) -> List[Dict[str, Any]]:
        """Every stored entity of a blueprint, in the flat shape, regardless of permissions."""
        return [flat_entity(record) for record in self._services.store.entities.get(blueprint_key, {}).values()]

    def set_social_user(self, user: Optional[FakeUser]) -> None:
        """The user the fake social provider signs in; None disables social login."""
        if user is not None:
            self._check_known(user, None)
        self._services.store.social_user_id = user.id if user else None

    @classmethod
    def demo(cls, **options: Any) -> FakeQelos:
        from ._demo import seed_demo

        fake = cls(**options)
        seed_demo(fake)
        return fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})
            return
        request = Request(scope, receive)
        fault = self._faults.take(request.method, request.url.path)
        if fault is not None and fault.latency:
            await anyio.sleep(fault.latency)
        if fault is not None and fault.drop:
            self._log.record(request, None)
            await _drop_connection(send)
            return
        if fault is not None and fault.replaces_response:
            response = fault.response()
        else:
            call = Call(request, self._services, gateway_tenant(request, self._services.settings))
            try:
                response = await self._router.handle(call)
            except Unanswered:
                self._log.record(request, None)
                await _drop_connection(send)
                return
        self._log.record(request, response.status_code)
        await response(scope, receive, send)

    def _users(self) -> List[FakeUser]:
        return list(self._services.store.users.values())

    def _check_known(self, user: FakeUser, workspace: Optional[FakeWorkspace]) -> None:
        store = self._services.store
        if store.users.get(user.id) is not user:
            raise ValueError(f"{user!r} was not created by this FakeQelos")
        if workspace is not None and store.workspaces.get(workspace.id) is not workspace:
            raise ValueError(f"{workspace!r} was not created by this FakeQelos")

    def __repr__(self) -> str:
        return f"FakeQelos(tenant={self.tenant!r}, url={self.url!r})"


def _property_spec(name: str, definition: PropertyDefinition) -> PropertySpec:
    if isinstance(definition, str):
        definition = {"type": definition}
    kind = definition.get("type")
    if kind not in PROPERTY_TYPES:
        raise ValueError(f"property {name!r} has type {kind!r}; expected one of {', '.join(PROPERTY_TYPES)}")
    return PropertySpec(
        type=str(kind),
        required=bool(definition.get("required", False)),
        multi=bool(definition.get("multi", False)),
        enum=list(definition["enum"]) if definition.get("enum") else None,
        min=definition.get("min"),
        max=definition.get("max"),
    )


async def _serve_lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _drop_connection(send: Send) -> None:
    # uvicorn's `send` is a bound method of its request cycle, which holds the socket's transport;
    # closing it before any byte is written is a real drop. uvicorn answers 500 to an app that fails
    # without responding, so raising would not drop anything there.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if isinstance(transport, asyncio.BaseTransport):
        transport.close()
        await anyio.sleep(0)
        return
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


class _InProcessTransport(httpx.AsyncBaseTransport):
    """Serves the fake in-process, and only at its own host: like a network, a request sent
    anywhere else (a wrong app_url, a stale base URL) fails to connect instead of being answered."""

    def __init__(self, app: ASGIApp, url: str, hosts: Iterable[str]) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        parts = httpx.URL(url)
        self._origins = {(parts.scheme, host, parts.port) for host in (parts.host, *hosts)}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if (request.url.scheme, request.url.host, request.url.port) not in self._origins:
            served = ", ".join(sorted(host for _, host, _ in self._origins))
            raise httpx.ConnectError(
                f"nothing answers at {request.url.host} (FakeQelos serves {served})", request=request
            )
        return await self._asgi.handle_async_request(request)
