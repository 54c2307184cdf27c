from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass(eq=False)
class FakeUser:
    """A user of the fake backend; FakeQelos mutates it as the real backend would its record."""

    id: str
    username: str
    password: str
    email: str
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    full_name: Optional[str] = None
    roles: List[str] = field(default_factory=lambda: ["user"])
    metadata: Dict[str, Any] = field(default_factory=dict)
    phone: Optional[str] = None
    profile_image: Optional[str] = None
    birth_date: Optional[str] = None
    created: str = ""

    @property
    def display_name(self) -> str:
        if self.full_name:
            return self.full_name
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    def __repr__(self) -> str:
        return f"FakeUser(id={self.id!r}, username={self.username!r}, roles={self.roles!r})"


@dataclass(eq=False)
class FakeMember:
    user: str
    roles: List[str]
    created: str
    id: str

    def as_json(self) -> Dict[str, Any]:
        return {"user": self.user, "roles": list(self.roles), "created": self.created, "_id": self.id}


@dataclass(eq=False)
class FakeWorkspace:
    id: str
    name: str
    tenant: str
    labels: List[str] = field(default_factory=list)
    logo: Optional[str] = None
    members: List[FakeMember] = field(default_factory=list)
    invites: List[Dict[str, Any]] = field(default_factory=list)
    created: str = ""

    def member(self, user_id: str) -> Optional[FakeMember]:
        return next((member for member in self.members if member.user == user_id), None)

    def __repr__(self) -> str:
        return f"FakeWorkspace(id={self.id!r}, name={self.name!r})"


@dataclass(frozen=True)
class FakeTokenPair:
    """An oauth access/refresh pair, as `POST /api/signin` with `authType: "oauth"` returns it."""

    access_token: str
    refresh_token: str

    def __repr__(self) -> str:
        return "FakeTokenPair(access_token='***', refresh_token='***')"
