"""Real processes sharing one redis-server: `uvicorn --workers 3`, and two uvicorn processes standing for two
hosts, in front of a standalone FakeQelos (benchmarks/fake_server.py, for its /__mint, /__advance and /__stats)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Set, Tuple

import anyio
import httpx
import pytest

from ..support import RedisServer, cookie_value, free_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
ACCESS_TTL = 18000
BURST = 12


class Uvicorn:
    """``uvicorn <target> --app-dir benchmarks`` on a loopback port, until ``stop``."""

    def __init__(self, target: str, env: Dict[str, str], workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        argv = [sys.executable, "-m", "uvicorn", target, "--app-dir", str(ROOT / "benchmarks"), "--no-access-log"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers), "--log-level", "info"]
        # Outlives this call: closed by stop(), after the process has stopped.
        self.log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        clean = {key: value for key, value in os.environ.items() if not key.startswith("QELOS_")}
        self.process = subprocess.Popen(
            argv, env={**clean, **env}, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self) -> None:
        """Until every worker has started its app (each logs it), not only until the socket listens."""
        deadline = time.monotonic() + 60
        while self.output().count("Application startup complete") < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start on {self.url}:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def servers(redis_server: RedisServer) -> Iterator[Dict[str, Any]]:
    fake = Uvicorn("fake_server:app", {})
    fake.wait_ready()
    app_env = {"BENCH_APP": "middleware", "QELOS_APP_URL": fake.url, "QELOS_REDIS_URL": redis_server.url}
    apps = [Uvicorn("apps:app", app_env, workers=3), Uvicorn("apps:app", app_env), Uvicorn("apps:app", app_env)]
    try:
        for app in apps:
            app.wait_ready()
        yield {"fake": fake.url, "workers": [apps[0].url], "hosts": [apps[1].url, apps[2].url]}
    finally:
        for app in apps:
            app.stop()
        fake.stop()


class Admin:
    def __init__(self, url: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, trust_env=False, timeout=10)

    async def expired_pair(self) -> Tuple[str, str]:
        """A fresh pair for alice whose access token has expired; the fake's call log emptied."""
        pair = (await self.http.post("/__mint", params={"username": "alice"})).raise_for_status().json()
        (await self.http.post("/__advance", params={"seconds": ACCESS_TTL + 1})).raise_for_status()
        (await self.http.post("/__reset")).raise_for_status()
        return pair["access_token"], pair["refresh_token"]

    async def slow_refresh(self, seconds: float) -> None:
        params = {"endpoint": "POST /api/token/refresh", "latency": str(seconds)}
        (await self.http.post("/__inject", params=params)).raise_for_status()

    async def refreshes(self) -> int:
        count: int = (await self.http.get("/__stats")).raise_for_status().json()["refresh"]
        return count


async def whoami(url: str, pair: Tuple[str, str]) -> httpx.Response:
    """One request on a connection of its own, carrying the pair in the browser's cookies."""
    cookie = f"q_access_token={pair[0]}; q_refresh_token={pair[1]}"
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        return await http.get(f"{url}/whoami", headers={"cookie": cookie})


async def burst(urls: List[str], pair: Tuple[str, str]) -> List[httpx.Response]:
    answers: List[httpx.Response] = []

    async def one(url: str) -> None:
        answers.append(await whoami(url, pair))

    async with anyio.create_task_group() as tg:
        for i in range(BURST):
            tg.start_soon(one, urls[i % len(urls)])
    return answers


def successors(answers: List[httpx.Response]) -> Set[Tuple[Optional[str], Optional[str]]]:
    return {(cookie_value(a, "q_access_token"), cookie_value(a, "q_refresh_token")) for a in answers}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("where", ["workers", "hosts"])
async def test_twelve_parallel_requests_with_one_expired_pair_make_one_refresh(
    servers: Dict[str, Any], where: str
) -> None:
    admin = Admin(servers["fake"])
    pids: Set[int] = set()
    try:
        # Three bursts at least; more (up to ten) only until a second process has answered, because the kernel,
        # not uvicorn, spreads new connections over the workers, and under load one worker may accept them all.
        for round_ in range(10):
            if round_ >= 3 and len(pids) >= 2:
                break
            pair = await admin.expired_pair()
            if round_:
                # Later bursts: every request arrives while the one refresh is in flight.
                await admin.slow_refresh(0.3)
            answers = await burst(servers[where], pair)
            assert [a.status_code for a in answers] == [200] * BURST
            assert [a.json()["user"] for a in answers].count(None) == 0, [a.json() for a in answers]
            assert await admin.refreshes() == 1
            (new,) = successors(answers)
            assert new[0] and new[1] and new[1] != pair[1]
            pids.update(a.json()["pid"] for a in answers)
    finally:
        await admin.http.aclose()
    assert len(pids) >= 2, "the bursts never reached more than one process"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_abandoned_refresh_still_signs_in_every_later_request(servers: Dict[str, Any]) -> None:
    admin = Admin(servers["fake"])
    urls = [*servers["workers"], *servers["hosts"]]
    try:
        pair = await admin.expired_pair()
        await admin.slow_refresh(1.0)
        with anyio.move_on_after(0.3) as abandoned:  # the tab is closed while its request refreshes
            await whoami(urls[0], pair)
        assert abandoned.cancelled_caught
        answers = []
        for i in range(9):
            answers.append(await whoami(urls[i % len(urls)], pair))
        assert [a.json()["user"] for a in answers].count(None) == 0
        assert await admin.refreshes() == 1
        assert len(successors(answers)) == 1
    finally:
        await admin.http.aclose()
