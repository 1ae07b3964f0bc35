"""Sending one email over SMTP (aiosmtplib) and saying, as a value, how it went.

``SmtpSender`` holds one connection to the configured relay and reuses it for
every message; it connects lazily, and after a broken connection it connects
again on the next send. ``send(message)`` takes an ``OutgoingEmail`` (the bytes
``lodestar.core.email_message.build_email`` serialised once, with the envelope)
or, slower, a stdlib ``EmailMessage`` it flattens itself. It never raises for
SMTP or network trouble: it returns an ``SmtpOutcome``

- ``DELIVERED``: the relay answered 2xx to DATA (accepted, not yet in the inbox);
- ``SOFT_BOUNCE``: transient — a 4xx answer, a refused or lost connection, a
  timeout; worth retrying later;
- ``HARD_BOUNCE``: permanent — a 5xx answer; retrying will not help.

with the server's code and text and the ``stage`` it happened at (connect,
auth, mail, rcpt, data). Only a 5xx at ``rcpt`` or ``data`` says something
about the recipient's address (``recipient_refused``); a 5xx at ``auth`` or
``mail`` is a problem of our own configuration.

When the relay advertises PIPELINING (RFC 2920; Postfix, Exim and the hosted
relays do), aiosmtplib's connection is handed to ``channels.smtp_pipeline`` after
the greeting, TLS and AUTH, and each message takes two round trips (MAIL, RCPT
and DATA as one group, then the message) instead of four. The outcomes are the
same either way.

A connection that was idle may have been closed by the relay without us
noticing; when that shows at MAIL FROM (before anything of the message was
sent) the sender reconnects and tries once more, so a stale connection never
costs a soft bounce. A connection lost during DATA is a soft bounce: the relay
may or may not have the message (senders dedupe on the message id).
"""

from __future__ import annotations

import asyncio
import copy
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import SMTPUTF8 as SMTPUTF8_POLICY
from email.utils import getaddresses
from enum import StrEnum
from io import BytesIO

import aiosmtplib
from aiosmtplib.email import quote_address

from lodestar.channels.smtp_pipeline import (
    PipelineBroken,
    SmtpPipeline,
    SmtpReplyError,
    dot_stuffed,
)
from lodestar.core.email_wire import OutgoingEmail
from lodestar.settings import Settings


class TlsMode(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class OutcomeKind(StrEnum):
    DELIVERED = "DELIVERED"
    SOFT_BOUNCE = "SOFT_BOUNCE"
    HARD_BOUNCE = "HARD_BOUNCE"


class Stage(StrEnum):
    CONNECT = "connect"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True)
