"""The lean HTTP/1.1 client: framing, keep-alive reuse, the pool limit, failures, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from lodestar.channels.http1 import Http1Error, Http1Pool

Answer = Callable[[bytes], list[bytes] | None]
"""Request bytes → the pieces to write back (each written separately), None: hang up."""


class Peer:
    """A scripted HTTP/1.1 server on 127.0.0.1: records requests and connections."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.connections = 0
        self.open_now = 0
        self.most_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                pieces = self.answer(request)
                if pieces is None:
                    return
                for piece in pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.005)
                if (pieces and pieces[-1] == b"") or b"connection: close" in b"".join(
                        pieces).lower():
                    return  # an empty last piece: hang up after the others
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def peer(answer: Answer) -> AsyncIterator[tuple[Peer, str]]:
    scripted = Peer(answer)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield scripted, f"http://127.0.0.1:{port}"
    finally:
        server.close()


def ok(body: bytes = b'{"name":"n1"}', extra: bytes = b"") -> Answer:
    return lambda _: [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra
                      + b"Content-Length: %d\r\n\r\n" % len(body) + body]


async def test_a_post_carries_host_headers_and_body_and_reads_the_answer() -> None:
    async with peer(ok(extra=b"Retry-After: 7\r\n")) as (server, url):
        pool = Http1Pool(url, 4, 5.0)
        response = await pool.post("/v1/x:send?a=1", "Authorization: Bearer t\r\n", b'{"m":1}')
        await pool.aclose()
    assert (response.status, response.body) == (200, b'{"name":"n1"}')
    assert response.headers["retry-after"] == "7"
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/x:send?a=1 HTTP/1.1"
    assert f"Host: {url.removeprefix('http://')}".encode() in lines
    assert b"Authorization: Bearer t" in lines and b"Content-Length: 7" in lines
    assert body == b'{"m":1}'


async def test_connections_are_reused_and_never_more_than_the_limit() -> None:
    async with peer(ok()) as (server, url):
        pool = Http1Pool(url, 3, 5.0)
        answers = await asyncio.gather(*(pool.post("/s", "", b"x") for _ in range(30)))
        await pool.aclose()
    assert [a.status for a in answers] == [200] * 30
    assert len(server.requests) == 30
    assert server.connections == 3 and server.most_open <= 3


async def test_an_answer_in_pieces_and_a_chunked_answer_with_trailers() -> None:
    def answer(request: bytes) -> list[bytes]:
        if b"chunked" in request:
            return [b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"5;ext=1\r\nhello\r\n", b"6\r\n world\r\n0\r\n", b"X-Trailer: 1\r\n\r\n"]
        return [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not", b" Found\r\nContent-Le",
                b"ngth: 4\r\n\r\nno", b"pe"]

    async with peer(answer) as (server, url):
        pool = Http1Pool(url, 1, 5.0)
        split = await pool.post("/s", "", b"plain")
        chunked = await pool.post("/s", "", b"chunked")
        again = await pool.post("/s", "", b"plain")
        await pool.aclose()
    assert (split.status, split.body) == (404, b"nope")
    assert (chunked.status, chunked.body) == (503, b"hello world")
    assert (again.status, again.body) == (404, b"nope")
    assert server.connections == 1  # both framings leave the connection usable


async def test_connection_close_and_a_body_read_until_close() -> None:
    def answer(request: bytes) -> list[bytes]:
        if b"until-close" in request:
            return [b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"]
        return [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"]

    async with peer(answer) as (server, url):
        pool = Http1Pool(url, 1, 5.0)
        first = await pool.post("/s", "", b"x")
        second = await pool.post("/s", "", b"until-close")
        await pool.aclose()
    assert (first.body, second.body) == (b"ok", b"all of it")
    assert server.connections == 2


async def test_failures_are_http1_errors_and_the_pool_recovers() -> None:
    scripts: list[list[bytes] | None] = [
        None,  # hang up without an answer
        [b"SSH-2.0-OpenSSH_9.6\r\n\r\n"],
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", b""],  # then hang up
    ]

    def answer(request: bytes) -> list[bytes] | None:
        return scripts.pop(0) if scripts else ok()(request)

    async with peer(answer) as (server, url):
        pool = Http1Pool(url, 1, 5.0)
        with pytest.raises(Http1Error, match="closed before the answer"):
            await pool.post("/s", "", b"x")
        with pytest.raises(Http1Error, match=r"not an HTTP/1\.x status line"):
            await pool.post("/s", "", b"x")
        with pytest.raises(Http1Error, match="closed before the answer"):
            await pool.post("/s", "", b"x")
        recovered = await asyncio.wait_for(pool.post("/s", "", b"x"), 5)
        await pool.aclose()
    assert recovered.status == 200
    assert server.connections == 4  # a broken connection is never reused


async def test_a_server_that_never_answers_times_out_and_frees_the_slot() -> None:
    def answer(request: bytes) -> list[bytes] | None:
        return [] if b"hang" in request else ok()(request)

    async with peer(answer) as (server, url):
        pool = Http1Pool(url, 1, 0.3)
        with pytest.raises(TimeoutError):
            await pool.post("/s", "", b"hang")
        fine = await pool.post("/s", "", b"x")  # the only slot was given back
        await pool.aclose()
    assert fine.status == 200
    assert server.connections == 2  # the timed-out connection was dropped


async def test_nothing_listening_is_an_http1_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    pool = Http1Pool(f"http://127.0.0.1:{port}", 2, 2.0)
    with pytest.raises(Http1Error, match="cannot connect"):
        await pool.post("/s", "", b"x")
    with pytest.raises(Http1Error, match="cannot connect"):  # the failed slot was freed
        await pool.post("/s", "", b"x")


def test_only_http_origins() -> None:
    with pytest.raises(ValueError, match="not an http"):
        Http1Pool("ftp://example.test", 1, 1.0)
    assert Http1Pool("https://fcm.googleapis.com", 1, 1.0).port == 443
