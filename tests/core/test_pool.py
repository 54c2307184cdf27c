"""The pool's work per request does not grow with its size: counted, not timed, over real sockets."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, List

import anyio
import certifi
import httpcore2
import httpx
import pytest
import trustme
from anyio.abc import ByteStream
from anyio.streams.tls import TLSListener

from qelos_integrator_fastapi._pool import QelosPool

pytestmark = pytest.mark.anyio

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
SEQUENTIAL = 50


class Server:
    """HTTP/1.1 keep-alive on loopback; while ``hold`` is set, answers wait until that many requests are in."""

    def __init__(self) -> None:
        self.hold = 0
        self.waiting = 0
        self.connections = 0
        self.ended = 0
        self.close_after_answer = False
        self.drop_requests = False
        self.answer = ANSWER
        self._all_in = anyio.Event()

    async def handle(self, stream: ByteStream) -> None:
        self.connections += 1
        buffered = b""
        async with stream:
            while True:
                try:
                    buffered += await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self.ended += 1
                    return
                while b"\r\n\r\n" in buffered:
                    _, buffered = buffered.split(b"\r\n\r\n", 1)
                    if self.drop_requests:
                        return
                    if self.hold:
                        self.waiting += 1
                        if self.waiting == self.hold:
                            self._all_in.set()
                        await self._all_in.wait()
                    await stream.send(self.answer)
                    if self.close_after_answer:
                        return

    def release_after(self, requests: int) -> None:
        self.hold, self.waiting, self._all_in = requests, 0, anyio.Event()


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """Keep-alive checks made on pooled connections (each probes the socket of an idle one)."""
    counted = [0]
    has_expired = httpcore2.AsyncHTTPConnection.has_expired

    def counting(self: httpcore2.AsyncHTTPConnection) -> bool:
        counted[0] += 1
        return has_expired(self)

    monkeypatch.setattr(httpcore2.AsyncHTTPConnection, "has_expired", counting)
    return counted


async def checks_per_request(
    kept_alive: int, get: Callable[[str], Coroutine[Any, Any, None]], server: Server, url: str, checks: List[int]
) -> float:
    server.release_after(kept_alive)
    async with anyio.create_task_group() as tg:
        for _ in range(kept_alive):
            tg.start_soon(get, url)
    server.release_after(0)
    assert server.connections == kept_alive
    before = checks[0]
    for _ in range(SEQUENTIAL):
        await get(url)
    assert server.connections == kept_alive  # every request reused a kept-alive connection
    return (checks[0] - before) / SEQUENTIAL


async def measure(kept_alive: int, pool_kind: str, checks: List[int]) -> float:
    server = Server()
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        url = f"http://127.0.0.1:{port}/api/me"
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server.handle)
            if pool_kind == "ours":
                pool = QelosPool(httpx.Limits(max_connections=100, max_keepalive_connections=100))
                async with httpx.AsyncClient(transport=pool) as http:

                    async def get(target: str) -> None:
                        assert (await http.get(target)).json() == {}

                    per_request = await checks_per_request(kept_alive, get, server, url, checks)
            else:
                async with httpcore2.AsyncConnectionPool(max_connections=100) as stock:

                    async def get(target: str) -> None:
                        assert (await stock.request("GET", target)).status == 200

                    per_request = await checks_per_request(kept_alive, get, server, url, checks)
            tg.cancel_scope.cancel()
    return per_request


async def test_the_pools_checks_per_request_are_flat_from_2_to_64_kept_alive_connections(checks: List[int]) -> None:
    small = await measure(2, "ours", checks)
    large = await measure(64, "ours", checks)
    assert small == large <= 2


async def test_the_same_count_grows_with_the_size_of_httpcore2s_own_pool(checks: List[int]) -> None:
    # What the counter would show without QelosPool: httpcore2's pool checks every idle connection per pass.
    small = await measure(2, "httpcore2", checks)
    large = await measure(64, "httpcore2", checks)
    assert large > 10 * small


async def serving(server: Server, body: Callable[[str], Awaitable[None]]) -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server.handle)
            await body(f"http://127.0.0.1:{port}/api/me")
            tg.cancel_scope.cancel()


async def test_the_pool_keeps_at_most_max_keepalive_idle_connections() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=3))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            server.release_after(10)
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(http.get, url)
            server.release_after(0)
            assert pool._idle_count == 3 and pool._open == 3
            for _ in range(5):
                await http.get(url)
        assert server.connections == 10  # the five later requests reused kept-alive connections
        assert pool._open == 0 and pool._idle_count == 0

    await serving(server, body)


async def test_max_connections_bounds_requests_in_flight_and_the_pool_timeout_applies() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=2, max_keepalive_connections=2))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(5, pool=0.2)) as http:
            server.release_after(3)  # never reached: only two requests get a connection
            failures: List[BaseException] = []

            async def get() -> None:
                try:
                    await http.get(url)
                except httpx.PoolTimeout as exc:
                    failures.append(exc)
                    server.hold = 0
                    server._all_in.set()  # the two requests holding the connections may finish

            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(get)
            assert len(failures) == 1 and server.connections == 2
            assert str(failures[0]) == "no Qelos connection free within 0.2s"

    await serving(server, body)


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            await http.get(url)
            server.close_after_answer = True
            await http.get(url)
            await anyio.sleep(0.05)  # the server's FIN reaches our idle socket
            server.close_after_answer = False
            assert (await http.get(url)).status_code == 200
            assert pool._open == 1 and pool._idle_count == 1  # the closed one was dropped, not counted
        assert server.connections == 2

    await serving(server, body)


async def test_sequential_requests_probe_the_one_connection_they_reuse() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            for _ in range(4):
                await http.get(url)
            assert pool.probes == 3  # every request but the first popped and probed the kept-alive one
            assert pool._open == 1 and pool._idle_count == 1
        assert server.connections == 1

    await serving(server, body)


async def test_a_release_probes_the_oldest_idle_connection_unless_it_is_surplus() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=2))

    async def concurrently(http: httpx.AsyncClient, url: str, requests: int) -> None:
        server.release_after(requests)
        async with anyio.create_task_group() as tg:
            for _ in range(requests):
                tg.start_soon(http.get, url)
        server.release_after(0)

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            await concurrently(http, url, 2)
            assert pool.probes == 1  # the second release checked the first, still fresh
            assert pool._open == 2 and pool._idle_count == 2
            await concurrently(http, url, 3)
            # Two pops probed two; of the releases only the second probed: the first left one idle
            # connection, the third one too many, closed unprobed.
            assert pool.probes == 1 + 2 + 1
            assert pool._open == 2 and pool._idle_count == 2
        assert server.connections == 3

    await serving(server, body)


async def test_an_expired_connection_is_closed_and_replaced() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10, keepalive_expiry=0.05))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            await http.get(url)
            await anyio.sleep(0.15)
            await http.get(url)
            assert pool.probes == 1 and pool._open == 1 and pool._idle_count == 1
        assert server.connections == 2

    await serving(server, body)


async def test_at_max_connections_a_new_origin_takes_the_place_of_an_idle_one() -> None:
    first, second = Server(), Server()
    pool = QelosPool(httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def at_first(first_url: str) -> None:
        async def at_second(second_url: str) -> None:
            async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(5, pool=0.5)) as http:
                await http.get(first_url)
                await http.get(second_url)
                assert pool._open == 1 and pool._idle_count == 1
                await http.get(second_url)
                await http.get(first_url)
                assert pool._open == 1 and pool._idle_count == 1
            assert pool._open == 0 and pool._idle_count == 0

        await serving(second, at_second)

    await serving(first, at_first)
    assert (first.connections, second.connections) == (2, 1)


async def test_a_connection_that_fails_is_closed_and_its_slot_freed() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(5, pool=0.5)) as http:
            server.drop_requests = True
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(url)
            assert pool._open == 0 and pool._idle_count == 0
            server.drop_requests = False
            assert (await http.get(url)).status_code == 200  # the one slot is free again
            assert pool._open == 1

    await serving(server, body)


async def test_an_error_before_a_connection_is_found_frees_the_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = QelosPool(httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def failing(origin: httpcore2.Origin) -> httpcore2.AsyncHTTPConnection:
        raise OSError("no route")

    monkeypatch.setattr(pool, "_connection_for", failing)
    async with httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(5, pool=0.5)) as http:
        for _ in range(2):
            with pytest.raises(OSError, match="no route"):
                await http.get("http://127.0.0.1:9/api/me")
    assert pool._open == 0


async def test_a_request_without_timeouts_gets_the_servers_status_line() -> None:
    server = Server()
    server.answer = ANSWER.replace(b"200 OK", b"200 Fine")
    pool = QelosPool(httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def body(url: str) -> None:
        response = await pool.handle_async_request(httpx.Request("GET", url))  # no "timeout" extension
        await response.aread()
        assert response.reason_phrase == "Fine" and response.json() == {}
        await pool.aclose()

    await serving(server, body)


async def test_a_body_left_unread_closes_its_connection() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            async with http.stream("GET", url) as response:
                assert response.status_code == 200
            assert pool._open == 0 and pool._idle_count == 0
            await http.get(url)
        assert server.connections == 2

    await serving(server, body)


async def test_a_connection_released_after_the_pool_closed_is_closed() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            async with http.stream("GET", url) as response:
                await pool.aclose()
                assert await response.aread() == b"{}"
            assert pool._open == 0 and pool._idle_count == 0

    await serving(server, body)


async def test_without_an_ssl_context_the_pool_trusts_the_cas_httpx_trusts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # httpx's default trust is certifi's bundle (httpcore2's own default is the system store): a CA
    # added to that bundle is trusted, as it is by a plain httpx.AsyncClient.
    ca = trustme.CA()
    bundle = tmp_path / "cacert.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    ssl_config = getattr(httpx._config, "SSLConfig", None)
    if ssl_config is not None:  # httpx < 0.28 read certifi's path once, at import
        monkeypatch.setattr(ssl_config, "DEFAULT_CA_BUNDLE_PATH", bundle)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=1, max_keepalive_connections=1))
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as tcp:
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        listener = TLSListener(tcp, server_context, standard_compatible=False)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, server.handle)
            async with httpx.AsyncClient(transport=pool) as http:
                assert (await http.get(f"https://127.0.0.1:{port}/api/me")).json() == {}
            tg.cancel_scope.cancel()


async def all_ended(server: Server, connections: int) -> None:
    with anyio.fail_after(2):
        while server.ended < connections:
            await anyio.sleep(0.01)


async def test_a_cancelled_aclose_still_closes_every_idle_connection() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=10, max_keepalive_connections=10))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            server.release_after(2)
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(http.get, url)
            server.release_after(0)
            with anyio.CancelScope() as scope:
                scope.cancel()
                await pool.aclose()
            await all_ended(server, 2)

    await serving(server, body)


async def test_a_cancelled_request_still_closes_every_expired_connection_it_found() -> None:
    server = Server()
    pool = QelosPool(httpx.Limits(max_connections=None, max_keepalive_connections=10, keepalive_expiry=0.01))

    async def body(url: str) -> None:
        async with httpx.AsyncClient(transport=pool) as http:
            server.release_after(2)
            async with anyio.create_task_group() as tg:
                for _ in range(2):
                    tg.start_soon(http.get, url)
            server.release_after(0)
            await anyio.sleep(0.05)  # both idle connections expire
            with anyio.CancelScope() as scope:
                scope.cancel()
                await pool.handle_async_request(httpx.Request("GET", url))
            assert pool._open == 0 and pool._idle_count == 0
            await all_ended(server, 2)

    await serving(server, body)
