from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ._models import FakeMember, FakeUser, FakeWorkspace


@dataclass
class TokenRecord:
    """An entry of `user.tokens`: a cookie session or an oauth refresh token."""

    kind: str
    identifier: str
    expires_at: float
    related_token: Optional[str] = None
    workspace_id: Optional[str] = None


@dataclass
class ApiTokenRecord:
    id: str
    user_id: str
    tenant: str
    workspace_id: Optional[str]
    nickname: str
    token_hash: str
    expires_at: float
    created: str
    usage_count: int = 0
    last_used_at: Optional[str] = None


@dataclass
class PropertySpec:
    type: str
    required: bool = False
    multi: bool = False
    enum: Optional[List[Any]] = None
    min: Optional[float] = None
    max: Optional[float] = None


@dataclass
class Blueprint:
    key: str
    properties: Dict[str, PropertySpec]
    permission_scope: str
    permissions: List[Dict[str, Any]]


@dataclass
class EntityRecord:
    tenant: str
    identifier: str
    blueprint: str
    user: Optional[str]
    workspace: Optional[str]
    metadata: Dict[str, Any]
    created: str
    updated: str
    version: int = 0


def hash_api_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class Store:
    """The fake's database: one tenant's users, workspaces, token records, API tokens and entities."""

    users: Dict[str, FakeUser] = field(default_factory=dict)
    workspaces: Dict[str, FakeWorkspace] = field(default_factory=dict)
    tokens: Dict[str, List[TokenRecord]] = field(default_factory=dict)
    api_tokens: Dict[str, ApiTokenRecord] = field(default_factory=dict)
    blueprints: Dict[str, Blueprint] = field(default_factory=dict)
    entities: Dict[str, Dict[str, EntityRecord]] = field(default_factory=dict)
    rotation_locks: Dict[str, float] = field(default_factory=dict)
    last_login_workspace: Dict[str, Optional[str]] = field(default_factory=dict)
    profile_cache: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    social_user_id: Optional[str] = None

    def find_login(self, login: str, roles: Optional[List[Any]] = None) -> Optional[FakeUser]:
        """Qelos's `getUser`: an exact username, else an exact email, which then becomes the username; with
        `roles`, only users holding one of them."""
        eligible = [user for user in self.users.values() if roles is None or any(r in user.roles for r in roles)]
        for user in eligible:
            if user.username == login:
                return user
        for user in eligible:
            if user.email == login:
                user.username = user.email
                return user
        return None

    def memberships(self, user_id: str) -> List[Tuple[FakeWorkspace, FakeMember]]:
        found = []
        for workspace in self.workspaces.values():
            member = workspace.member(user_id)
            if member is not None:
                found.append((workspace, member))
        return found

    def add_token(self, user_id: str, record: TokenRecord) -> None:
        self.tokens.setdefault(user_id, []).append(record)

    def remove_token(self, user_id: str, identifier: Any) -> bool:
        records = self.tokens.get(user_id, [])
        kept = [record for record in records if record.identifier != identifier]
        self.tokens[user_id] = kept
        return len(kept) != len(records)

    def remove_related(self, user_id: str, access_token: str) -> None:
        records = self.tokens.get(user_id, [])
        self.tokens[user_id] = [record for record in records if record.related_token != access_token]

    def prune_expired(self, user_id: str, now: float) -> None:
        self.tokens[user_id] = [record for record in self.tokens.get(user_id, []) if record.expires_at > now]

    def try_lock(self, key: str, now: float, ttl: float) -> bool:
        if self.rotation_locks.get(key, 0.0) > now:
            return False
        self.rotation_locks[key] = now + ttl
        return True

    def api_token(self, raw: str) -> Optional[ApiTokenRecord]:
        return self.api_tokens.get(hash_api_token(raw))
