"""Apps for the proxy benchmarks, for uvicorn (`--app-dir benchmarks`).

`proxy_apps:blob`: a stand-in Qelos serving large bodies: `POST /api/blob` counts what it reads,
`GET /api/blob?mb=N` streams N MiB of zeros in 64 KiB chunks. `proxy_apps:proxy`: FastAPI with
QelosIntegratorMiddleware and create_qelos_proxy_router in front of QELOS_APP_URL, plus `GET /__rss`
(this process's current and peak RSS, in KiB) and `POST /__rss/reset` (resets the peak).
"""

from __future__ import annotations

import os
from typing import AsyncIterator, Dict

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from qelos_integrator_fastapi import QelosConfig, QelosIntegratorMiddleware, create_qelos_proxy_router

CHUNK = b"\0" * 65536


async def _upload(request: Request) -> JSONResponse:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return JSONResponse({"received": received})


async def _download(request: Request) -> StreamingResponse:
    chunks = int(request.query_params.get("mb", "1")) * 16

    async def body() -> AsyncIterator[bytes]:
        for _ in range(chunks):
            yield CHUNK

    return StreamingResponse(body(), media_type="application/octet-stream")


blob = Starlette(routes=[Route("/api/blob", _upload, methods=["POST"]), Route("/api/blob", _download)])


def rss_kib() -> Dict[str, int]:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def _proxy_app() -> FastAPI:
    config = QelosConfig(app_url=os.environ.get("QELOS_APP_URL", "http://127.0.0.1:9"))
    app = FastAPI()
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/__rss")
    async def rss() -> Dict[str, int]:
        return rss_kib()

    @app.post("/__rss/reset")
    async def reset() -> Dict[str, int]:
        # Writing 5 to clear_refs resets VmHWM (the peak) to the current RSS (Linux 4.0+).
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return rss_kib()

    app.include_router(create_qelos_proxy_router(config))
    return app


proxy = _proxy_app()
