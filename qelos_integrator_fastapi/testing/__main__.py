from __future__ import annotations

import argparse
import socket
from typing import List, Optional

from ._app import FakeQelos
from ._clock import FakeClock
from ._demo import DEMO_CREDENTIALS, DEMO_WEBSITE_URLS


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m qelos_integrator_fastapi.testing", description="Serve a seeded FakeQelos on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument(
        "--website-url",
        action="append",
        dest="website_urls",
        metavar="URL",
        help="an app origin social login may return to (repeatable; default: the demo on port 8000)",
    )
    args = parser.parse_args(argv)

    import uvicorn

    try:
        # Bound before anything is printed, so a taken port is the only thing the user sees.
        sock = socket.create_server((args.host, args.port))
    except OSError as exc:
        parser.exit(2, f"FakeQelos cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port <another>\n")
    url = f"http://{args.host}:{args.port}"
    website_urls = args.website_urls or list(DEMO_WEBSITE_URLS)
    # A manual session: real dates, and tokens that expire as they would.
    fake = FakeQelos.demo(url=url, website_urls=website_urls, clock=FakeClock.wall())
    print(f"FakeQelos (tenant {fake.tenant!r}) serving on {url}")
    print("Demo users (username / password):")
    for username, password, role in DEMO_CREDENTIALS:
        print(f"  {username} / {password}  ({role})")
    print("Blueprint 'products' (workspace-scoped); social login signs in alice.")
    print(f"Social login returns to: {', '.join(website_urls)} (change with --website-url)")
    print(f"Point your app at it: QELOS_APP_URL={url}  or  QelosConfig(app_url={url!r})")
    print(f"Try: curl -s -X POST {url}/api/signin -H 'content-type: application/json' \\")
    print('        -d \'{"username":"alice","password":"alice-pass","authType":"oauth"}\'')
    server = uvicorn.Server(uvicorn.Config(fake, log_level="info"))
    with sock:
        server.run(sockets=[sock])


if __name__ == "__main__":
    main()
