"""What the middleware saw, shown on every demo page.

Three public seams of the library feed it, nothing private:

* ``on_event`` (the middleware's metrics hook): identity resolved, cache hit or miss, token refreshed;
* the ``transport=`` of ``QelosConfig``: every call to Qelos this request made, with its status and time;
* the response itself: an outer ASGI middleware reads the ``Set-Cookie`` headers the integrator added and
  writes them, values masked, into the page it is sending.

Each request gets its own ``Seen`` record through a context variable, which the middleware's tasks
and the request SDK inherit.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from html import escape
from typing import List, Optional, Tuple

import httpx
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qelos_integrator_fastapi import QelosEvent

# Where the page leaves room for the cookies of its own response (filled in by Inspector).
COOKIES_SLOT = "<!--qelos-set-cookies-->"


@dataclass
class Seen:
    events: List[QelosEvent] = field(default_factory=list)
    # (method, path, status or error, milliseconds)
    calls: List[Tuple[str, str, str, float]] = field(default_factory=list)
    # Whether the calls go through a CountingTransport (the embedded FakeQelos), so `calls` is complete.
    counted: bool = False


_seen: ContextVar[Optional[Seen]] = ContextVar("qelos_demo_seen", default=None)


def current() -> Seen:
    return _seen.get() or Seen()


def record_event(event: QelosEvent) -> None:
    seen = _seen.get()
    if seen is not None:
        seen.events.append(event)


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes every Qelos call through and notes it in the current request's record."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        outcome = "failed"
        try:
            response = await self._inner.handle_async_request(request)
            outcome = str(response.status_code)
            return response
        finally:
            seen = _seen.get()
            if seen is not None:
                elapsed = (time.perf_counter() - started) * 1000
                seen.calls.append((request.method, request.url.path, outcome, elapsed))

    async def aclose(self) -> None:
        await self._inner.aclose()


class Inspector:
    """Outermost middleware: one ``Seen`` per request, and the page's own Set-Cookie headers written into it."""

    def __init__(self, app: ASGIApp, *, counting: bool = False) -> None:
        self.app = app
        self.counting = counting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _seen.set(Seen(counted=self.counting))
        start: Optional[Message] = None
        body: List[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if not headers.get("content-type", "").startswith("text/html"):
                    await send(message)
                    return
                start = message
                return
            if start is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                await _send_filled(start, b"".join(body), send)

        try:
            await self.app(scope, receive, capture)
        finally:
            _seen.reset(token)


async def _send_filled(start: Message, body: bytes, send: Send) -> None:
    headers = MutableHeaders(scope=start)
    cookies = "".join(f"<li><code>{escape(masked(value))}</code></li>" for value in headers.getlist("set-cookie"))
    listing = f"<ul>{cookies}</ul>" if cookies else "<p>none</p>"
    filled = body.replace(COOKIES_SLOT.encode(), listing.encode())
    headers["content-length"] = str(len(filled))
    await send(start)
    await send({"type": "http.response.body", "body": filled})


def masked(set_cookie: str) -> str:
    """``name=eyJ…(212 chars); Path=/; HttpOnly`` — attributes kept, the value never shown."""
    pair, _, attributes = set_cookie.partition(";")
    name, _, value = pair.partition("=")
    shown = f"{value[:3]}…({len(value)} chars)" if value else '"" (deleted)'
    return f"{name}={shown};{attributes}" if attributes else f"{name}={shown}"
