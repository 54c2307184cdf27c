"""The `qelos` pytest plugin, exercised as a user would: a test file of theirs, run by pytest."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import qelos_integrator_fastapi.testing.pytest_plugin as plugin

pytest_plugins = ["pytester"]

USER_TESTS = """
from typing import Any, Dict

import pytest
from fastapi import FastAPI, Request
from starlette.testclient import TestClient

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware
from qelos_integrator_fastapi._dependencies import OptionalQelosContext, QelosContext


def create_app(config: QelosConfig) -> FastAPI:
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/me")
    async def me(qelos: QelosContext, request: Request) -> Dict[str, Any]:
        same = request.state.qelos is qelos
        return {"user": qelos.user["username"], "workspace": (qelos.workspace or {}).get("name"), "same": same}

    @app.get("/maybe")
    async def maybe(qelos: OptionalQelosContext) -> Dict[str, Any]:
        return {"user": qelos.user["username"] if qelos and qelos.user else None}

    return app


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def app(qelos_config: QelosConfig) -> FastAPI:
    return create_app(qelos_config)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["token", "session"])
async def test_signed_in(app: FastAPI, fake_qelos: Any, qelos_client: Any, mode: str) -> None:
    alice = fake_qelos.add_user("alice", "alice-pass", "alice@example.com")
    acme = fake_qelos.add_workspace("Acme", members={alice: ["user"]})
    async with qelos_client(app, alice, workspace=acme, mode=mode) as http:
        response = await http.get("/me")
    assert response.json() == {"user": "alice", "workspace": "Acme", "same": True}


@pytest.mark.anyio
async def test_anonymous(app: FastAPI, qelos_client: Any) -> None:
    async with qelos_client(app) as http:
        assert (await http.get("/me")).status_code == 401


def test_headers_with_testclient(app: FastAPI, fake_qelos: Any, qelos_headers: Any) -> None:
    bob = fake_qelos.add_user("bob", "bob-pass", "bob@example.com")
    with TestClient(app) as client:
        assert client.get("/maybe", headers=qelos_headers(bob)).json() == {"user": "bob"}


def test_override_without_qelos(app: FastAPI, fake_qelos: Any, qelos_override: Any) -> None:
    qelos_override(app, user={"_id": "u1", "username": "pinned"}, workspace={"_id": "w1", "name": "Pinned"})
    with TestClient(app) as client:
        assert client.get("/me").json() == {"user": "pinned", "workspace": "Pinned", "same": True}
        assert client.get("/maybe").json() == {"user": "pinned"}
    assert fake_qelos.requests == []


def test_override_anonymous_is_401(app: FastAPI, qelos_override: Any) -> None:
    qelos_override(app, user=None)
    with TestClient(app) as client:
        assert client.get("/me").status_code == 401


def test_overrides_are_gone_after_a_test(app: FastAPI) -> None:
    assert app.dependency_overrides == {}
"""


def test_a_users_test_file_passes_with_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user_app=USER_TESTS)
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=10)


def test_override_restores_what_was_there_and_refuses_starlette(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_restore="""
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from qelos_integrator_fastapi import get_qelos

app = FastAPI()
original = lambda: None
app.dependency_overrides[get_qelos] = original


def test_pin(qelos_override):
    qelos_override(app, user={"_id": "u"})
    assert app.dependency_overrides[get_qelos] is not original


def test_restored():
    assert app.dependency_overrides[get_qelos] is original
    assert len(app.dependency_overrides) == 1


def test_starlette(qelos_override):
    with pytest.raises(TypeError, match="FastAPI app"):
        qelos_override(Starlette(), user={"_id": "u"})
"""
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_the_plugin_is_registered_under_the_qelos_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_off="def test_it(fake_qelos):\n    pass\n")
    assert "fixture 'fake_qelos' not found" in str(pytester.runpytest("-p", "no:qelos").stdout)


def test_the_plugin_module_imports_nothing_heavy_at_load_time() -> None:
    # pytest imports the plugin in every run of every user who installs the package.
    tree = ast.parse(Path(plugin.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    modules = {alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)}
    assert modules <= {"__future__", "typing", "pytest"}
    assert sys.modules[plugin.__name__] is plugin