class SmtpOutcome:
    kind: OutcomeKind
    code: int | None
    """The server's reply code; ``None`` when there was no answer (network, timeout)."""
    message: str
    stage: Stage

    @property
    def transient(self) -> bool:
        return self.kind is OutcomeKind.SOFT_BOUNCE

    @property
    def recipient_refused(self) -> bool:
        """A permanent refusal of the recipient or the message (suppression-list material)."""
        return self.kind is OutcomeKind.HARD_BOUNCE and self.stage in (Stage.RCPT, Stage.DATA)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    tls: TlsMode = TlsMode.NONE
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 10.0
    pipelining: bool = True
    """Pipeline each transaction (RFC 2920) when the relay advertises PIPELINING."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=TlsMode(settings.smtp_tls),
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout_seconds=settings.smtp_timeout_seconds,
        )


def classify(code: int | None, message: str, stage: Stage) -> SmtpOutcome:
    """An outcome from a reply code (``None``: no reply at all)."""
    if code is not None and 200 <= code < 300:
        kind = OutcomeKind.DELIVERED
    elif code is not None and 500 <= code < 600:
        kind = OutcomeKind.HARD_BOUNCE
    else:
        kind = OutcomeKind.SOFT_BOUNCE
    return SmtpOutcome(kind, code, message, stage)


class _Failed(Exception):
    def __init__(self, outcome: SmtpOutcome, *, reusable: bool) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome
        self.reusable = reusable


class SmtpSender:
    """One reusable SMTP connection; ``send`` calls are serialised on it."""

    def __init__(self, config: SmtpConfig, *, tls_context: ssl.SSLContext | None = None) -> None:
        self._config = config
        self._tls_context = tls_context
        self._smtp: aiosmtplib.SMTP | None = None
        self._pipe: SmtpPipeline | None = None
        """Set when the relay pipelines: it then carries every transaction."""
        self._lock = asyncio.Lock()
        self.connections_opened = 0
        """How many connections this sender has opened (one, while nothing breaks)."""

    async def __aenter__(self) -> SmtpSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """QUIT and close the connection, if one is open."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            pipe, self._pipe = self._pipe, None
            if pipe is not None:
                await pipe.quit()
            elif smtp is not None and smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()

    async def send(self, message: OutgoingEmail | EmailMessage, *, sender: str | None = None,
                   recipients: list[str] | None = None) -> SmtpOutcome:
        """Deliver ``message`` to the relay. The envelope defaults to the message's own
        (an ``EmailMessage``'s From and To/Cc).

        An ``OutgoingEmail`` goes out as its bytes; to a relay without 8BITMIME its
        7-bit variant is sent."""
        if isinstance(message, OutgoingEmail):
            mail_from = sender if sender is not None else message.mail_from
            rcpt_to = recipients if recipients is not None else list(message.rcpt_to)
        else:
            mail_from = sender if sender is not None else _addresses(message, "From")[0]
            rcpt_to = recipients if recipients is not None else (
                _addresses(message, "To") + _addresses(message, "Cc"))
        async with self._lock:
            for attempt in (1, 2):
                fresh = not self._connected()
                try:
                    smtp = await self._connection()
                    if self._pipe is not None:
                        return await self._pipelined(smtp, self._pipe, message, mail_from,
                                                     rcpt_to)
                    return await self._transaction(smtp, message, mail_from, rcpt_to)
                except _Failed as failed:
                    if not failed.reusable:
                        self._drop()
                    stale = (not fresh and failed.outcome.stage is Stage.MAIL
                             and failed.outcome.code is None)
                    if attempt == 1 and stale:
                        continue
                    return failed.outcome
        raise AssertionError("unreachable")

    @property
    def pipelining(self) -> bool:
        """Whether the open connection carries transactions pipelined (RFC 2920)."""
        return self._pipe is not None and self._pipe.is_open

    def _connected(self) -> bool:
        if self._pipe is not None:
            return self._pipe.is_open
        return self._smtp is not None and self._smtp.is_connected

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            pipe.abort()
        elif smtp is not None:
            smtp.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._connected():
            return self._smtp
        self._drop()
        cfg = self._config
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            timeout=cfg.timeout_seconds,
            use_tls=cfg.tls is TlsMode.TLS,
            start_tls=cfg.tls is TlsMode.STARTTLS,
            tls_context=self._tls_context,
        )
        await _opening_step(smtp, smtp.connect(), Stage.CONNECT)
        self.connections_opened += 1
        if cfg.username is not None and cfg.password is not None:
            await _opening_step(smtp, smtp.login(cfg.username, cfg.password), Stage.AUTH)
        if smtp.is_ehlo_or_helo_needed:
            await _opening_step(smtp, smtp.ehlo(), Stage.CONNECT)
        self._smtp = smtp
        if (self._config.pipelining and smtp.supports_extension("pipelining")
                and smtp.transport is not None):
            self._pipe = SmtpPipeline.take_over(smtp.transport, cfg.timeout_seconds)
        return smtp

    async def _pipelined(self, smtp: aiosmtplib.SMTP, pipe: SmtpPipeline,
                         message: OutgoingEmail | EmailMessage, mail_from: str,
                         rcpt_to: list[str]) -> SmtpOutcome:
        """One transaction in two round trips (RFC 2920); same outcomes as ``_transaction``."""
        utf8 = not (mail_from + "".join(rcpt_to)).isascii()
        encoding = "utf-8" if utf8 else "ascii"
        eight_bit = smtp.supports_extension("8BITMIME")
        mail = b"MAIL FROM:" + _path(mail_from, encoding)
        if utf8:
            mail += b" SMTPUTF8"
        if eight_bit:
            mail += b" BODY=8BITMIME"
        rcpts = [b"RCPT TO:" + _path(r, encoding) + b"\r\n" for r in rcpt_to]
        data = dot_stuffed(_wire(message, utf8=utf8, eight_bit=eight_bit))
        try:
            reply = await pipe.transaction(mail + b"\r\n", rcpts, data)
        except SmtpReplyError as exc:
            outcome = classify(exc.reply.code, exc.reply.text, _STAGES[exc.command])
            raise _Failed(outcome, reusable=pipe.is_open and exc.reply.code != 421) from None
        except PipelineBroken as exc:
            raise _Failed(classify(None, str(exc), _STAGES[exc.during]), reusable=False) from None
        return classify(reply.code, reply.text, Stage.DATA)

    async def _transaction(self, smtp: aiosmtplib.SMTP, message: OutgoingEmail | EmailMessage,
                           mail_from: str, rcpt_to: list[str]) -> SmtpOutcome:
        stage = Stage.MAIL
        try:
            utf8 = not (mail_from + "".join(rcpt_to)).isascii()
            options = []
            if utf8:
                options.append("SMTPUTF8")
            eight_bit = smtp.supports_extension("8BITMIME")
            if eight_bit:
                options.append("BODY=8BITMIME")
            encoding = "utf-8" if utf8 else "ascii"
            await _command(smtp, b"MAIL", b"FROM:" + _path(mail_from, encoding),
                           *(o.encode("ascii") for o in options), accept=_MAIL_OK)
            stage = Stage.RCPT
            for rcpt in rcpt_to:
                await _command(smtp, b"RCPT", b"TO:" + _path(rcpt, encoding), accept=_RCPT_OK)
            stage = Stage.DATA
            response = await smtp.data(_wire(message, utf8=utf8, eight_bit=eight_bit))
        except aiosmtplib.SMTPResponseException as exc:
            outcome = classify(exc.code, exc.message, stage)
            reusable = exc.code not in (421,)
            if reusable and stage is not Stage.DATA:
                reusable = await _reset(smtp)
            raise _Failed(outcome, reusable=reusable) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise _Failed(classify(None, _describe(exc), stage), reusable=False) from None
        return classify(response.code, response.message, Stage.DATA)


