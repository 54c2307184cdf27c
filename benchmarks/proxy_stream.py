"""Memory of the proxy while 50 MB stream through it, up and down.

    .venv/bin/python benchmarks/proxy_stream.py [--mb 50]

A stand-in Qelos (`proxy_apps:blob`) and the proxy app (`proxy_apps:proxy`) each run in a uvicorn
process on loopback; this script uploads N MiB through the proxy from a generator and downloads N
MiB back, reading the app process's peak RSS (VmHWM, reset before each transfer) against its RSS
before. A proxy that buffered a body would grow by about N MiB; the target is under 10 MB.
"""

from __future__ import annotations

import argparse
from typing import Dict, Iterator

import httpx
from _harness import Server, running, table

TARGET_MIB = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    upstream = Server("proxy_apps:blob")
    app = Server("proxy_apps:proxy", env={"QELOS_APP_URL": upstream.url})
    rows = []
    with running(upstream, app), httpx.Client(base_url=app.url, timeout=120.0, trust_env=False) as http:
        http.get("/api/blob", params={"mb": 1}).raise_for_status()  # warm up: imports, pools
        http.post("/api/blob", content=b"x" * 65536).raise_for_status()

        before = _reset(http)
        answer = http.post("/api/blob", content=_zeros(args.mb), headers={"content-type": "application/octet-stream"})
        assert answer.json()["received"] == args.mb * 1024 * 1024, answer.text
        rows.append(_row(f"upload {args.mb} MiB (chunked)", before, _rss(http)))

        before = _reset(http)
        received = 0
        with http.stream("GET", "/api/blob", params={"mb": args.mb}) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
        assert received == args.mb * 1024 * 1024
        rows.append(_row(f"download {args.mb} MiB", before, _rss(http)))
    print(table(["transfer", "RSS before MiB", "peak MiB", "growth MiB", "target", "verdict"], rows))


def _zeros(mb: int) -> Iterator[bytes]:
    chunk = b"\0" * 65536
    for _ in range(mb * 16):
        yield chunk


def _reset(http: httpx.Client) -> Dict[str, int]:
    rss: Dict[str, int] = http.post("/__rss/reset").raise_for_status().json()
    return rss


def _rss(http: httpx.Client) -> Dict[str, int]:
    rss: Dict[str, int] = http.get("/__rss").raise_for_status().json()
    return rss


def _row(name: str, before: Dict[str, int], after: Dict[str, int]) -> list[object]:
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    verdict = "PASS" if growth < TARGET_MIB else "FAIL"
    return [name, f"{before['VmRSS'] / 1024:.1f}", f"{after['VmHWM'] / 1024:.1f}", f"{growth:.1f}", "< 10", verdict]


if __name__ == "__main__":
    main()
