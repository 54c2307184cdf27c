"""N concurrent requests carrying the same expired access token and refresh token.

    .venv/bin/python benchmarks/refresh_storm.py [--requests 50]

FakeQelos (fake_server.py) and the middleware app (apps.py, uncached) run under uvicorn on loopback.
A token pair is minted, the fake's clock is moved past the access token's expiry, and N requests
are sent at once over N connections with the pair in the q_access_token/q_refresh_token cookies.
Run twice: as is, and with 200 ms of latency on POST /api/token/refresh so that every request
waits on the one flight. Prints upstream refresh calls (target 1), successes (target N) and
whether every response sets the same new cookie pair.
"""

from __future__ import annotations

import argparse
import asyncio
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Dict, List, Optional, Tuple

import httpx
from _harness import FakeAdmin, app_server, fake_server, running, table

ACCESS_TTL = 300 * 60.0  # FakeQelos's default access-token lifetime


def new_cookies(response: httpx.Response) -> Tuple[Optional[str], Optional[str]]:
    found: Dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        found[name.strip()] = rest.split(";", 1)[0]
    return found.get("q_access_token"), found.get("q_refresh_token")


async def storm(app_url: str, admin: FakeAdmin, requests: int, refresh_latency: float) -> List[str]:
    pair = admin.mint("alice")
    admin.advance(ACCESS_TTL + 1)
    admin.reset()
    if refresh_latency:
        admin.inject("POST /api/token/refresh", latency=refresh_latency)
    cookie = f"q_access_token={pair['access_token']}; q_refresh_token={pair['refresh_token']}"
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=requests)
    jar = httpx.Cookies(CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])))
    async with httpx.AsyncClient(base_url=app_url, limits=limits, cookies=jar, timeout=30.0, trust_env=False) as client:
        responses = await asyncio.gather(*(client.get("/whoami", headers={"cookie": cookie}) for _ in range(requests)))
        stats = admin.stats()
        ok = [r for r in responses if r.status_code == 200 and r.json().get("user")]
        pairs = {new_cookies(r) for r in responses}
        new_access, new_refresh = next(iter(pairs)) if len(pairs) == 1 else (None, None)
        consistent = len(pairs) == 1 and bool(new_access) and bool(new_refresh) and new_access != pair["access_token"]
        follow_up = "n/a"
        if consistent:
            again = await client.get("/whoami", headers={"cookie": f"q_access_token={new_access}"})
            follow_up = "200, user" if again.status_code == 200 and again.json().get("user") else str(again.status_code)
    verdict = stats["refresh"] == 1 and len(ok) == requests and consistent
    return [
        f"{refresh_latency * 1000:.0f} ms",
        str(stats["refresh"]),
        f"{len(ok)}/{requests}",
        f"{'yes' if consistent else 'no'} ({len(pairs)} distinct)",
        follow_up,
        str(stats["me"]),
        "PASS" if verdict else "MISS",
    ]


async def main_async(requests: int) -> None:
    fake = fake_server()
    with running(fake):
        admin = FakeAdmin(fake.url)
        try:
            app = app_server("middleware", fake.url)
            with running(app):
                rows = [await storm(app.url, admin, requests, latency) for latency in (0.0, 0.2)]
        finally:
            admin.close()
    print(f"{requests} concurrent requests (one connection each), same expired access token + refresh token")
    print()
    headers = ["refresh latency", "refresh calls", "successes", "one new pair", "new pair works", "GET /api/me", ""]
    print(table(headers, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main_async(max(1, args.requests)))


if __name__ == "__main__":
    main()
