from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import qelos_integrator_fastapi
import qelos_integrator_fastapi.testing

# 4.0.1's public modules, sorted as listed on disk.
DEPRECATED_MODULES = (
    "config",
    "context",
    "cookies",
    "dependencies",
    "middleware",
    "models",
    "proxy",
    "proxy_target",
    "sdk_factory",
)


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
        ("qelos_integrator_fastapi", "create_qelos_proxy_routes"),
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


def test_implementation_lives_in_private_modules() -> None:
    # Like httpx: the package root (and the public testing package) is the API; every other module is private,
    # so users import from the root and a module can move without breaking them.
    package = Path(qelos_integrator_fastapi.__file__).parent
    public = sorted(
        path.name for path in package.iterdir() if not path.name.startswith("_") and path.name != "py.typed"
    )
    # ...but for 4.0.1's modules, kept (each warns on import) for the 5.x series: tests/test_compat_401.py.
    assert public == sorted(["testing", *(f"{name}.py" for name in DEPRECATED_MODULES)])
    testing_public = sorted(path.name for path in (package / "testing").iterdir() if not path.name.startswith("_"))
    assert testing_public == ["pytest_plugin.py"]


def test_the_deprecated_modules_each_warn_on_import() -> None:
    # A fresh interpreter, so no module is cached; each import must raise under -W error::DeprecationWarning.
    code = (
        "import importlib, sys\n"
        f"for name in {list(DEPRECATED_MODULES)!r}:\n"
        "    try:\n"
        "        importlib.import_module('qelos_integrator_fastapi.' + name)\n"
        "    except DeprecationWarning as warning:\n"
        "        if f'qelos_integrator_fastapi.{name} is deprecated' in str(warning):\n"
        "            continue\n"
        "        raise\n"
        "    sys.exit('no warning: ' + name)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_docs_and_examples_import_from_the_package_root_only() -> None:
    root = Path(qelos_integrator_fastapi.__file__).parent.parent
    texts = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted((root / "examples").rglob("*.py"))]
    private = re.compile(r"(?:from|import)\s+qelos_integrator_fastapi(?:\.testing)?\._")
    offenders = [str(path.relative_to(root)) for path in texts if private.search(path.read_text())]
    assert offenders == []
