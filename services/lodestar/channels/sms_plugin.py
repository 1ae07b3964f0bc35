"""The SMS channel for ``ChannelSender`` (``lodestar sender sms``).

``prepare``: opt-out / INACTIVE → ``_SMS.OPTOUT`` / ``_SMS.FAILURE``; routing
(``core.sms_routing``) → ``_SMS.FAILURE`` when no origination identity may
serve the destination; render, split and price (``core.sms_sending``).
``send``: the configured provider (``channels.sms``: Twilio or generic HTTP).
A number the provider calls invalid (DEAD_ADDRESS) makes the endpoint INACTIVE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestar.channels.channel_sender import Deliverable, Ended
from lodestar.channels.sms import SmsProvider
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import Skip, SkipReason, screen
from lodestar.core.provider_outcome import ProviderOutcome
from lodestar.core.sms_routing import NoRoute
from lodestar.core.sms_sending import (
    PreparedSms,
    RenderingFailed,
    SmsDefaults,
    no_route_records,
    prepare_sms,
    provider_records,
    rendering_failure_records,
    skip_records,
    unknown_outcome_records,
)
from lodestar.core.topics import Topic


class SmsPlugin:
    channel = Channel.SMS
    topic = Topic.SEND_SMS
    template_type = "SMS"
    deactivates_dead_addresses = True

    def __init__(self, defaults: SmsDefaults, provider: SmsProvider) -> None:
        self._defaults = defaults
        self.provider = provider

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int) -> Deliverable[PreparedSms] | Ended:
        subject = DeliverySubject.from_send_request(request)
        address = str(request["address"])
        skip = screen(request)
        if skip is not None:
            return Ended(skip_records(subject, skip, address, now_ms))
        if template_error is not None:
            return Ended(rendering_failure_records(subject, template_error, address, now_ms),
                         kind="failed")
        prepared = prepare_sms(request, template, self._defaults, now_ms)
        if isinstance(prepared, NoRoute):
            return Ended(no_route_records(subject, prepared, address, now_ms), kind="failed")
        if isinstance(prepared, RenderingFailed):
            return Ended(rendering_failure_records(subject, prepared.error, address, now_ms),
                         kind="failed")
        return Deliverable(prepared, address)

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        skip = Skip(SkipReason.SUPPRESSED, "the number is on the suppression list")
        return skip_records(subject, skip, "", now_ms)

    async def send(self, payload: PreparedSms) -> ProviderOutcome:
        return await self.provider.send(payload.message)

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: PreparedSms, outcome: ProviderOutcome, attempts: int,
                        sent_ms: int, now_ms: int) -> list[Record]:
        return provider_records(subject, payload, outcome, now_ms, attempts)

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return unknown_outcome_records(subject, "", now_ms)

    async def aclose(self) -> None:
        await self.provider.aclose()
