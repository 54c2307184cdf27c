"""`python -m qelos_integrator_fastapi.testing`: the standalone FakeQelos, run as a user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from typing import Iterator, List

import httpx
import pytest

COMMAND = [sys.executable, "-m", "qelos_integrator_fastapi.testing"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    extra: List[str] = getattr(request, "param", [])
    process = subprocess.Popen(
        [*COMMAND, "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/api/me", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_serves_the_demo_world(served: str) -> None:
    reply = httpx.post(
        f"{served}/api/signin", json={"username": "alice", "password": "alice-pass", "authType": "oauth"}
    )
    assert reply.status_code == 200
    assert reply.json()["payload"]["user"]["username"] == "alice"


@pytest.mark.parametrize("served", [["--website-url", "http://127.0.0.1:9000"]], indirect=True)
def test_social_login_returns_to_the_apps_given_with_website_url(served: str) -> None:
    allowed = httpx.get(f"{served}/api/auth/google", params={"returnUrl": "http://127.0.0.1:9000/auth/callback"})
    assert allowed.status_code == 302
    assert allowed.headers["location"].startswith("http://127.0.0.1:9000/auth/callback")
    # The demo's default origin is no longer allowed once origins are given: as Qelos does with a return URL
    # it does not trust, FakeQelos completes its own browser flow (302 to its own "/"), never to that app.
    refused = httpx.get(f"{served}/api/auth/google", params={"returnUrl": "http://localhost:8000/auth/callback"})
    assert refused.status_code == 302
    assert not refused.headers["location"].startswith("http://localhost:8000")


def test_a_taken_port_is_reported_before_anything_else() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run([*COMMAND, "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"FakeQelos cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "try --port" in result.stderr


def test_without_the_testing_extra_the_error_names_what_to_install() -> None:
    # PyJWT missing, as after `pip install qelos-integrator-fastapi` without [testing].
    code = "import sys; sys.modules['jwt'] = None; from qelos_integrator_fastapi.testing import FakeQelos"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "pip install 'qelos-integrator-fastapi[testing]'" in result.stderr
