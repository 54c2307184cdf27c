from __future__ import annotations

import argparse
from typing import List, Optional

from ._app import FakeQelos
from ._demo import DEMO_CREDENTIALS, DEMO_WEBSITE_URLS


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m qelos_integrator_fastapi.testing", description="Serve a seeded FakeQelos on loopback."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    args = parser.parse_args(argv)

    import uvicorn

    url = f"http://{args.host}:{args.port}"
    fake = FakeQelos.demo(url=url, website_urls=DEMO_WEBSITE_URLS)
    print(f"FakeQelos (tenant {fake.tenant!r}) serving on {url}")
    print("Demo users (username / password):")
    for username, password, role in DEMO_CREDENTIALS:
        print(f"  {username} / {password}  ({role})")
    print("Blueprint 'products' (workspace-scoped); social login signs in alice.")
    print(f"Point your app at it: QELOS_APP_URL={url}  or  QelosConfig(app_url={url!r})")
    print(f"Try: curl -s -X POST {url}/api/signin -H 'content-type: application/json' \\")
    print('        -d \'{"username":"alice","password":"alice-pass","authType":"oauth"}\'')
    uvicorn.run(fake, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
