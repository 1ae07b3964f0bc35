"""RFC 2920 pipelining: replies are matched to commands in order, the group really
goes out at once, and a relay's refusals end the transaction without a message."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lodestar.channels.email import OutcomeKind, SmtpConfig, SmtpSender, Stage
from lodestar.channels.smtp_pipeline import Reply, SmtpPipeline, dot_stuffed
from lodestar.core.email_wire import OutgoingEmail


class _Transport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False
        self.protocol: asyncio.BaseProtocol | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.protocol = protocol


def test_dot_stuffing_and_line_endings() -> None:
    assert dot_stuffed(b"a\r\n.b\r\n..c") == b"a\r\n..b\r\n...c\r\n.\r\n"
    assert dot_stuffed(b".first\nbare lf\rbare cr\r\n") == (
        b"..first\r\nbare lf\r\nbare cr\r\n.\r\n")
    assert dot_stuffed(b"") == b"\r\n.\r\n"
    # the all-CRLF fast path and the normalising path agree on every mix of endings
    for data in (b"a\r\nb\r\n", b"a\r\nb\n", b"a\rb\r\n", b"a\n\rb", b"\r\r\n\n",
                 b"x\r", b"\n.y", b"a\r\n\r\n.b"):
        normalised = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
        stuffed = re.sub(rb"(?m)^\.", b"..", normalised)
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        assert dot_stuffed(data) == stuffed + b".\r\n", data


async def test_replies_in_one_chunk_split_chunks_and_multiline() -> None:
    transport = _Transport()
    pipe = SmtpPipeline.take_over(transport, timeout_seconds=1.0)
    assert transport.protocol is pipe
    task = asyncio.create_task(pipe.exchange(b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n", 3))
    await asyncio.sleep(0)
    assert transport.written == [b"MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n"]
    pipe.data_received(b"250 2.1.0 Ok\r\n250-2.1.5 first line\r\n25")
    pipe.data_received(b"0 2.1.5 second line\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    assert await task == [Reply(250, "2.1.0 Ok"),
                          Reply(250, "2.1.5 first line\n2.1.5 second line"),
                          Reply(354, "End data with <CR><LF>.<CR><LF>")]


async def test_a_reply_nobody_asked_for_or_garbage_breaks_the_connection() -> None:
    transport = _Transport()
    pipe = SmtpPipeline.take_over(transport, timeout_seconds=1.0)
    pipe.data_received(b"250 surprise\r\n")
    assert transport.closed and not pipe.is_open
    with pytest.raises(ConnectionError):
        await pipe.exchange(b"NOOP\r\n", 1)

    transport = _Transport()
    pipe = SmtpPipeline.take_over(transport, timeout_seconds=1.0)
    task = asyncio.create_task(pipe.exchange(b"NOOP\r\n", 1))
    await asyncio.sleep(0)
    pipe.data_received(b"hello\r\n")
    with pytest.raises(ConnectionError, match="malformed"):
        await task


async def test_no_reply_in_time_is_a_timeout_and_closes() -> None:
    transport = _Transport()
    pipe = SmtpPipeline.take_over(transport, timeout_seconds=0.05)
    with pytest.raises(TimeoutError):
        await pipe.exchange(b"NOOP\r\n", 2)
    assert transport.closed


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def relay() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except ConnectionError:
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def _hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 relay.test ESMTP\r\n")
    line = await reader.readline()
    assert line.upper().startswith(b"EHLO")
    writer.write(b"250-relay.test\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SIZE 1000000\r\n")
    await writer.drain()


async def _until(reader: asyncio.StreamReader, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _email(to: str = "ana@example.test") -> OutgoingEmail:
    data = (b"From: a@example.test\r\nTo: " + to.encode() + b"\r\nSubject: hi\r\n\r\n"
            b".leading dot\r\nbody\r\n")
    return OutgoingEmail(data=data, mail_from="a@example.test", rcpt_to=(to,))


async def test_the_group_goes_out_before_any_reply(relay) -> None:
    """The relay answers nothing until it has MAIL, RCPT and DATA: a client that
    waited for each reply would time out."""
    received: dict[str, bytes] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _hello(reader, writer)
        received["group"] = await _until(reader, b"DATA\r\n")
        writer.write(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        received["body"] = await _until(reader, b"\r\n.\r\n")
        writer.write(b"250 Ok 0100018c-ses-id-000000\r\n")
        await _until(reader, b"QUIT\r\n")
        writer.write(b"221 bye\r\n")
        writer.close()

    port = await relay(handler)
    async with SmtpSender(SmtpConfig("127.0.0.1", port, timeout_seconds=1.0)) as sender:
        outcome = await sender.send(_email())
        assert sender.pipelining
    assert (outcome.kind, outcome.code, outcome.stage) == (OutcomeKind.DELIVERED, 250, Stage.DATA)
    assert outcome.message == "Ok 0100018c-ses-id-000000"
    assert received["group"] == (b"MAIL FROM:<a@example.test> BODY=8BITMIME\r\n"
                                 b"RCPT TO:<ana@example.test>\r\nDATA\r\n")
    assert received["body"].endswith(b"\r\n..leading dot\r\nbody\r\n.\r\n")


async def test_data_accepted_after_a_refused_recipient_sends_no_message(relay) -> None:
    """A relay that (wrongly) answers 354 after refusing the only recipient gets no
    message: the connection is closed instead, and the next send opens a new one."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _hello(reader, writer)
        seen.append(await _until(reader, b"DATA\r\n"))
        if len(seen) == 1:
            writer.write(b"250 Ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n")
            rest = await reader.read()  # until the client closes
            seen.append(rest)
            return
        writer.write(b"250 Ok\r\n250 Ok\r\n354 go ahead\r\n")
        await _until(reader, b"\r\n.\r\n")
        writer.write(b"250 queued\r\n")
        await reader.read()

    port = await relay(handler)
    async with SmtpSender(SmtpConfig("127.0.0.1", port, timeout_seconds=1.0)) as sender:
        refused = await sender.send(_email("nobody@example.test"))
        delivered = await sender.send(_email())
        assert sender.connections_opened == 2
    assert (refused.kind, refused.code, refused.stage) == (
        OutcomeKind.HARD_BOUNCE, 550, Stage.RCPT)
    assert refused.recipient_refused
    assert seen[1] == b""  # nothing after DATA on the first connection
    assert delivered.kind is OutcomeKind.DELIVERED


