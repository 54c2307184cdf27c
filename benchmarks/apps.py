"""The apps under test, for uvicorn: `BENCH_APP=<name> QELOS_APP_URL=<fake> uvicorn apps:app --app-dir benchmarks`.

bare        FastAPI, GET /whoami returns a small JSON; no middleware, no upstream call.
floor       FastAPI, no middleware; GET /whoami forwards the caller's Authorization to /api/me and
            /api/workspaces concurrently over one default httpx.AsyncClient opened at startup.
floor2      the same two calls over one default httpx2.AsyncClient (httpx's maintained successor).
middleware  QelosIntegratorMiddleware(app_url=QELOS_APP_URL), no identity cache; GET /whoami also answers
            the worker's pid; GET /sdk also builds the request SDK and sdk.entities("products") (no call).
cached      the same with QelosConfig(identity_cache_ttl=60).
            Both take QELOS_REDIS_URL: QelosConfig(redis_url=...), shared by every worker and process.
soak        middleware, plus request-SDK routes GET /products (entities("products").get_list()) and
            GET /workspaces (workspaces.get_list()), GET /__sdk_url (the URL the entity manager would
            call) and an unauthenticated GET /__debug (gc objects, live httpx clients, tracemalloc).
fault_open  for fault_soak.py: QelosConfig(require_auth=False, timeout=QELOS_TIMEOUT or 0.5); GET /optional
            (OptionalQelosContext: user id and qelos.error), GET /required (require_user), GET /sdk
            (require_user, then sdk.workspaces.get_list() and sdk.entities("notes").get_list(); an SDK
            failure is answered 503 {"detail": {"code": "QELOS_UNAVAILABLE", "sdk_error": ...}}).
fault_gated the same routes with require_auth=True (the middleware's own 401/503 bodies).
fault_apikey the same routes with api_token=QELOS_API_TOKEN (service to service).
"""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional, Union

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from qelos_sdk import QelosSDK
from qelos_sdk.base_sdk import QelosAPIError

from qelos_integrator_fastapi import OptionalQelosContext, QelosConfig, QelosContext, QelosIntegratorMiddleware

APP_URL = os.environ.get("QELOS_APP_URL", "http://127.0.0.1:8100")


def bare() -> FastAPI:
    app = FastAPI()

    @app.get("/whoami")
    async def whoami() -> Dict[str, Any]:
        return {"user": None}

    return app


def floor(library: Any = httpx) -> FastAPI:
    pool: Dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with library.AsyncClient(base_url=APP_URL, timeout=5.0, trust_env=False) as client:
            pool["qelos"] = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/whoami", response_model=None)
    async def whoami(request: Request) -> Union[Dict[str, Any], JSONResponse]:
        client = pool["qelos"]
        headers = {"authorization": request.headers.get("authorization", "")}
        me, workspaces = await asyncio.gather(
            client.get("/api/me", headers=headers), client.get("/api/workspaces", headers=headers)
        )
        if me.status_code != 200:
            return JSONResponse({"code": "UNAUTHORIZED"}, status_code=401)
        return {"user": me.json()["_id"], "workspaces": len(workspaces.json())}

    return app


def middleware(identity_cache_ttl: float = 0.0, *, soak: bool = False) -> FastAPI:
    app = FastAPI()
    config = QelosConfig(
        app_url=APP_URL,
        identity_cache_ttl=identity_cache_ttl,
        skip_paths=["/__debug"] if soak else [],
        redis_url=os.environ.get("QELOS_REDIS_URL") or None,
    )
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/whoami")
    async def whoami(request: Request) -> Dict[str, Any]:
        user = request.user
        return {"user": user.identity if user.is_authenticated else None, "pid": os.getpid()}

    @app.get("/sdk")
    async def sdk(request: Request) -> Dict[str, Any]:
        request.state.qelos.sdk.entities("products")
        user = request.user
        return {"user": user.identity if user.is_authenticated else None}

    if soak:

        @app.get("/products")
        async def products(request: Request) -> Dict[str, Any]:
            items = await request.state.qelos.sdk.entities("products").get_list()
            return {"products": len(items)}

        @app.get("/workspaces")
        async def workspaces(request: Request) -> Dict[str, Any]:
            items = await request.state.qelos.sdk.workspaces.get_list()
            return {"workspaces": len(items)}

        @app.get("/__sdk_url")
        async def sdk_url(request: Request) -> Dict[str, Any]:
            # Where the request SDK's entity manager would send its calls, without sending any.
            return {"app_url": APP_URL, "entities": request.state.qelos.sdk.entities("products")._app_url}

        @app.get("/__debug")
        async def debug() -> Dict[str, Any]:
            gc.collect()
            objects = gc.get_objects()
            traced: Optional[int] = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
            return {
                "gc_objects": len(objects),
                "async_clients": sum(1 for o in objects if isinstance(o, httpx.AsyncClient)),
                "qelos_sdks": sum(1 for o in objects if isinstance(o, QelosSDK)),
                "traced_bytes": traced,
            }

    return app


def fault_soak(*, require_auth: bool = False, api_token: Optional[str] = None) -> FastAPI:
    app = FastAPI()
    timeout = float(os.environ.get("QELOS_TIMEOUT", "0.5"))
    cap = int(os.environ.get("QELOS_MAX_UPSTREAM_BODY", str(4 * 1024 * 1024)))
    config = QelosConfig(
        app_url=APP_URL, require_auth=require_auth, api_token=api_token, timeout=timeout, max_upstream_body=cap
    )
    app.add_middleware(QelosIntegratorMiddleware, config=config)

    @app.get("/optional")
    async def optional(qelos: OptionalQelosContext) -> Dict[str, Any]:
        user = qelos.user if qelos is not None else None
        return {"user": user.get("_id") if user else None, "error": qelos.error if qelos is not None else None}

    @app.get("/required")
    async def required(qelos: QelosContext) -> Dict[str, Any]:
        return {"user": (qelos.user or {}).get("_id")}

    @app.get("/sdk")
    async def sdk(qelos: QelosContext) -> Dict[str, Any]:
        # The handler's own Qelos calls: their failures are the app's to answer (here as a 503).
        try:
            workspaces = await qelos.sdk.workspaces.get_list()
            notes = await qelos.sdk.entities("notes").get_list()
        # RecursionError: qelos-sdk's response.json() on a body nested deeper than the parser allows.
        except (QelosAPIError, httpx.HTTPError, ValueError, RecursionError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:120]
            detail = {"code": "QELOS_UNAVAILABLE", "sdk_error": reason}
            raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "5"}) from None
        return {"user": (qelos.user or {}).get("_id"), "workspaces": len(workspaces), "notes": len(notes)}

    return app


def build(name: str) -> FastAPI:
    if name == "bare":
        return bare()
    if name == "floor":
        return floor()
    if name == "floor2":
        import httpx2

        return floor(httpx2)
    if name == "middleware":
        return middleware()
    if name == "cached":
        return middleware(identity_cache_ttl=60)
    if name == "soak":
        return middleware(soak=True)
    if name == "fault_open":
        return fault_soak()
    if name == "fault_gated":
        return fault_soak(require_auth=True)
    if name == "fault_apikey":
        return fault_soak(api_token=os.environ["QELOS_API_TOKEN"])
    names = "bare, floor, floor2, middleware, cached, soak, fault_open, fault_gated or fault_apikey"
    raise SystemExit(f"BENCH_APP must be {names}; got {name!r}")


app = build(os.environ.get("BENCH_APP", "bare"))
