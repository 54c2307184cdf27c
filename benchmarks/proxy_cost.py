"""What the proxy costs per request: an entity list through the app's /api proxy against the same call to Qelos.

    .venv/bin/python benchmarks/proxy_cost.py [--seconds 3] [--rounds 3] [--concurrency 8]

FakeQelos (`fake_server:app`) and the proxy app (`proxy_apps:proxy`: the middleware and the proxy
router) each run in a uvicorn process on loopback. "direct" sends `GET /api/blueprints/products/entities`
with alice's Bearer straight to FakeQelos; "proxied" sends the same request to the app. Rounds
alternate; the table shows medians over rounds, and the CPU each process spent per request.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
from typing import Dict, List

from _harness import Call, FakeAdmin, Server, cpu_seconds, drive, fake_server, load_client, percentile, running, table

PATH = "/api/blueprints/products/entities"


async def _round(url: str, headers: Dict[str, str], seconds: float, concurrency: int) -> tuple[float, float, int, int]:
    async with load_client(url, concurrency) as client:
        await drive(client, [Call(PATH, headers)], concurrency=concurrency, max_requests=50, max_seconds=1.0)
        result = await drive(
            client, [Call(PATH, headers)], concurrency=concurrency, max_requests=10**9, max_seconds=seconds
        )
    return result.rate, percentile(result.latencies, 50) * 1000, result.count, result.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    fake = fake_server()
    app = Server("proxy_apps:proxy", env={"QELOS_APP_URL": fake.url})
    stats: Dict[str, Dict[str, List[float]]] = {
        name: {"rate": [], "p50": [], "app": [], "fake": [], "errors": []} for name in ("direct", "proxied")
    }
    with running(fake, app):
        admin = FakeAdmin(fake.url)
        headers = {"authorization": f"Bearer {admin.mint('alice')['access_token']}"}
        for _ in range(args.rounds):
            for name, url in (("direct", fake.url), ("proxied", app.url)):
                cpu = {"app": cpu_seconds(app.pid), "fake": cpu_seconds(fake.pid)}
                rate, p50, count, errors = asyncio.run(_round(url, headers, args.seconds, args.concurrency))
                for process, pid in (("app", app.pid), ("fake", fake.pid)):
                    stats[name][process].append((cpu_seconds(pid) - cpu[process]) * 1000 / max(count, 1))
                stats[name]["rate"].append(rate)
                stats[name]["p50"].append(p50)
                stats[name]["errors"].append(errors)
        admin.close()
    rows = []
    for name, values in stats.items():
        rows.append(
            [
                name,
                f"{statistics.median(values['rate']):.0f}",
                f"{statistics.median(values['p50']):.1f}",
                f"{statistics.median(values['app']):.2f}",
                f"{statistics.median(values['fake']):.2f}",
                f"{sum(values['errors']):.0f}",
            ]
        )
    print(
        f"{args.rounds} alternating rounds of {args.seconds}s, {args.concurrency} connections; CPython "
        f"{platform.python_version()}; medians over rounds"
    )
    print(table(["GET " + PATH, "req/s", "p50 ms", "app CPU ms/req", "Qelos CPU ms/req", "errors"], rows))


if __name__ == "__main__":
    main()
