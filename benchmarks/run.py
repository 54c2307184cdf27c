"""Side-by-side throughput of the middleware against a bare app and a hand-written floor app.

    .venv/bin/python benchmarks/run.py [--quick]

Starts FakeQelos (fake_server.py) and one uvicorn process per scenario (apps.py) on loopback,
drives each from this process over raw asyncio streams with one prebuilt request (so that the app,
not the load generator, is the bottleneck), and prints one table with the ratios issue 13 asks
for. Scenarios are measured in round-robin rounds; the median round counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Tuple

from _harness import (
    Call,
    FakeAdmin,
    LoadResult,
    Server,
    app_server,
    bearer,
    cpu_seconds,
    drive_raw,
    fake_server,
    load_client,
    median,
    percentile,
    rss_mb,
    running,
    table,
)


@dataclass
class Scenario:
    key: str
    title: str
    app: str
    authenticated: bool
    path: str = "/whoami"
    server: Server | None = None
    rss_idle: float = 0.0
    rss_end: float = 0.0
    # (load, upstream calls per request, app CPU ms per request, fake CPU ms per request)
    rounds: List[Tuple[LoadResult, float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Budget:
    rounds: int
    warmup_seconds: float
    seconds: float
    max_requests: int
    concurrency: int


# (numerator, denominator, target, measure, label): "cpu" compares app CPU per request (denominator's
# over numerator's: how many times cheaper), "rate" compares req/s (numerator's over denominator's).
RATIOS = [
    ("3", "2", 2.0, "cpu", "uncached vs floor on httpx: times cheaper"),
    ("3", "2b", 1.1, "cpu", "uncached vs floor on httpx2: times cheaper"),
    ("5", "1", 0.9, "rate", "anonymous / bare, req/s"),
    ("4", "1", 0.8, "rate", "cache hit / bare, req/s"),
    ("4s", "1", 0.6, "rate", "cache hit + SDK touch / bare, req/s"),
]


def scenarios() -> List[Scenario]:
    return [
        Scenario("1", "bare FastAPI", "bare", authenticated=False),
        Scenario("2", "floor, httpx (2 calls)", "floor", authenticated=True),
        Scenario("2b", "floor, httpx2 (2 calls)", "floor2", authenticated=True),
        Scenario("3", "middleware, uncached", "middleware", authenticated=True),
        Scenario("4", "middleware, cache hit", "cached", authenticated=True),
        Scenario("4s", "cache hit + SDK touch", "cached", authenticated=True, path="/sdk"),
        Scenario("5", "middleware, anonymous", "middleware", authenticated=False),
    ]


async def check(scenario: Scenario, headers: Mapping[str, str]) -> None:
    assert scenario.server is not None
    async with load_client(scenario.server.url, 1) as client:
        response = await client.get(scenario.path, headers=headers)
    user = response.json().get("user") if response.status_code == 200 else None
    if response.status_code != 200 or (user is not None) != scenario.authenticated:
        raise SystemExit(f"scenario {scenario.key} ({scenario.title}) answered {response.status_code} {response.text}")


async def measure(
    scenario: Scenario, headers: Mapping[str, str], admin: FakeAdmin, fake_pid: int, budget: Budget
) -> None:
    assert scenario.server is not None
    app_pid = scenario.server.pid
    call = Call(scenario.path, headers)
    url = scenario.server.url
    await drive_raw(
        url, call, concurrency=budget.concurrency, max_requests=budget.max_requests, max_seconds=budget.warmup_seconds
    )
    admin.reset()
    app_cpu, fake_cpu = cpu_seconds(app_pid), cpu_seconds(fake_pid)
    result = await drive_raw(
        url, call, concurrency=budget.concurrency, max_requests=budget.max_requests, max_seconds=budget.seconds
    )
    app_cpu, fake_cpu = cpu_seconds(app_pid) - app_cpu, cpu_seconds(fake_pid) - fake_cpu
    scenario.rss_end = rss_mb(app_pid)
    upstream = admin.stats()["total"]
    n = result.count or 1
    scenario.rounds.append((result, upstream / n, app_cpu * 1000 / n, fake_cpu * 1000 / n))


def summary(scenario: Scenario) -> Dict[str, float]:
    loads = [load for load, _, _, _ in scenario.rounds]
    rates = [load.rate for load in loads]
    return {
        "rate": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "p50": statistics.median(median(load.latencies) for load in loads) * 1000,
        "p99": statistics.median(percentile(load.latencies, 99) for load in loads) * 1000,
        "upstream": statistics.median(u for _, u, _, _ in scenario.rounds),
        "app_cpu": statistics.median(c for _, _, c, _ in scenario.rounds),
        "fake_cpu": statistics.median(c for _, _, _, c in scenario.rounds),
        "requests": sum(load.count for load in loads),
        "p99/p50": statistics.median(percentile(load.latencies, 99) / median(load.latencies) for load in loads),
        "errors": sum(load.errors for load in loads),
    }


def report(all_scenarios: List[Scenario], budget: Budget, wall: float) -> None:
    rows = []
    results = {s.key: summary(s) for s in all_scenarios}
    for s in all_scenarios:
        r = results[s.key]
        rows.append(
            [
                f"({s.key}) {s.title}",
                f"{r['rate']:.0f}",
                f"{r['min']:.0f}-{r['max']:.0f}",
                f"{r['p50']:.1f}",
                f"{r['p99']:.1f}",
                f"{r['p99/p50']:.1f}",
                f"{r['upstream']:.2f}",
                f"{r['app_cpu']:.2f}",
                f"{r['fake_cpu']:.2f}",
                f"{r['requests']:.0f}",
                f"{r['errors']:.0f}",
                f"{s.rss_idle:.1f}",
                f"{s.rss_end:.1f}",
            ]
        )
    print()
    print(
        f"{budget.rounds} round-robin rounds per scenario, {budget.seconds:g}s each after a {budget.warmup_seconds:g}s "
        f"warm-up, {budget.concurrency} connections; req/s, p50 and p99 are medians over rounds."
    )
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, wall {wall:.0f}s")
    print()
    headers = ["scenario", "req/s", "rounds", "p50 ms", "p99 ms", "p99/p50", "upstream/req", "app CPU ms/req"]
    print(table([*headers, "fake CPU ms/req", "requests", "errors", "RSS idle MB", "RSS end MB"], rows))
    print("CPU ms/req: user+system CPU of the app's (or FakeQelos's) process per measured request (/proc/<pid>/stat).")
    print("RSS: the app process after startup and a check request (idle), and after all its measured requests (end).")
    print()
    ratio_rows = []
    for top, bottom, target, measure, label in RATIOS:
        cpu_ratio = results[bottom]["app_cpu"] / results[top]["app_cpu"]
        rate_ratio = results[top]["rate"] / results[bottom]["rate"]
        value = cpu_ratio if measure == "cpu" else rate_ratio
        verdict = "PASS" if value >= target else "MISS"
        ratio_rows.append(
            [
                f"({top}) vs ({bottom}) {label}",
                f"{value:.2f}",
                f">= {target}",
                verdict,
                f"{rate_ratio:.2f}",
                f"{cpu_ratio:.2f}",
            ]
        )
    print(table(["ratio", "value", "target", "", "req/s ratio", "inverse app CPU ratio"], ratio_rows))
    tails = [f"({s.key}) {results[s.key]['p99/p50']:.1f}" for s in all_scenarios]
    worst = max(results[s.key]["p99/p50"] for s in all_scenarios)
    print()
    print(f"p99 <= 3x p50 in every mode: {'PASS' if worst <= 3 else 'MISS'} ({', '.join(tails)})")


async def main_async(budget: Budget) -> None:
    fake = fake_server()
    with running(fake):
        admin = FakeAdmin(fake.url)
        try:
            headers = bearer(admin.mint("alice"))
            all_scenarios = scenarios()
            for s in all_scenarios:
                s.server = app_server(s.app, fake.url)
            with running(*(s.server for s in all_scenarios if s.server is not None)):
                for s in all_scenarios:
                    await check(s, headers if s.authenticated else {})
                    assert s.server is not None
                    s.rss_idle = rss_mb(s.server.pid)
                started = time.monotonic()
                for round_no in range(1, budget.rounds + 1):
                    for s in all_scenarios:
                        await measure(s, headers if s.authenticated else {}, admin, fake.pid, budget)
                        result, upstream, _, _ = s.rounds[-1]
                        print(
                            f"round {round_no}/{budget.rounds} ({s.key}) {s.title:<26} {result.rate:7.0f} req/s  "
                            f"{upstream:.2f} upstream/req  {result.errors} errors",
                            flush=True,
                        )
                report(all_scenarios, budget, time.monotonic() - started)
        finally:
            admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short rounds (about 30 s in all)")
    parser.add_argument("--rounds", type=int, default=None, help="round-robin rounds (default 5, --quick 3)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.quick:
        rounds = args.rounds or 3
        budget = Budget(rounds, warmup_seconds=0.3, seconds=1.5, max_requests=5_000, concurrency=args.concurrency)
    else:
        rounds = args.rounds or 5
        budget = Budget(rounds, warmup_seconds=1.0, seconds=5.0, max_requests=40_000, concurrency=args.concurrency)
    try:
        asyncio.run(main_async(budget))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
