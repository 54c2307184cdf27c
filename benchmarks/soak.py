"""10,000 mixed requests through uvicorn: memory, open fds/sockets, live clients and warnings of the app.

    .venv/bin/python benchmarks/soak.py [--requests 10000]

The app (apps.py `soak`: QelosIntegratorMiddleware, uncached) runs as
`python -W error -X tracemalloc=1 -m uvicorn ...` against FakeQelos on loopback; its stderr is kept.
Traffic cycles through: Bearer token, anonymous, request SDK (`entities("products").get_list()`, or
`workspaces.get_list()` when the entity manager does not point at QELOS_APP_URL: a known library bug),
q_access_token cookie, and an invalid Bearer token (Qelos answers 401; the request goes on anonymous).
After a 1,000-request warm-up and then every 1,000 requests it samples VmRSS and /proc/<pid>/fd of the
app, and the app's own /__debug (gc objects, live httpx.AsyncClient and QelosSDK objects, tracemalloc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
from typing import Any, Dict, List

import httpx
from _harness import Call, FakeAdmin, app_server, drive, fake_server, load_client, running, table

BATCH = 1_000
CONCURRENCY = 16
RSS_GROWTH_LIMIT_MB = 5.0
FD_GROWTH_LIMIT = 4


def proc_sample(pid: int) -> Dict[str, float]:
    with open(f"/proc/{pid}/status") as status:
        match = re.search(r"^VmRSS:\s+(\d+) kB", status.read(), re.MULTILINE)
    rss_mb = int(match.group(1)) / 1024 if match else float("nan")
    fds = os.listdir(f"/proc/{pid}/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return {"rss_mb": rss_mb, "fds": len(fds), "sockets": sockets}


async def sample(client: httpx.AsyncClient, pid: int, done: int) -> Dict[str, Any]:
    row: Dict[str, Any] = {"requests": done, **proc_sample(pid)}
    debug = (await client.get("/__debug")).json()
    row.update(debug)
    return row


async def sdk_path(app_url: str, bearer: Dict[str, str]) -> str:
    """/products, unless the request SDK's entity manager points away from QELOS_APP_URL (then /workspaces)."""
    async with load_client(app_url, 1) as client:
        where = (await client.get("/__sdk_url", headers=bearer)).json()
    if where["entities"] == where["app_url"]:
        return "/products"
    print(
        f"WARNING: sdk.entities('products') would call {where['entities']!r}, not {where['app_url']!r} "
        "(library bug); the SDK requests of this soak use sdk.workspaces.get_list() instead."
    )
    return "/workspaces"


def mixed_calls(tokens: Dict[str, str], sdk_route: str) -> List[Call]:
    bearer = {"authorization": f"Bearer {tokens['access_token']}"}
    return [
        Call("/whoami", bearer),
        Call("/whoami"),
        Call(sdk_route, bearer),
        Call("/whoami", {"cookie": f"q_access_token={tokens['access_token']}"}),
        Call("/whoami", {"authorization": "Bearer not-a-qelos-token"}),
    ]


async def soak(app_url: str, pid: int, calls: List[Call], total: int) -> List[Dict[str, Any]]:
    samples: List[Dict[str, Any]] = []
    errors = 0
    async with load_client(app_url, CONCURRENCY) as client:
        warmup = await drive(client, calls, concurrency=CONCURRENCY, max_requests=BATCH, max_seconds=120)
        errors += warmup.errors
        samples.append(await sample(client, pid, 0))
        done = 0
        while done < total:
            batch = min(BATCH, total - done)
            result = await drive(client, calls, concurrency=CONCURRENCY, max_requests=batch, max_seconds=120)
            done += result.count + result.errors
            errors += result.errors
            row = await sample(client, pid, done)
            row["req/s"] = result.rate
            samples.append(row)
            print(
                f"{done:>6} requests  rss {row['rss_mb']:.1f} MB  fds {row['fds']}  "
                f"{result.rate:.0f} req/s  {result.errors} errors",
                flush=True,
            )
    samples[0]["errors"] = errors
    return samples


def verdict(samples: List[Dict[str, Any]], stderr: str) -> List[List[str]]:
    first, last = samples[0], samples[-1]
    rss_growth = last["rss_mb"] - first["rss_mb"]
    fd_growth = max(s["fds"] for s in samples) - first["fds"]
    socket_growth = max(s["sockets"] for s in samples) - first["sockets"]
    client_growth = max(s["async_clients"] for s in samples) - first["async_clients"]
    traced = (last["traced_bytes"] - first["traced_bytes"]) / 2**20 if first["traced_bytes"] is not None else 0.0
    warnings = [line for line in stderr.splitlines() if re.search(r"Warning|Traceback|Exception ignored|Error", line)]
    checks = [
        (
            "RSS growth after warm-up",
            f"{rss_growth:+.2f} MB",
            f"< {RSS_GROWTH_LIMIT_MB:g} MB",
            rss_growth < RSS_GROWTH_LIMIT_MB,
        ),
        ("tracemalloc growth", f"{traced:+.2f} MB", f"< {RSS_GROWTH_LIMIT_MB:g} MB", traced < RSS_GROWTH_LIMIT_MB),
        ("open fds, max growth", f"{fd_growth:+d}", f"<= {FD_GROWTH_LIMIT}", fd_growth <= FD_GROWTH_LIMIT),
        ("open sockets, max growth", f"{socket_growth:+d}", f"<= {FD_GROWTH_LIMIT}", socket_growth <= FD_GROWTH_LIMIT),
        ("live httpx.AsyncClient, max growth", f"{client_growth:+d}", "0", client_growth == 0),
        ("failed requests", str(first["errors"]), "0", first["errors"] == 0),
        ("warnings/errors on app stderr (-W error)", str(len(warnings)), "0", not warnings),
    ]
    return [[name, value, target, "PASS" if ok else "MISS"] for name, value, target, ok in checks]


async def main_async(total: int) -> None:
    fake = fake_server()
    with running(fake):
        admin = FakeAdmin(fake.url)
        try:
            tokens = admin.mint("alice")
            app = app_server("soak", fake.url, python_flags=["-W", "error", "-X", "tracemalloc=1"])
            with running(app):
                route = await sdk_path(app.url, {"authorization": f"Bearer {tokens['access_token']}"})
                admin.reset()
                samples = await soak(app.url, app.pid, mixed_calls(tokens, route), total)
                upstream = admin.stats()
                app.stop()
                stderr = app.stderr()
        finally:
            admin.close()
    print()
    print(f"{total:,} requests after a {BATCH:,}-request warm-up, {CONCURRENCY} connections; app pid sampled")
    rows = [
        [
            f"{s['requests']}",
            f"{s['rss_mb']:.1f}",
            f"{s['fds']}",
            f"{s['sockets']}",
            f"{s['gc_objects']}",
            f"{s['async_clients']}",
            f"{s['qelos_sdks']}",
            f"{(s['traced_bytes'] or 0) / 2**20:.2f} MB",
        ]
        for s in samples
    ]
    print(table(["requests", "RSS MB", "fds", "sockets", "gc objects", "AsyncClients", "QelosSDKs", "traced"], rows))
    print()
    print("upstream calls (warm-up included):", ", ".join(f"{k} {v}" for k, v in upstream.items()))
    print()
    print(table(["check", "measured", "target", ""], verdict(samples, stderr)))
    if stderr.strip():
        print()
        print("app stderr:")
        print(stderr.rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main_async(max(BATCH, args.requests)))


if __name__ == "__main__":
    main()
