"""Shared plumbing of the benchmark scripts: loopback servers in subprocesses and a bounded load driver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence

import httpx

BENCH_DIR = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One uvicorn process (one worker, no access log) serving `target` on a loopback port."""

    def __init__(
        self,
        target: str,
        *,
        env: Optional[Mapping[str, str]] = None,
        python_flags: Sequence[str] = (),
        log_level: str = "warning",
        workers: int = 1,
    ) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._argv = [
            sys.executable,
            *python_flags,
            "-m",
            "uvicorn",
            target,
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--no-access-log",
            "--log-level",
            log_level,
            "--workers",
            str(workers),
        ]
        # Outlives this call: closed by close(), after the process has stopped.
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.process = subprocess.Popen(
            self._argv, env=self._env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited with {self.process.returncode}:\n{self.stderr()}")
            with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.target} did not listen on {self.url} within {timeout}s:\n{self.stderr()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def stderr(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        self.stop()
        self._stderr.close()


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Start every server, wait until each listens, and stop them all on any exit."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        yield
    finally:
        for server in servers:
            server.close()


def fake_server() -> Server:
    return Server("fake_server:app")


def app_server(
    name: str,
    fake_url: str,
    *,
    python_flags: Sequence[str] = (),
    env: Optional[Mapping[str, str]] = None,
    workers: int = 1,
) -> Server:
    return Server(
        "apps:app",
        env={**(env or {}), "BENCH_APP": name, "QELOS_APP_URL": fake_url},
        python_flags=python_flags,
        workers=workers,
    )


class FakeAdmin:
    """The admin routes fake_server.py adds in front of FakeQelos."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url, trust_env=False, timeout=10.0)

    def stats(self) -> Dict[str, int]:
        stats: Dict[str, int] = self._client.get("/__stats").raise_for_status().json()
        return stats

    def reset(self) -> None:
        self._client.post("/__reset").raise_for_status()

    def mint(self, username: str = "alice") -> Dict[str, str]:
        tokens: Dict[str, str] = self._client.post("/__mint", params={"username": username}).raise_for_status().json()
        return tokens

    def advance(self, seconds: float) -> None:
        self._client.post("/__advance", params={"seconds": seconds}).raise_for_status()

    def inject(self, endpoint: str, latency: float) -> None:
        self._client.post("/__inject", params={"endpoint": endpoint, "latency": latency}).raise_for_status()

    def api_token(self, username: str = "alice") -> str:
        token: str = (
            self._client.post("/__api_token", params={"username": username}).raise_for_status().json()["api_token"]
        )
        return token

    def session_cookie(self, username: str = "alice") -> Dict[str, str]:
        cookie: Dict[str, str] = (
            self._client.post("/__session", params={"username": username}).raise_for_status().json()
        )
        return cookie

    def faults(self) -> Dict[str, Any]:
        faults: Dict[str, Any] = self._client.get("/__faults").raise_for_status().json()
        return faults

    def clear_faults(self) -> None:
        self._client.post("/__clear_faults").raise_for_status()

    def live(self, kind: str, token: str) -> Dict[str, bool]:
        """Does the refresh token or session cookie verify, and is it still recorded (not spent/rotated)?"""
        state: Dict[str, bool] = (
            self._client.post("/__live", params={"kind": kind, "token": token}).raise_for_status().json()
        )
        return state

    def close(self) -> None:
        self._client.close()


@dataclass
class LoadResult:
    latencies: List[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0


@dataclass(frozen=True)
class Call:
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)


async def drive(
    client: httpx.AsyncClient,
    calls: Sequence[Call],
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> LoadResult:
    """`concurrency` workers cycle through `calls` until `max_requests` are done or `max_seconds` pass."""
    result = LoadResult()
    issued = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async def worker() -> None:
        nonlocal issued
        while issued < max_requests and time.perf_counter() < deadline:
            call = calls[issued % len(calls)]
            issued += 1
            sent = time.perf_counter()
            try:
                response = await client.get(call.path, headers=call.headers)
                await response.aread()
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                result.latencies.append(time.perf_counter() - sent)
            else:
                result.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


async def drive_raw(
    url: str,
    call: Call,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> LoadResult:
    """Like drive, over raw asyncio streams with one prebuilt request: thousands of req/s on one core,
    so that the app under test, not this generator, is the bottleneck (an httpx client tops out near 700)."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in call.headers.items())
    request = f"GET {call.path} HTTP/1.1\r\nhost: {host}:{port}\r\n{head}\r\n".encode()
    result = LoadResult()
    issued = 0
    start = time.perf_counter()
    deadline = start + max_seconds

    async def worker() -> None:
        nonlocal issued
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while issued < max_requests and time.perf_counter() < deadline:
                issued += 1
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200 "):
                    result.latencies.append(time.perf_counter() - sent)
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    return result


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def load_client(base_url: str, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0, trust_env=False)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def bearer(tokens: Mapping[str, str]) -> Dict[str, str]:
    return {"authorization": f"Bearer {tokens['access_token']}"}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
