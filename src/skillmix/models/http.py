"""A small HTTP/1.1 client for JSON POSTs to one endpoint, on asyncio protocols.

Why not aiohttp (which this replaced for the OpenAI-compatible provider): at hundreds of
requests in flight on 2 cores, the client's own CPU decides how well a fast backend is
kept busy, and aiohttp spends about 0.3 ms of Python per request on things a JSON API
call does not need (a task and a timer per request, cookie jars, tracing hooks, redirect
and multipart machinery, header multidicts). This client does one thing: keep-alive
connections to one host, a request written in one `write`, a response read into one
buffer, a timeout as one timer handle. `bench/throughput.py` measures both.

What it speaks: HTTP/1.1 over TCP or TLS, responses framed by Content-Length, chunked
transfer encoding or connection close, gzip/deflate bodies. No proxies (as before: the
aiohttp session did not read proxy variables either), no redirects (an API that
redirects a POST is misconfigured; the status is reported as is), no HTTP/2.

An idle connection that the server has closed (its keep-alive timeout) is noticed when the
close arrives and never reused. A request is never sent twice here: if the connection
breaks after it was written, that is reported, and the caller's retry policy
(`models.retry`) decides whether to send it again and counts the retry.
"""

from __future__ import annotations

import asyncio
import ssl
import zlib
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
MAX_IDLE_PER_HOST = 1024  # idle keep-alive connections kept; the rest are closed


class HttpError(Exception):
    """No (complete) HTTP response: refused, dropped, malformed or too slow."""


class ConnectError(HttpError):
    """The TCP or TLS connection could not be opened."""

    def __init__(self, message: str, os_error: OSError | None = None):
        super().__init__(message)
        self.os_error = os_error


class ConnectionBroken(HttpError):
    """The connection closed or broke before the response was complete."""


