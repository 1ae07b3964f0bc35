"""The email sender process (``lodestar sender email``): ``<prefix>.send.email`` → SMTP.

The generic channel runner (``lodestar.channels.channel_sender``: chunked
claims before any send, concurrent delivery, retries within a budget, one
PostgreSQL round and one publish round per chunk, commit after acks) with the
email plugin here:

- ``prepare``: opt-out / INACTIVE → ``_email.rejected``; template → render →
  MIME bytes with their envelope (``core.email_sending.prepare_email``,
  serialised once) or ``_email.rendering_failure``;
- ``send``: one of ``connections`` reusable SMTP connections
  (``channels.email.SmtpSender``); 250 → ACCEPTED, 4xx or no answer → RETRY
  (a soft bounce), 5xx at rcpt/data → DEAD_ADDRESS (a hard bounce: the address
  goes on the suppression list, the endpoint stays), other 5xx → PERMANENT;
- records: ``_email.send`` then the SMTP outcome (``core.email_sending``).

A claim left by a sender that died mid-send becomes ``_email.send`` with
``send_status=UNKNOWN`` and is never sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lodestar.channels.channel_sender import (
    ChannelSender,
    ChannelSenderConfig,
    Deliverable,
    Ended,
    Sleep,
    SuppressionList,
)
from lodestar.channels.email import OutcomeKind, SmtpConfig, SmtpOutcome, SmtpSender
from lodestar.contracts.codec import AvroCodec
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import (
    EmailDefaults,
    FinalOutcome,
    RenderingFailed,
    SendState,
    Skip,
    SkipReason,
    prepare_email,
    relay_message_id,
    rendering_failure_records,
    screen,
    skip_records,
    smtp_records,
    unknown_outcome_records,
)
from lodestar.core.email_wire import OutgoingEmail
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind
from lodestar.core.topics import Topic
from lodestar.settings import Settings

log = logging.getLogger(__name__)

_RECIPIENT_STAGES = frozenset({"rcpt", "data"})


@dataclass(frozen=True)
class EmailSenderConfig(ChannelSenderConfig):
    """The runner's settings (``ChannelSenderConfig``) plus the SMTP connection pool."""

    concurrency: int = 32
    """Messages in flight at once (at most this many unknown after a crash)."""
    connections: int = 8
    """SMTP connections kept open to the relay."""


def provider_outcome(outcome: SmtpOutcome) -> ProviderOutcome:
    """An SMTP answer as a provider outcome (the stage travels along)."""
    if outcome.kind is OutcomeKind.DELIVERED:
        kind = ProviderOutcomeKind.ACCEPTED
    elif outcome.kind is OutcomeKind.SOFT_BOUNCE:
        kind = ProviderOutcomeKind.RETRY
    elif outcome.stage.value in _RECIPIENT_STAGES:
        kind = ProviderOutcomeKind.DEAD_ADDRESS
    else:
        kind = ProviderOutcomeKind.PERMANENT
    relay_id = relay_message_id(outcome.message) if kind is ProviderOutcomeKind.ACCEPTED else None
    return ProviderOutcome(kind, outcome.code, outcome.message, stage=outcome.stage.value,
                           provider_message_id=relay_id)


def _smtp_kind(outcome: ProviderOutcome) -> str:
    if outcome.kind is ProviderOutcomeKind.ACCEPTED:
        return OutcomeKind.DELIVERED.value
    if outcome.kind is ProviderOutcomeKind.RETRY:
        return OutcomeKind.SOFT_BOUNCE.value
    return OutcomeKind.HARD_BOUNCE.value


class SmtpPool:
    """``size`` reusable SMTP connections; each send takes a free one."""

    def __init__(self, config: SmtpConfig, size: int) -> None:
        self._senders = [SmtpSender(config) for _ in range(max(1, size))]
        self._free: asyncio.Queue[SmtpSender] = asyncio.Queue()
        for sender in self._senders:
            self._free.put_nowait(sender)

    async def send(self, message: OutgoingEmail) -> SmtpOutcome:
        sender = await self._free.get()
        try:
            return await sender.send(message)
        finally:
            self._free.put_nowait(sender)

    @property
    def connections_opened(self) -> int:
        return sum(s.connections_opened for s in self._senders)

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._senders))


class EmailPlugin:
    """The email channel for ``ChannelSender``."""

    channel = Channel.EMAIL
    topic = Topic.SEND_EMAIL
    template_type = "EMAIL"
    deactivates_dead_addresses = False

    def __init__(self, defaults: EmailDefaults, smtp: SmtpPool,
                 message_price_millicents: float | None = None) -> None:
        self._defaults = defaults
        self.smtp = smtp
        self.message_price_millicents = message_price_millicents

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int) -> Deliverable[OutgoingEmail] | Ended:
        skip = screen(request)
        if skip is not None:
            return Ended(skip_records(DeliverySubject.from_send_request(request), skip, now_ms))
        prepared = RenderingFailed(template_error) if template_error is not None else (
            prepare_email(request, template, self._defaults, now_ms))
        if isinstance(prepared, RenderingFailed):
            return Ended(rendering_failure_records(DeliverySubject.from_send_request(request),
                                                   prepared.error, now_ms), kind="failed")
        return Deliverable(prepared.message, str(request["address"]).lower())

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return skip_records(subject, Skip(SkipReason.SUPPRESSED,
                                          "the address is on the suppression list"), now_ms)

    async def send(self, payload: OutgoingEmail) -> ProviderOutcome:
        return provider_outcome(await self.smtp.send(payload))

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: OutgoingEmail, outcome: ProviderOutcome, attempts: int,
                        sent_ms: int, now_ms: int) -> list[Record]:
        final = FinalOutcome(_smtp_kind(outcome), outcome.status_code, outcome.message,
                             outcome.stage or "data", attempts)
        return smtp_records(subject, final, sent_ms, now_ms)

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return unknown_outcome_records(subject, now_ms)

    async def aclose(self) -> None:
        await self.smtp.close()


def email_defaults(settings: Settings) -> EmailDefaults:
    secret = settings.smtp_tracking_secret
    return EmailDefaults(
        from_address=settings.smtp_from_address,
        message_id_domain=settings.smtp_message_id_domain,
        tracking_base_url=settings.smtp_tracking_base_url,
        tracking_secret=secret.encode() if secret else None,
    )


class EmailSender(ChannelSender[OutgoingEmail]):
    """Consumes ``<prefix>.send.email`` until ``stop()``; see the module doc."""

    def __init__(self, settings: Settings, config: EmailSenderConfig | None = None, *,
                 codec: AvroCodec | None = None, smtp: SmtpConfig | None = None,
                 suppression: SuppressionList | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        config = config or EmailSenderConfig()
        self.smtp_config = smtp or SmtpConfig.from_settings(settings)
        if settings.smtp_tracking_secret and not settings.smtp_tracking_base_url.startswith(
                "https://"):
            log.warning("LODESTAR_SMTP_TRACKING_BASE_URL %s is not https: messages go out "
                        "without the one-click List-Unsubscribe header (RFC 8058 needs "
                        "https); opens and clicks are still tracked",
                        settings.smtp_tracking_base_url)
        pool = SmtpPool(self.smtp_config, config.connections)
        from lodestar.channels.factory import price_table

        price = price_table(settings).price("EMAIL", None)
        super().__init__(settings, EmailPlugin(email_defaults(settings), pool, price),
                         config, codec=codec, suppression=suppression, sleep=sleep)


__all__ = ["EmailPlugin", "EmailSender", "EmailSenderConfig", "SendState", "SmtpPool"]
