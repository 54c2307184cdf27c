from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple

if TYPE_CHECKING:
    from ._app import FakeQelos

DEMO_CREDENTIALS: List[Tuple[str, str, str]] = [
    ("alice", "alice-pass", "admin of the Acme and Globex workspaces"),
    ("bob", "bob-pass", "plain user of the Acme workspace"),
]
DEMO_WEBSITE_URLS = ("http://localhost:8000", "http://127.0.0.1:8000")


def seed_demo(fake: FakeQelos) -> None:
    """Two users, two workspaces, a workspace-scoped `products` blueprint with a few products."""
    alice = fake.add_user(
        "alice", "alice-pass", "alice@example.com", first_name="Alice", last_name="Liddell", roles=["user"]
    )
    bob = fake.add_user("bob", "bob-pass", "bob@example.com", first_name="Bob", last_name="Builder", roles=["user"])
    acme = fake.add_workspace("Acme", members={alice: ["admin", "user"], bob: ["user"]}, labels=["*"])
    globex = fake.add_workspace("Globex Corporation", members={alice: ["admin", "user"]}, labels=["*"])
    fake.add_blueprint(
        "products",
        properties={"name": {"type": "string", "required": True}, "price": "number", "active": "boolean"},
        permission_scope="workspace",
    )
    for name, price in (("Anvil", 49.5), ("Rocket skates", 120), ("Giant magnet", 15)):
        fake.add_entity("products", {"name": name, "price": price, "active": True}, user=alice, workspace=acme)
    fake.add_entity("products", {"name": "Hammock", "price": 80, "active": False}, user=alice, workspace=globex)
    fake.set_social_user(alice)
