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
# Each step's screenshot (gitignored); docs/img/demo.png in the README is the home page's.
SCREENSHOTS = ROOT / "screenshots"

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


def shoot(page: Page, step: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{step}.png"), full_page=True)


def test_walk_the_demo_and_read_what_the_middleware_saw(demo_url: str, page: Page) -> None:
    page.set_viewport_size({"width": 1200, "height": 760})
    page.goto(f"{demo_url}/")
    assert page.url == f"{demo_url}/login"
    assert page.inner_text("#panel-user").startswith("anonymous")
    assert page.inner_text("#panel-calls") == "0"
    shoot(page, "1-login")

    page.fill("#username", "alice")
    page.fill("#password", "alice-pass")
    page.click("#sign-in")
    page.wait_for_url(f"{demo_url}/")
    assert page.inner_text("#user-name") == "Alice Liddell"
    assert page.inner_text("#workspace-name") == "Acme"
    session = {cookie["name"]: cookie for cookie in page.context.cookies()}["qlt_0"]
    assert session["path"] == "/" and session["httpOnly"] and not session["secure"]
    # The panel: request.user, request.auth, the credential, the two identity calls, no cookie to set.
    assert page.inner_text("#panel-user").startswith("Alice Liddell (id ")
    assert "workspace:admin" in page.inner_text("#panel-scopes")
    assert page.inner_text("#panel-mode") == "session"
    assert page.inner_text("#panel-workspace") == "Acme: the one Qelos says is active"
    assert page.inner_text("#panel-calls") == "2"
    assert page.inner_text("#panel-cookies") == "none"
    shoot(page, "2-home")

    page.select_option("#workspace", label="Globex Corporation")
    page.click("#switch")
    page.wait_for_url(f"{demo_url}/?notice=switched")
    assert page.inner_text("#workspace-name") == "Globex Corporation"
    assert page.inner_text("#panel-workspace").startswith("Globex Corporation: ")
    shoot(page, "3-switched")

    page.click("text=Products")
    page.wait_for_url(f"{demo_url}/products")
    assert page.inner_text(".product-name") == "Hammock"
    assert page.inner_text("#panel-calls") == "3"  # who is calling, then the SDK's entity list
    shoot(page, "4-products")

    # FakeQelos' clock jumps past the session cookie's rotation age: Qelos re-signs it, the middleware relays it.
    before = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}["qlt_0"]
    page.click("#expire")
    page.wait_for_url(f"{demo_url}/?notice=expired")
    relayed = page.inner_text("#panel-cookies")
    assert relayed.startswith("qlt_0=eyJ…(") and "HttpOnly" in relayed and "Path=/" in relayed
    assert before not in page.content()  # values are masked
    after = {cookie["name"]: cookie["value"] for cookie in page.context.cookies()}["qlt_0"]
    assert after != before
    shoot(page, "5-rotated")

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