async def test_refusals_reset_and_keep_the_connection(relay) -> None:
    commands: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _hello(reader, writer)
        commands.append(await _until(reader, b"DATA\r\n"))
        writer.write(b"451 4.3.0 try later\r\n503 5.5.1 no sender\r\n503 5.5.1 no recipients\r\n")
        commands.append(await _until(reader, b"RSET\r\n"))
        writer.write(b"250 Ok\r\n")
        commands.append(await _until(reader, b"DATA\r\n"))
        writer.write(b"250 Ok\r\n250 Ok\r\n354 go\r\n")
        await _until(reader, b"\r\n.\r\n")
        writer.write(b"554 5.7.1 rejected as spam\r\n")
        commands.append(await _until(reader, b"QUIT\r\n"))
        writer.write(b"221 bye\r\n")

    port = await relay(handler)
    async with SmtpSender(SmtpConfig("127.0.0.1", port, timeout_seconds=1.0)) as sender:
        busy = await sender.send(_email())
        spam = await sender.send(_email())
        assert sender.connections_opened == 1
    assert (busy.kind, busy.code, busy.stage) == (OutcomeKind.SOFT_BOUNCE, 451, Stage.MAIL)
    assert (spam.kind, spam.code, spam.stage) == (OutcomeKind.HARD_BOUNCE, 554, Stage.DATA)
    assert commands[1] == b"RSET\r\n" and commands[3] == b"QUIT\r\n"


async def test_a_relay_that_stops_answering_is_a_soft_bounce(relay) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _hello(reader, writer)
        await _until(reader, b"DATA\r\n")
        writer.write(b"250 Ok\r\n250 Ok\r\n354 go\r\n")
        await _until(reader, b"\r\n.\r\n")
        await asyncio.sleep(5)  # never answers the message

    port = await relay(handler)
    sender = SmtpSender(SmtpConfig("127.0.0.1", port, timeout_seconds=0.3))
    outcome = await sender.send(_email())
    await sender.close()
    # The message was written: a lost answer is a soft bounce at DATA, never resent here.
    assert (outcome.kind, outcome.code, outcome.stage) == (
        OutcomeKind.SOFT_BOUNCE, None, Stage.DATA)
    assert sender.connections_opened == 1


def test_an_accepted_message_carries_the_relay_id() -> None:
    from lodestar.channels.email import SmtpOutcome
    from lodestar.channels.email_sender import provider_outcome

    ses = provider_outcome(SmtpOutcome(OutcomeKind.DELIVERED, 250, "Ok 0100018c-ses-id-000000",
                                       Stage.DATA))
    assert ses.provider_message_id == "0100018c-ses-id-000000"
    refused = provider_outcome(SmtpOutcome(OutcomeKind.HARD_BOUNCE, 550, "queued as nothing",
                                           Stage.RCPT))
    assert refused.provider_message_id is None
