"""Cost of the first touch of `request.state.qelos.sdk` inside a request, against building a QelosSDK directly.

    .venv/bin/python benchmarks/sdk_first_touch.py [--requests 2000]

In-process: a FastAPI app with QelosIntegratorMiddleware over FakeQelos's transport, driven through
httpx.ASGITransport. The handler times `qelos.sdk` and `sdk.entities("products")` with perf_counter_ns.
The first touch in the process also builds the one prototype SDK; it is reported on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any, Dict, List, Tuple

import httpx
from _harness import percentile, table
from fake_server import fake, home, users
from fastapi import FastAPI, Request
from qelos_sdk import QelosSDK, QelosSDKOptions

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware
from qelos_integrator_fastapi._sdk import _modules, end_request_sdk

TARGET_MS = 0.05


class HostSpy(httpx.AsyncBaseTransport):
    """FakeQelos's transport, remembering the URL of every upstream call (ASGITransport ignores the host)."""

    def __init__(self) -> None:
        self.urls: List[httpx.URL] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return await fake.transport.handle_async_request(request)


def build_app(samples: List[Tuple[int, int, int]], spy: HostSpy) -> FastAPI:
    app = FastAPI()
    config = QelosConfig(app_url=fake.url, transport=spy, identity_cache_ttl=60)
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/plain")
    async def plain(request: Request) -> Dict[str, Any]:
        return {"user": request.user.identity}

    @app.get("/touch")
    async def touch(request: Request) -> Dict[str, Any]:
        qelos = request.state.qelos
        start = time.perf_counter_ns()
        sdk = qelos.sdk
        built = time.perf_counter_ns()
        sdk.entities("products")
        touched = time.perf_counter_ns()
        end_request_sdk(sdk)  # what the middleware does at the end of the request
        samples.append((built - start, time.perf_counter_ns() - built, time.perf_counter_ns() - touched))
        return {"user": request.user.identity}

    @app.get("/use")
    async def use(request: Request) -> Dict[str, Any]:
        items = await request.state.qelos.sdk.entities("products").get_list()
        return {"products": len(items)}

    return app


def ms(values_ns: List[int], q: float) -> float:
    return percentile(values_ns, q) / 1e6


async def direct_construction(iterations: int) -> Tuple[List[float], List[float]]:
    walls: List[float] = []
    cpus: List[float] = []
    for _ in range(iterations):
        wall, cpu = time.perf_counter(), time.process_time()
        sdk = QelosSDK(QelosSDKOptions(app_url=fake.url))
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        for client in {id(m._client): m._client for m in _modules(sdk)}.values():
            await client.aclose()
    return walls, cpus


async def main_async(requests: int, direct_iterations: int) -> None:
    samples: List[Tuple[int, int, int]] = []
    spy = HostSpy()
    app = build_app(samples, spy)
    pair = fake.issue_tokens(users["alice"], workspace=home["alice"])
    headers = {"authorization": f"Bearer {pair.access_token}"}
    plain_latency: List[int] = []
    touch_latency: List[int] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as client:
        await client.get("/touch", headers=headers)
        prototype_ns = sum(samples.pop())
        used = await client.get("/use", headers=headers)
        if used.status_code != 200 or used.json() != {"products": 3}:
            raise SystemExit(f"the request SDK did not list alice's products: {used.status_code} {used.text}")
        entity_calls = [url for url in spy.urls if url.path.endswith("/entities")]
        for _ in range(requests):
            for path, latencies in (("/plain", plain_latency), ("/touch", touch_latency)):
                start = time.perf_counter_ns()
                response = await client.get(path, headers=headers)
                latencies.append(time.perf_counter_ns() - start)
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}")
    walls, cpus = await direct_construction(direct_iterations)

    sdk_ns = [s for s, _, _ in samples]
    entities_ns = [e for _, e, _ in samples]
    close_ns = [c for _, _, c in samples]
    total_ns = [s + e + c for s, e, c in samples]
    print(f"{len(samples)} requests in-process (httpx.ASGITransport + FakeQelos.transport); times in ms")
    print()
    rows = [
        ["first touch in the process (builds the prototype)", 1, f"{prototype_ns / 1e6:.2f}", "", ""],
        ["qelos.sdk, first touch in a request", len(sdk_ns), f"{ms(sdk_ns, 50):.3f}", f"{ms(sdk_ns, 99):.3f}", ""],
        [
            'sdk.entities("products"), first call',
            len(entities_ns),
            f"{ms(entities_ns, 50):.3f}",
            f"{ms(entities_ns, 99):.3f}",
            "",
        ],
        ["end of the request (close)", len(close_ns), f"{ms(close_ns, 50):.3f}", f"{ms(close_ns, 99):.3f}", ""],
        [
            "build + entities + close (target <= 0.05 ms median)",
            len(total_ns),
            f"{ms(total_ns, 50):.3f}",
            f"{ms(total_ns, 99):.3f}",
            "PASS" if ms(total_ns, 50) <= TARGET_MS else "MISS",
        ],
        [
            "whole request, no SDK touch",
            len(plain_latency),
            f"{ms(plain_latency, 50):.3f}",
            f"{ms(plain_latency, 99):.3f}",
            "",
        ],
        [
            "whole request, SDK touched",
            len(touch_latency),
            f"{ms(touch_latency, 50):.3f}",
            f"{ms(touch_latency, 99):.3f}",
            "",
        ],
        [
            "QelosSDK(QelosSDKOptions(app_url=...)) directly, wall",
            len(walls),
            f"{statistics.median(walls):.1f}",
            f"{max(walls):.1f} (max)",
            "",
        ],
        ["the same, CPU", len(cpus), f"{statistics.median(cpus):.1f}", f"{max(cpus):.1f} (max)", ""],
    ]
    print(table(["measure", "n", "median", "p99", ""], rows))
    speedup = statistics.median(walls) / ms(total_ns, 50)
    print()
    print(f"direct construction / request SDK first touch (medians): {speedup:,.0f}x")
    expected = httpx.URL(fake.url).host
    hosts = sorted({url.host for url in entity_calls})
    verdict = "PASS" if hosts == [expected] else "MISS (library bug: entity calls would not reach app_url)"
    print(f'sdk.entities("products").get_list() called host {", ".join(hosts)}; expected {expected}: {verdict}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--direct", type=int, default=3, help="direct QelosSDK constructions (about 0.5 s each)")
    args = parser.parse_args()
    asyncio.run(main_async(max(1, args.requests), max(1, args.direct)))


if __name__ == "__main__":
    main()
