from __future__ import annotations

import subprocess
import sys

import pytest

import qelos_integrator_fastapi
import qelos_integrator_fastapi.testing


def test_all_is_sorted_complete_and_every_name_resolves() -> None:
    for package in (qelos_integrator_fastapi, qelos_integrator_fastapi.testing):
        exported = package.__all__
        assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
        assert set(exported) == set(package._EXPORTS)
        for name in exported:
            assert getattr(package, name) is not None
        assert set(exported) <= set(dir(package))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NotAThing"):
        getattr(qelos_integrator_fastapi, "NotAThing")  # noqa: B009


def test_importing_the_package_and_its_pytest_plugin_is_cheap() -> None:
    code = (
        "import sys, qelos_integrator_fastapi, qelos_integrator_fastapi.testing.pytest_plugin;"
        "heavy = [m for m in ('fastapi', 'jwt', 'qelos_sdk', 'pydantic') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("qelos_integrator_fastapi", "QelosIntegratorMiddleware"),
        ("qelos_integrator_fastapi", "QelosAuthBackend"),
        ("qelos_integrator_fastapi", "QelosUser"),
        ("qelos_integrator_fastapi", "QelosConfig"),
        ("qelos_integrator_fastapi", "QelosRequestContext"),
        ("qelos_integrator_fastapi", "create_qelos_auth_routes"),
        ("qelos_integrator_fastapi", "QELOS_PROVIDERS"),
        ("qelos_integrator_fastapi.testing", "FakeQelos"),
    ],
)
def test_plain_starlette_names_never_import_fastapi(module: str, name: str) -> None:
    # A fresh interpreter per name: one import must not hide what another pulled in.
    code = f"import sys; from {module} import {name}; print('fastapi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_fastapi_names_do_import_fastapi() -> None:
    # The check above can fail: the FastAPI router wrapper does need FastAPI.
    code = "import sys; from qelos_integrator_fastapi import create_qelos_auth_router; print('fastapi' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
