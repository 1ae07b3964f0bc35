"""A lean keep-alive HTTP/1.1 client for one origin, for high-rate provider POSTs.

``Http1Pool(origin, connections, timeout_s)`` keeps up to ``connections`` connections
to ``origin`` (``http://host[:port]`` or ``https://…``, TLS verified with the system's
trust store) and reuses them, most recently used first. ``await post(target, headers,
body)`` writes one request (``headers``: ready ``Name: value\\r\\n`` lines; ``Host``
and ``Content-Length`` are added) and returns the ``Http1Response`` (status,
lower-cased headers, body read by Content-Length, chunked encoding or until close).

It raises ``Http1Error`` when the connection cannot be made, breaks, or the answer is
not HTTP/1.x, and ``TimeoutError`` when no complete answer arrived within
``timeout_s`` (waiting for a connection and connecting included); the connection is
dropped then. A request is never sent twice. One request per connection at a time
(no pipelining). Per request it costs a fraction of a general-purpose client (the
push sender's bottleneck, docs/benchmarks.md): no per-request tasks, timers only
for the deadline, headers parsed once.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
"""Bytes of status line and headers at most."""


class Http1Error(Exception):
    """The exchange failed: no connection, a broken one, or an answer that is not HTTP."""


@dataclass(frozen=True, slots=True)
class Http1Response:
    status: int
    headers: dict[str, str]
    """Lower-case names; a repeated header keeps its last value."""
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection: writes a request, parses the answer into ``waiter``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        self.waiter: asyncio.Future[Http1Response] | None = None
        self.buffer = bytearray()
        self._status = 0
        self._headers: dict[str, str] = {}
        self._length: int | None = None  # body bytes expected; None: not known yet
        self._chunked = False
        self._until_close = False
        self._keep_alive = False
        self._chunks: list[bytes] = []
        self._in_body = False

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self._in_body and self._until_close:
            self._complete(bytes(self.buffer))
            return
        reason = f": {exc}" if exc else ""
        waiter.set_exception(Http1Error(f"the connection closed before the answer{reason}"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.abort()  # an answer nobody asked for: the connection is out of step
            return
        self.buffer += data
        try:
            self._parse()
        except (ValueError, UnicodeDecodeError) as exc:
            self._fail(Http1Error(f"malformed answer: {exc}"))

    # -- use ----------------------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[Http1Response]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.reusable = False
        self.buffer.clear()
        self._status, self._headers, self._length = 0, {}, None
        self._chunked = self._until_close = self._in_body = False
        self._chunks = []
        self.transport.write(data)
        return self.waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)
        self.abort()

    def _complete(self, body: bytes) -> None:
        waiter = self.waiter
        self.reusable = self._keep_alive and not self.buffer and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result(Http1Response(self._status, self._headers, body))

    def _parse(self) -> None:
        buffer = self.buffer
        while not self._in_body:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ValueError("the status line and headers are too long")
                return
            lines = buffer[:end].decode("latin-1").split("\r\n")
            del buffer[:end + 4]
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, colon, value = line.partition(":")
                if not colon:
                    raise ValueError(f"header line without ':': {line[:80]!r}")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:
                continue  # an interim answer (100 Continue …): the final one follows
            self._status, self._headers = status, headers
            connection = headers.get("connection", "").lower()
            self._keep_alive = ("close" not in connection if version == "HTTP/1.1"
                                else "keep-alive" in connection)
            if status in (204, 304):
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._chunked = True
            elif "content-length" in headers:
                self._length = int(headers["content-length"])
                if self._length < 0:
                    raise ValueError("negative Content-Length")
            else:
                self._until_close = True
                self._keep_alive = False
            self._in_body = True
        if self._chunked:
            self._parse_chunks()
        elif self._length is not None and len(buffer) >= self._length:
            body = bytes(buffer[:self._length])
            del buffer[:self._length]
            self._complete(body)

    def _parse_chunks(self) -> None:
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(bytes(buffer[:line_end]).split(b";", 1)[0].strip(), 16)
            if size == 0:  # the last chunk; then trailer lines up to an empty line
                if buffer[line_end + 2:line_end + 4] == b"\r\n":
                    end = line_end + 4
                else:
                    found = buffer.find(b"\r\n\r\n", line_end + 2)
                    if found < 0:
                        return
                    end = found + 4
                del buffer[:end]
                self._complete(b"".join(self._chunks))
                return
            start = line_end + 2
            if len(buffer) < start + size + 2:
                return
            if buffer[start + size:start + size + 2] != b"\r\n":
                raise ValueError("a chunk does not end with CRLF")
            self._chunks.append(bytes(buffer[start:start + size]))
            del buffer[:start + size + 2]


def _expire(future: asyncio.Future[object]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class Http1Pool:
    """Keep-alive connections to one origin; see the module doc."""

    def __init__(self, origin: str, connections: int, timeout_s: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.host = parts.hostname
        tls = parts.scheme == "https"
        self.port = parts.port or (443 if tls else 80)
        self._host_line = f"Host: {parts.netloc.rpartition('@')[2]}\r\n"
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        self.limit = max(1, connections)
        self.timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._count = 0
        self._waiters: collections.deque[asyncio.Future[_Connection | None]] = (
            collections.deque())
        self._closed = False

    async def post(self, target: str, headers: str, body: bytes) -> Http1Response:
        """POST ``body`` to ``target`` (the path and query); see the module doc."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        conn = await self._acquire(loop, deadline)
        data = (f"POST {target} HTTP/1.1\r\n{self._host_line}{headers}"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        answer = conn.request(data)
        timer = loop.call_at(deadline, _expire, answer)
        try:
            response = await answer
        except BaseException:
            conn.abort()
            self._release(conn)
            raise
        finally:
            timer.cancel()
        self._release(conn)
        return response

    async def aclose(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.abort()
        self._idle.clear()

    async def _acquire(self, loop: asyncio.AbstractEventLoop,
                       deadline: float) -> _Connection:
        while True:
            if self._closed:
                raise Http1Error("the pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._count -= 1
            if self._count < self.limit:
                self._count += 1
                try:
                    return await self._connect(loop, deadline)
                except BaseException:
                    self._count -= 1
                    self._hand_over(None)
                    raise
            waiter: asyncio.Future[_Connection | None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                handed = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    handed = waiter.result()  # handed over as we gave up: pass it on
                    if handed is None:
                        self._hand_over(None)
                    else:
                        self._release(handed)
                raise
            finally:
                timer.cancel()
            if handed is not None and not handed.closed:
                return handed
            if handed is not None:
                self._count -= 1

    async def _connect(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, self.host, self.port, ssl=self._ssl,
                                       server_hostname=self.host if self._ssl else None),
                max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise Http1Error(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return conn

    def _release(self, conn: _Connection | None) -> None:
        """Give ``conn`` back (to a waiter first); a closed or spent one frees its slot."""
        if conn is None:
            return
        if conn.closed or not conn.reusable or self._closed:
            if not conn.closed:
                conn.abort()
            self._count -= 1
            self._hand_over(None)
            return
        if not self._hand_over(conn):
            self._idle.append(conn)

    def _hand_over(self, conn: _Connection | None) -> bool:
        """Wake the oldest waiter with ``conn`` (None: a slot is free to connect)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False