async def _opening_step(smtp: aiosmtplib.SMTP, step: Awaitable[object], stage: Stage) -> None:
    """One step of opening a connection (connect, AUTH, EHLO); a failure closes the
    connection and raises ``_Failed`` at ``stage``."""
    try:
        await step
    except aiosmtplib.SMTPResponseException as exc:
        smtp.close()
        raise _Failed(classify(exc.code, exc.message, stage), reusable=False) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        smtp.close()
        raise _Failed(classify(None, _describe(exc), stage), reusable=False) from None


_STAGES = {"MAIL": Stage.MAIL, "RCPT": Stage.RCPT, "DATA": Stage.DATA}
_MAIL_OK = frozenset({250})
_RCPT_OK = frozenset({250, 251})
_PLAIN_ADDR_SPEC = re.compile(r"[^\s<>()\[\]\\,;:\"]+@[^\s<>()\[\]\\,;:\"@]+")


def _path(address: str, encoding: str) -> bytes:
    """``<address>`` for MAIL FROM / RCPT TO. A plain addr-spec (what an
    ``OutgoingEmail`` envelope holds) is quoted directly; anything else goes
    through aiosmtplib's parser (display names, comments)."""
    if _PLAIN_ADDR_SPEC.fullmatch(address):
        return f"<{address}>".encode(encoding)
    return quote_address(address).encode(encoding)


async def _command(smtp: aiosmtplib.SMTP, *args: bytes, accept: frozenset[int]) -> None:
    """One SMTP command; an answer outside ``accept`` raises ``SMTPResponseException``."""
    response = await smtp.execute_command(*args)
    if response.code not in accept:
        raise aiosmtplib.SMTPResponseException(response.code, response.message)


async def _reset(smtp: aiosmtplib.SMTP) -> bool:
    """RSET after a refused transaction; False when the connection is no good."""
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return False
    return True


def _addresses(message: EmailMessage, header: str) -> list[str]:
    return [addr for _, addr in getaddresses([str(v) for v in message.get_all(header, [])])
            if addr]


def _wire(message: OutgoingEmail | EmailMessage, *, utf8: bool, eight_bit: bool) -> bytes:
    if isinstance(message, OutgoingEmail):
        if eight_bit or message.seven_bit is None:
            return message.data
        return message.seven_bit
    return _flatten(message, utf8=utf8, eight_bit=eight_bit)


def _flatten(message: EmailMessage, *, utf8: bool, eight_bit: bool) -> bytes:
    if "Bcc" in message:
        message = copy.copy(message)
        del message["Bcc"]
    policy = SMTPUTF8_POLICY if utf8 else SMTP_POLICY
    if not eight_bit:
        policy = policy.clone(cte_type="7bit")
    out = BytesIO()
    BytesGenerator(out, policy=policy).flatten(message)
    return out.getvalue()


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
