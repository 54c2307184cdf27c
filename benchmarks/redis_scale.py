"""Several workers on one Redis (QelosConfig.redis_url), and what a Redis round trip costs.

    .venv/bin/python benchmarks/redis_scale.py [--requests 50] [--workers 4] [--rounds 200]

Starts a redis-server (persistence off) and FakeQelos (fake_server.py) on loopback, then:
1. `uvicorn --workers 4` with redis_url: 50 concurrent requests, one connection each, carrying one expired
   access token and its refresh token, three times: upstream refresh calls (target 1), successes (50/50) and
   distinct new pairs set (target 1); the same app without redis_url for comparison.
2. One worker each, side by side: the in-process store and the Redis store. Latency of a request that refreshes
   (a fresh expired pair each time, one at a time), and of a request answered from the identity cache
   (identity_cache_ttl=60, Bearer), median and p99 over `--rounds`, and the ratio Redis / in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import time
from typing import Dict, Iterator, List, Tuple

import httpx
from _harness import FakeAdmin, app_server, fake_server, free_port, median, percentile, running, table

ACCESS_TTL = 300 * 60.0


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    executable = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    argv = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


def pair_cookie(pair: Dict[str, str]) -> Dict[str, str]:
    return {"cookie": f"q_access_token={pair['access_token']}; q_refresh_token={pair['refresh_token']}"}


def new_pair(response: httpx.Response) -> Tuple[str, str]:
    found: Dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found.get("q_access_token", ""), found.get("q_refresh_token", "")


async def burst(url: str, admin: FakeAdmin, requests: int) -> List[str]:
    pair = admin.mint("alice")
    admin.advance(ACCESS_TTL + 1)
    admin.reset()

    async def one() -> httpx.Response:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
            return await http.get(f"{url}/whoami", headers=pair_cookie(pair))

    responses = await asyncio.gather(*(one() for _ in range(requests)))
    ok = sum(1 for r in responses if r.status_code == 200 and r.json().get("user"))
    pids = {r.json().get("pid") for r in responses if r.status_code == 200}
    refreshes = admin.stats()["refresh"]
    pairs = {new_pair(r) for r in responses}
    verdict = refreshes == 1 and ok == requests and len(pairs) == 1
    return [str(refreshes), f"{ok}/{requests}", str(len(pairs)), str(len(pids)), "PASS" if verdict else "MISS"]


async def refresh_latencies(url: str, admin: FakeAdmin, rounds: int) -> List[float]:
    latencies = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as http:
        for _ in range(rounds):
            pair = admin.mint("alice")
            admin.advance(ACCESS_TTL + 1)
            started = time.perf_counter()
            response = await http.get("/whoami", headers=pair_cookie(pair))
            latencies.append(time.perf_counter() - started)
            http.cookies.clear()
            assert response.json().get("user"), response.text
    return latencies


async def cache_hit_latencies(url: str, admin: FakeAdmin, rounds: int) -> List[float]:
    pair = admin.mint("alice")
    headers = {"authorization": f"Bearer {pair['access_token']}"}
    latencies = []
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=30) as http:
        await http.get("/whoami", headers=headers)  # the one miss
        admin.reset()
        for _ in range(rounds):
            started = time.perf_counter()
            response = await http.get("/whoami", headers=headers)
            latencies.append(time.perf_counter() - started)
            assert response.json().get("user"), response.text
        assert admin.stats()["me"] == 0, "a cache hit went upstream"
    return latencies


def row(name: str, local: List[float], shared: List[float]) -> List[str]:
    ms = 1000
    return [
        name,
        f"{median(local) * ms:.2f} / {percentile(local, 99) * ms:.2f}",
        f"{median(shared) * ms:.2f} / {percentile(shared, 99) * ms:.2f}",
        f"+{(median(shared) - median(local)) * ms:.2f}",
        f"{median(shared) / median(local):.2f}",
    ]


async def main_async(requests: int, workers: int, rounds: int) -> None:
    fake = fake_server()
    with redis_server() as redis_url, running(fake):
        admin = FakeAdmin(fake.url)
        shared = {"QELOS_REDIS_URL": redis_url}
        try:
            burst_rows = []
            for label, env in (("redis_url", shared), ("in-process", {})):
                app = app_server("middleware", fake.url, env=env, workers=workers)
                with running(app):
                    await asyncio.sleep(3)  # every worker imported and started
                    for i in range(3):
                        burst_rows.append([f"{label} #{i + 1}", *await burst(app.url, admin, requests)])
            apps = {
                "refresh local": app_server("middleware", fake.url),
                "refresh redis": app_server("middleware", fake.url, env=shared),
                "cache local": app_server("cached", fake.url),
                "cache redis": app_server("cached", fake.url, env=shared),
            }
            with running(*apps.values()):
                for app in apps.values():  # warm-up
                    await refresh_latencies(app.url, admin, 20)
                refresh = {
                    k: await refresh_latencies(apps[k].url, admin, rounds) for k in ("refresh local", "refresh redis")
                }
                hits = {
                    k: await cache_hit_latencies(apps[k].url, admin, rounds) for k in ("cache local", "cache redis")
                }
        finally:
            admin.close()
    print(f"{requests} concurrent requests over {workers} workers (one connection each), one expired pair, 3 bursts")
    print()
    print(table(["store", "refresh calls", "signed in", "distinct new pairs", "workers reached", ""], burst_rows))
    print()
    print(f"one worker per store, {rounds} sequential requests each; median / p99 in ms")
    print()
    headers = ["request", "in-process", "redis", "added (median)", "ratio redis/in-process"]
    print(
        table(
            headers,
            [
                row("that refreshes", refresh["refresh local"], refresh["refresh redis"]),
                row("identity-cache hit", hits["cache local"], hits["cache redis"]),
            ],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main_async(max(1, args.requests), max(1, args.workers), max(10, args.rounds)))


if __name__ == "__main__":
    main()