class ProtocolError(HttpError):
    """The bytes that came back are not an HTTP/1.x response."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight."""

    __slots__ = (
        "_buffer",
        "_chunked",
        "_head",
        "_length",
        "_waiter",
        "closed",
        "reusable",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._head: tuple[int, dict[str, str], bool] | None = None
        self._length: int | None = None
        self._chunked = False
        self.closed = False
        self.reusable = False

    # -- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._head is not None and self._length is None and not self._chunked:
            self._finish(bytes(self._buffer))  # framed by connection close
            return
        detail = f" ({type(exc).__name__}: {exc})" if exc else ""
        waiter.set_exception(
            ConnectionBroken(f"the server closed the connection before answering{detail}")
        )

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            if self._waiter is None:  # bytes with no request: the connection is unusable
                self._close()
            return
        try:
            self._parse()
        except ProtocolError as err:
            waiter.set_exception(err)
            self._close()

    # -- request and response
    def send(self, request: bytes, waiter: asyncio.Future[Response]) -> None:
        self._buffer.clear()
        self._head = None
        self._length = None
        self._chunked = False
        self.reusable = False
        self._waiter = waiter
        assert self.transport is not None
        self.transport.write(request)

    def _parse(self) -> None:
        buffer = self._buffer
        if self._head is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_BYTES:
                    raise ProtocolError("response headers larger than 64 KiB")
                return
            self._head = _parse_head(bytes(buffer[:end]))
            del buffer[: end + 4]
            status, headers, _ = self._head
            if status in (204, 304) or 100 <= status < 200:
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise ProtocolError("bad Content-Length header") from None
        if self._chunked:
            body = _dechunk(buffer)
            if body is not None:
                self._finish(body)
        elif self._length is not None and len(buffer) >= self._length:
            self._finish(bytes(buffer[: self._length]))

    def _finish(self, body: bytes) -> None:
        assert self._head is not None and self._waiter is not None
        status, headers, keep_alive = self._head
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            try:
                body = zlib.decompress(body, 16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
            except zlib.error as err:
                self._waiter.set_exception(ProtocolError(f"bad {encoding} body: {err}"))
                self._close()
                return
        self.reusable = keep_alive and not self.closed
        waiter, self._waiter = self._waiter, None
        self._buffer.clear()
        if not self.reusable:
            self._close()
        waiter.set_result(Response(status, headers, body))

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self._waiter = None
        if self.transport is not None:
            self.transport.abort()


def _parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, headers and whether the connection stays open, from a response's head."""
    try:
        text = head.decode("latin-1")
        status_line, *lines = text.split("\r\n")
        version, code, *_ = status_line.split(" ", 2)
        status = int(code)
    except ValueError:
        raise ProtocolError(f"not an HTTP response: {head[:80]!r}") from None
    if not version.startswith("HTTP/1."):
        raise ProtocolError(f"not an HTTP/1.x response: {head[:80]!r}")
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    return status, headers, keep_alive


def _dechunk(buffer: bytearray) -> bytes | None:
    """The body of a complete chunked message in `buffer`, or None while incomplete."""
    body = bytearray()
    pos = 0
    while True:
        end = buffer.find(b"\r\n", pos)
        if end < 0:
            return None
        size_text = bytes(buffer[pos:end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size {size_text[:20]!r}") from None
        start = end + 2
        if size == 0:
            # Trailers (usually none) end with an empty line.
            return bytes(body) if buffer.find(b"\r\n", start) >= 0 else None
        if len(buffer) < start + size + 2:
            return None
        body += buffer[start : start + size]
        pos = start + size + 2


class HttpClient:
    """Keep-alive HTTP/1.1 connections to the host of `base_url`, for POSTs of bytes."""

    def __init__(self, base_url: str):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/")
        self.ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        default_port = (parts.scheme == "https" and self.port == 443) or (
            parts.scheme == "http" and self.port == 80
        )
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = host if default_port else f"{host}:{self.port}"
        self._idle: deque[_Connection] = deque()
        self._busy: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    async def post(
        self, path: str, body: bytes, headers: dict[str, str], timeout_s: float
    ) -> Response:
        """POST `body` to `path` (under the base URL's path) and read the whole response.

        Raises `ConnectError`, `ConnectionBroken`, `ProtocolError` or `TimeoutError`
        (no complete response within `timeout_s`, connecting included).
        """
        if self._closed:
            raise ConnectionBroken("the HTTP client is closed")
        head = [f"POST {self.path}{path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        head.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        head.append(f"Content-Length: {len(body)}\r\n\r\n")
        request = "".join(head).encode("latin-1") + body
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections belong to the loop that opened them
            self._idle.clear()
            self._loop = loop
        deadline = loop.time() + timeout_s
        connection = self._idle_connection() or await self._connect(deadline)
        return await self._exchange(loop, connection, request, deadline)

    def _idle_connection(self) -> _Connection | None:
        """The most recently used idle connection still open (its peer may yet close it)."""
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None,
                )
        except TimeoutError:
            raise
        except OSError as err:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}", err) from err
        return connection

    async def _exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        connection: _Connection,
        request: bytes,
        deadline: float,
    ) -> Response:
        waiter: asyncio.Future[Response] = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter)
        self._busy.add(connection)
        try:
            connection.send(request, waiter)
            response = await waiter
        except BaseException:
            connection.abort()  # timed out, cancelled or broken: never reuse it
            raise
        finally:
            timer.cancel()
            self._busy.discard(connection)
        if connection.reusable and not self._closed and len(self._idle) < MAX_IDLE_PER_HOST:
            self._idle.append(connection)
        elif not connection.closed:
            connection.abort()
        return response

    async def aclose(self) -> None:
        self._closed = True
        if self._loop is asyncio.get_running_loop():  # else their loop has gone with them
            for connection in [*self._idle, *self._busy]:
                connection.abort()
        self._idle.clear()
        self._busy.clear()


def _expire(waiter: asyncio.Future[Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
