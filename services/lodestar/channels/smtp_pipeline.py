"""SMTP command pipelining (RFC 2920) on a connection aiosmtplib has set up.

aiosmtplib connects, negotiates TLS or STARTTLS, authenticates and says hello;
its protocol object parses one reply per read, so it cannot take several
replies arriving together. When the relay advertises ``PIPELINING``,
``SmtpPipeline.take_over(transport)`` becomes the transport's protocol and
carries the mail transactions from then on:

- ``exchange(data, replies)`` writes ``data`` (one or more commands) at once
  and returns the next ``replies`` replies, in order;
- ``transaction`` sends ``MAIL FROM``, ``RCPT TO`` and ``DATA`` as one group,
  then the dot-stuffed message: two round trips per message instead of four.

Every failure is a value or an ``SmtpReplyError`` / ``ConnectionError`` /
``TimeoutError`` the caller classifies; nothing is retried here.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_MAX_REPLY_LINE = 8192


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code and its text (lines joined with ``\\n``)."""

    code: int
    text: str


class SmtpReplyError(Exception):
    """A reply the transaction cannot go on after, with the command it answered."""

    def __init__(self, command: str, reply: Reply) -> None:
        super().__init__(f"{command}: {reply.code} {reply.text}")
        self.command = command
        self.reply = reply


class PipelineBroken(Exception):
    """The connection was lost or timed out; ``during`` is ``MAIL`` when nothing of
    the message had been written yet, ``DATA`` when it had."""

    def __init__(self, during: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}" if str(cause)
                         else type(cause).__name__)
        self.during = during
        self.cause = cause


def dot_stuffed(data: bytes) -> bytes:
    """``data`` as the DATA phase sends it: CRLF line endings, leading dots doubled,
    ending with ``CRLF.CRLF``."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # not all CRLF already
        data = _LINE_ENDINGS.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpPipeline(asyncio.Protocol):
    """The reply reader of one connection; replies resolve waiters first in, first out."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._transport: asyncio.WriteTransport | None = None
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._waiters: deque[asyncio.Future[Reply]] = deque()
        self._lost: BaseException | None = None

    @classmethod
    def take_over(cls, transport: asyncio.BaseTransport, timeout_seconds: float) -> SmtpPipeline:
        """Make a new pipeline the protocol of ``transport`` (idle, between transactions)."""
        pipe = cls(timeout_seconds)
        transport.set_protocol(pipe)
        pipe._transport = transport  # type: ignore[assignment]
        return pipe

    @property
    def is_open(self) -> bool:
        return (self._lost is None and self._transport is not None
                and not self._transport.is_closing())

    # -- asyncio.Protocol -------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._buffer.extend(data)
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > _MAX_REPLY_LINE:
                    self._fail(ConnectionError("reply line too long"))
                return
            line = bytes(self._buffer[:end + 1])
            del self._buffer[:end + 1]
            self._lines.append(line)
            if line[3:4] == b"-":
                continue
            lines, self._lines = self._lines, []
            try:
                code = int(lines[-1][:3])
            except ValueError:
                self._fail(ConnectionError(f"malformed SMTP reply {lines[-1][:80]!r}"))
                return
            text = "\n".join(x[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape")
                             for x in lines)
            if not self._waiters:
                self._fail(ConnectionError(f"unexpected SMTP reply {code} {text[:80]}"))
                return
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(Reply(code, text))

    def eof_received(self) -> bool:
        self._fail(ConnectionError("the relay closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection lost"))

    def _fail(self, exc: BaseException) -> None:
        if self._lost is None:
            self._lost = exc
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(self._lost)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # -- commands ---------------------------------------------------------------

    async def exchange(self, data: bytes, replies: int) -> list[Reply]:
        """Write ``data`` and wait (within the timeout) for ``replies`` replies."""
        if self._lost is not None or self._transport is None or self._transport.is_closing():
            raise ConnectionError(f"connection lost: {self._lost}" if self._lost
                                  else "connection lost")
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in range(replies)]
        self._waiters.extend(waiters)
        self._transport.write(data)
        replies: list[Reply] = []
        try:
            async with asyncio.timeout(self._timeout):
                for waiter in waiters:
                    replies.append(await waiter)
        except TimeoutError:
            self._fail(TimeoutError("timed out waiting for the relay"))
            raise
        except asyncio.CancelledError:
            # Replies would no longer match their commands: the connection is done.
            self._fail(ConnectionError("a transaction was cancelled midway"))
            raise
        finally:
            for waiter in waiters:
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()  # retrieved: the first failure is what we raise
        return replies

    async def transaction(self, mail: bytes, rcpts: list[bytes], data: bytes) -> Reply:
        """``MAIL``, every ``RCPT`` and ``DATA`` as one group, then the message; the
        final reply.

        ``mail`` and ``rcpts`` are whole command lines (CRLF included), ``data`` the
        already dot-stuffed message. Raises ``SmtpReplyError`` naming the refused
        command (``MAIL``, ``RCPT`` or ``DATA``; any refused recipient refuses the
        message); after a refusal before the message the connection is left ready
        for the next transaction (RSET sent), or closed when the relay answered DATA
        with 354 regardless. A lost connection or timeout raises ``PipelineBroken``
        saying whether the message had been written (``during="DATA"``) or not
        (``during="MAIL"``)."""
        try:
            replies = await self.exchange(mail + b"".join(rcpts) + b"DATA\r\n", len(rcpts) + 2)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise PipelineBroken("MAIL", exc) from exc
        mail_reply, data_reply = replies[0], replies[-1]
        refused: SmtpReplyError | None = None
        if mail_reply.code != 250:
            refused = SmtpReplyError("MAIL", mail_reply)
        else:
            bad = next((r for r in replies[1:-1] if r.code not in (250, 251)), None)
            if bad is not None:
                refused = SmtpReplyError("RCPT", bad)
            elif data_reply.code != 354:
                refused = SmtpReplyError("DATA", data_reply)
        if refused is None:
            try:
                (final,) = await self.exchange(data, 1)
            except (ConnectionError, TimeoutError, OSError) as exc:
                raise PipelineBroken("DATA", exc) from exc
            if final.code != 250:
                raise SmtpReplyError("DATA", final)
            return final
        if data_reply.code == 354:
            # The relay would take a message we are not sending: end the connection
            # rather than send an empty one.
            self._fail(ConnectionError("DATA accepted after a refused command"))
        else:
            await self.reset()
        raise refused

    async def reset(self) -> None:
        """RSET; a refused RSET or lost connection closes it."""
        try:
            (reply,) = await self.exchange(b"RSET\r\n", 1)
        except (ConnectionError, TimeoutError):
            return
        if reply.code != 250:
            self._fail(ConnectionError(f"RSET refused: {reply.code} {reply.text}"))

    def abort(self) -> None:
        """Close the connection now."""
        self._fail(ConnectionError("closed"))

    async def quit(self) -> None:
        """QUIT (its answer waited for briefly) and close."""
        try:
            if self.is_open:
                async with asyncio.timeout(min(self._timeout, 2.0)):
                    await self.exchange(b"QUIT\r\n", 1)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._fail(ConnectionError("closed"))
