"""The connection pool under every call to Qelos: httpcore2 connections, found in O(1) per request.

httpx's default pool (httpcore 1.0) rescans every pooled connection on each request added and
removed, probing each idle socket, so its CPU per request grows with the pool. httpcore2's pool
removed the O(N·M) assignment but still probes every idle connection on every pass. ``QelosPool``
keeps idle HTTP/1.1 connections on a stack per origin: a request pops the most recently used one
and probes only that one; a release pushes it back and probes only the oldest, so an expired
connection at the bottom is closed without a scan. ``probes`` counts socket checks: at most two
per request, whatever the pool's size.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque
from typing import AsyncIterable, AsyncIterator, Deque, Dict, Iterator, List, Optional, Tuple, Type

import anyio
import httpcore2
import httpx

_ERRORS: Dict[Type[Exception], Type[httpx.HTTPError]] = {
    httpcore2.TimeoutException: httpx.TimeoutException,
    httpcore2.ConnectTimeout: httpx.ConnectTimeout,
    httpcore2.ReadTimeout: httpx.ReadTimeout,
    httpcore2.WriteTimeout: httpx.WriteTimeout,
    httpcore2.PoolTimeout: httpx.PoolTimeout,
    httpcore2.NetworkError: httpx.NetworkError,
    httpcore2.ConnectError: httpx.ConnectError,
    httpcore2.ReadError: httpx.ReadError,
    httpcore2.WriteError: httpx.WriteError,
    httpcore2.ProxyError: httpx.ProxyError,
    httpcore2.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore2.ProtocolError: httpx.ProtocolError,
    httpcore2.LocalProtocolError: httpx.LocalProtocolError,
    httpcore2.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for kind in type(exc).__mro__:
            mapped = _ERRORS.get(kind)
            if mapped is not None:
                raise mapped(str(exc)) from exc
        raise


def _key(origin: httpcore2.Origin) -> Tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class QelosPool(httpx.AsyncBaseTransport):
    """An httpx transport over httpcore2 HTTP/1.1 connections, with ``httpx.Limits`` semantics:
    at most ``max_connections`` open and ``max_keepalive_connections`` idle ones, each idle at most
    ``keepalive_expiry`` seconds."""

    def __init__(self, limits: httpx.Limits, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self._max = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._ssl = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._idle: Dict[Tuple[bytes, bytes, int], Deque[httpcore2.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._open = 0
        # Bounds the connections in use; made on first use, in the event loop that uses the pool.
        self._slots: Optional[anyio.Semaphore] = None
        self._closed = False
        self.probes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = httpcore2.URL(
            scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port, target=request.url.raw_path
        )
        core = httpcore2.Request(
            method=request.method,
            url=url,
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        await self._acquire(request.extensions.get("timeout", {}).get("pool"))
        connection: Optional[httpcore2.AsyncHTTPConnection] = None
        try:
            connection = await self._connection_for(url.origin)
            with _as_httpx_errors():
                response = await connection.handle_async_request(core)
        except BaseException:
            if connection is not None:
                self._open -= 1
                with anyio.CancelScope(shield=True):
                    await connection.aclose()
            self._release_slot()
            raise
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_PooledStream(self, connection, url.origin, response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        self._closed = True
        idle = [connection for stack in self._idle.values() for connection in stack]
        self._idle.clear()
        self._open -= len(idle)
        self._idle_count = 0
        with anyio.CancelScope(shield=True):
            for connection in idle:
                await connection.aclose()

    async def _acquire(self, timeout: Optional[float]) -> None:
        if self._max is None:
            return
        if self._slots is None:
            self._slots = anyio.Semaphore(self._max)
        try:
            with anyio.fail_after(timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout(f"no Qelos connection free within {timeout}s") from exc

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _connection_for(self, origin: httpcore2.Origin) -> httpcore2.AsyncHTTPConnection:
        stack = self._idle.get(_key(origin))
        closing: List[httpcore2.AsyncHTTPConnection] = []
        try:
            while stack:
                connection = stack.pop()
                self._idle_count -= 1
                self.probes += 1
                if connection.is_idle() and not connection.has_expired():
                    return connection
                self._open -= 1
                closing.append(connection)
            if self._max is not None and self._open >= self._max:
                # Every slot in use is below the limit, so an idle connection exists: make room.
                oldest = self._oldest_idle()
                self._open -= 1
                closing.append(oldest)
            self._open += 1
            return httpcore2.AsyncHTTPConnection(origin=origin, ssl_context=self._ssl, keepalive_expiry=self._expiry)
        finally:
            with anyio.CancelScope(shield=True):
                for connection in closing:
                    await connection.aclose()

    def _oldest_idle(self) -> httpcore2.AsyncHTTPConnection:
        stack = next(stack for stack in self._idle.values() if stack)
        self._idle_count -= 1
        return stack.popleft()

    async def _release(self, connection: httpcore2.AsyncHTTPConnection, origin: httpcore2.Origin) -> None:
        self._release_slot()
        closing: List[httpcore2.AsyncHTTPConnection] = []
        if self._closed or not connection.is_idle():
            self._open -= 1
            closing.append(connection)
        else:
            stack = self._idle.setdefault(_key(origin), deque())
            stack.append(connection)
            self._idle_count += 1
            oldest = stack[0]
            if oldest is not connection:
                surplus = self._max_idle is not None and self._idle_count > self._max_idle
                # One probe per release keeps the bottom of the stack from outliving its keep-alive.
                self.probes += not surplus
                if surplus or oldest.has_expired():
                    stack.popleft()
                    self._idle_count -= 1
                    self._open -= 1
                    closing.append(oldest)
        with anyio.CancelScope(shield=True):
            for stale in closing:
                await stale.aclose()


class _PooledStream(httpx.AsyncByteStream):
    """A response body that gives its connection back to the pool when closed."""

    def __init__(
        self,
        pool: QelosPool,
        connection: httpcore2.AsyncHTTPConnection,
        origin: httpcore2.Origin,
        stream: AsyncIterable[bytes],
    ) -> None:
        self._pool = pool
        self._connection: Optional[httpcore2.AsyncHTTPConnection] = connection
        self._origin = origin
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                with _as_httpx_errors():
                    await close()
        finally:
            await self._pool._release(connection, self._origin)
