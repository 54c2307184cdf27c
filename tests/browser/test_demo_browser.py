"""The FastAPI demo in a real headless Chromium (Debian's), served by uvicorn on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("QELOS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None  # type: ignore[assignment]

if sync_playwright is None:
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)
if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("QELOS_")}
    env["PORT"] = str(port)
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app.app:app", "--host", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*command, "--port", str(port)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            yield wait_until_serving(f"http://127.0.0.1:{port}", server, log)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_until_serving(url: str, server: subprocess.Popen[bytes], log: IO[bytes]) -> str:
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{url}/login", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            pytest.fail(f"the demo did not start on {url}: {log.read().decode(errors='replace')}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=20_000)
        try:
            context = browser.new_context()
            context.set_default_timeout(10_000)
            yield context.new_page()
        finally:
            browser.close()


def test_sign_in_see_user_switch_workspace_sign_out(demo_url: str, page: Page) -> None:
    page.goto(f"{demo_url}/")
    assert page.url == f"{demo_url}/login"
    page.fill("#username", "alice")
    page.fill("#password", "alice-pass")
    page.click("#sign-in")
    page.wait_for_url(f"{demo_url}/")
    assert page.inner_text("#user-name") == "Alice Liddell"
    assert page.inner_text("#workspace-name") == "Acme"
    session = {cookie["name"]: cookie for cookie in page.context.cookies()}["qlt_0"]
    assert session["path"] == "/" and session["httpOnly"] and not session["secure"]

    page.select_option("#workspace", label="Globex Corporation")
    page.click("#switch")
    page.wait_for_url(f"{demo_url}/?notice=switched")
    assert page.inner_text("#workspace-name") == "Globex Corporation"
    page.click("text=Products")
    page.wait_for_url(f"{demo_url}/products")
    assert page.inner_text(".product-name") == "Hammock"

    page.click("#sign-out")
    page.wait_for_url(f"{demo_url}/login")
    assert "qlt_0" not in {cookie["name"] for cookie in page.context.cookies()}
    page.goto(f"{demo_url}/")
    assert page.url == f"{demo_url}/login"


def test_wrong_password_and_social_login(demo_url: str, page: Page) -> None:
    page.goto(f"{demo_url}/login")
    page.fill("#username", "alice")
    page.fill("#password", "nope")
    page.click("#sign-in")
    page.wait_for_url(f"{demo_url}/login?error=INVALID_CREDENTIALS*")
    assert page.inner_text("#error") == "Invalid username or password."

    page.click("#social-github")
    page.wait_for_url(f"{demo_url}/")
    assert page.inner_text("#user-name") == "Alice Liddell"
    page.click("#sign-out")
    page.wait_for_url(f"{demo_url}/login")
