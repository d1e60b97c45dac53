"""The keep-alive HTTP/1.1 client behind the OpenAI-compatible provider, against real
sockets: raw asyncio servers on 127.0.0.1 that answer with exactly the bytes each case
needs (framing, keep-alive, stale connections, garbage, silence)."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Awaitable, Callable

import pytest

from skillmix.models.http import (
    ConnectError,
    ConnectionBroken,
    HttpClient,
    ProtocolError,
    Response,
)

Handler = Callable[[bytes, int], bytes | None]  # request bytes, request number -> reply


class RawServer:
    """Reads whole requests (head + Content-Length body) and writes back `handler`'s bytes.

    `handler` returns the reply, or None to stay silent. `close_after` closes the
    connection after each reply; `connections` counts accepted connections."""

    def __init__(self, handler: Handler, *, close_after: bool = False):
        self.handler = handler
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = self.handler(request, len(self.requests))
                if reply is None:
                    await asyncio.sleep(3600)
                    return
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b'{"ok": true}', extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def run(coroutine: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coroutine())  # type: ignore[arg-type]


async def post(client: HttpClient, body: bytes = b"{}", timeout_s: float = 5.0) -> Response:
    return await client.post("/chat/completions", body, {"X-Test": "1"}, timeout_s)


def test_request_bytes_and_keep_alive_reuse() -> None:
    async def main() -> None:
        async with RawServer(lambda req, n: ok(f'{{"n": {n}}}'.encode())) as server:
            client = HttpClient(server.url)
            answers = [await post(client, b'{"a": 1}') for _ in range(5)]
            await client.aclose()
        assert [r.body for r in answers] == [f'{{"n": {n}}}'.encode() for n in range(1, 6)]
        assert all(r.status == 200 for r in answers)
        assert answers[0].headers["content-type"] == "application/json"
        assert server.connections == 1  # one connection, kept alive
        first = server.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert b"\r\nHost: 127.0.0.1:" in first and b"\r\nX-Test: 1\r\n" in first
        assert first.endswith(b"Content-Length: 8\r\n\r\n" + b'{"a": 1}')

    run(main)


def test_concurrent_requests_each_get_their_own_answer() -> None:
    async def main() -> None:
        def echo(req: bytes, n: int) -> bytes:
            return ok(req.split(b"\r\n\r\n", 1)[1])

        async with RawServer(echo) as server:
            client = HttpClient(server.url)
            bodies = [f'{{"i": {i}}}'.encode() for i in range(40)]
            answers = await asyncio.gather(*(post(client, b) for b in bodies))
            await client.aclose()
        assert [r.body for r in answers] == bodies
        assert server.connections == 40

    run(main)


def test_chunked_body_split_across_packets() -> None:
    async def main() -> None:
        reply = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"
        )
        async with RawServer(lambda req, n: reply) as server:
            client = HttpClient(server.url)
            answer = await post(client)
            again = await post(client)
            await client.aclose()
        assert answer.body == again.body == b"hello, world"
        assert server.connections == 1

    run(main)


def test_body_framed_by_connection_close_and_http10() -> None:
    async def main() -> None:
        async with RawServer(
            lambda req, n: b"HTTP/1.0 200 OK\r\n\r\nall of it", close_after=True
        ) as server:
            client = HttpClient(server.url)
            first = await post(client)
            second = await post(client)
            await client.aclose()
        assert first.body == second.body == b"all of it"
        assert server.connections == 2  # HTTP/1.0 without keep-alive: never reused

    run(main)


def test_connection_close_header_is_honoured() -> None:
    async def main() -> None:
        async with RawServer(
            lambda req, n: ok(extra="Connection: close\r\n"), close_after=True
        ) as server:
            client = HttpClient(server.url)
            for _ in range(3):
                assert (await post(client)).status == 200
            await client.aclose()
        assert server.connections == 3

    run(main)


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    """The server closes each connection after answering but says nothing (a keep-alive
    timeout): once the close has arrived, the next request goes out on a new connection."""

    async def main() -> None:
        async with RawServer(lambda req, n: ok(f"{n}".encode()), close_after=True) as server:
            client = HttpClient(server.url)
            first = await post(client)
            idle = client._idle[-1]
            while not idle.closed:  # wait for the close itself, however long it takes
                await asyncio.sleep(0)
            second = await post(client)
            await client.aclose()
        assert (first.body, second.body) == (b"1", b"2")
        assert len(server.requests) == 2
        assert server.connections == 2

    run(main)


def test_a_dropped_request_is_reported_and_not_sent_again() -> None:
    """The server reads the second request on a kept-alive connection and hangs up: that is
    the caller's to retry (and count), not something to resend behind its back."""

    async def main() -> None:
        def answer_once(req: bytes, n: int) -> bytes:
            return ok() if n == 1 else b""

        async with RawServer(answer_once) as server:
            client = HttpClient(server.url)
            assert (await post(client)).status == 200
            server.close_after = True  # the empty reply, then the close
            with pytest.raises(ConnectionBroken, match="before answering"):
                await post(client)
            await client.aclose()
        assert len(server.requests) == 2

    run(main)


def test_gzip_body_is_decoded() -> None:
    async def main() -> None:
        packed = gzip.compress(b'{"zipped": true}')
        async with RawServer(lambda req, n: ok(packed, "Content-Encoding: gzip\r\n")) as server:
            client = HttpClient(server.url)
            answer = await post(client)
            await client.aclose()
        assert answer.body == b'{"zipped": true}'

    run(main)


def test_silent_server_times_out_and_the_connection_is_not_reused() -> None:
    async def main() -> None:
        async with RawServer(lambda req, n: None if n == 1 else ok()) as server:
            client = HttpClient(server.url)
            with pytest.raises(TimeoutError):
                await post(client, timeout_s=0.2)
            assert (await post(client)).status == 200
            await client.aclose()
        assert server.connections == 2

    run(main)


def test_garbage_is_a_protocol_error() -> None:
    async def main() -> None:
        async with RawServer(lambda req, n: b"SSH-2.0-OpenSSH\r\n\r\n") as server:
            client = HttpClient(server.url)
            with pytest.raises(ProtocolError, match="not an HTTP"):
                await post(client)
            await client.aclose()

    run(main)


def test_connection_dropped_mid_body_is_broken_not_a_short_answer() -> None:
    async def main() -> None:
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"
        async with RawServer(lambda req, n: reply, close_after=True) as server:
            client = HttpClient(server.url)
            with pytest.raises(ConnectionBroken, match="closed the connection"):
                await post(client)
            await client.aclose()

    run(main)


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused

        async def main() -> None:
            client = HttpClient(f"http://127.0.0.1:{port}/v1")
            with pytest.raises(ConnectError) as caught:
                await post(client)
            assert isinstance(caught.value.os_error, OSError)

        run(main)


def test_a_client_survives_a_new_event_loop() -> None:
    """Idle connections belong to the loop that opened them; a second asyncio.run (as the
    CLI does between phases) opens fresh ones instead of touching dead transports."""

    async def serve_twice() -> None:
        async with RawServer(lambda req, n: ok()) as server:
            client = HttpClient(server.url)

            def in_new_loop() -> int:
                return asyncio.run(post(client)).status

            assert (await post(client)).status == 200
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, in_new_loop) == 200
            await client.aclose()
        assert server.connections == 2

    run(serve_twice)


def test_bad_base_url() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpClient("ftp://example.org/v1")
