"""The voice channel for ``ChannelSender`` (``lodestar sender voice``): render the call's
TwiML ``<Say>`` (``core.voice_message``) and place it with Twilio's Calls API
(``channels.voice_twilio``). An invalid number makes the endpoint INACTIVE. Each call
carries its app and message id, so Twilio reports how it ended to the signed call-status
callback (``core.voice_receipts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestar.channels.channel_sender import Deliverable, Ended
from lodestar.channels.voice_twilio import TwilioVoice
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import Skip, SkipReason, screen
from lodestar.core.provider_outcome import ProviderOutcome
from lodestar.core.topics import Topic
from lodestar.core.voice_message import (
    RenderingFailed,
    VoiceCall,
    VoiceDefaults,
    outcome_records,
    prepare_call,
    rendering_failure_records,
    skip_records,
)

UNKNOWN = ("the sender that claimed this call stopped mid-send; it is not placed again")


class VoicePlugin:
    channel = Channel.VOICE
    topic = Topic.SEND_VOICE
    template_type = "VOICE"
    deactivates_dead_addresses = True

    def __init__(self, defaults: VoiceDefaults, provider: TwilioVoice) -> None:
        self._defaults = defaults
        self.provider = provider

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int) -> Deliverable[VoiceCall] | Ended:
        subject = DeliverySubject.from_send_request(request)
        skip = screen(request)
        if skip is not None:
            return Ended(skip_records(subject, skip, now_ms))
        if template_error is not None:
            return Ended(rendering_failure_records(subject, template_error, now_ms),
                         kind="failed")
        call = prepare_call(request, template, self._defaults, now_ms)
        if isinstance(call, RenderingFailed):
            return Ended(rendering_failure_records(subject, call.error, now_ms), kind="failed")
        return Deliverable(call, call.to)

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return skip_records(subject, Skip(SkipReason.SUPPRESSED,
                                          "the number is on the suppression list"), now_ms)

    async def send(self, payload: VoiceCall) -> ProviderOutcome:
        return await self.provider.send(payload)

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: VoiceCall, outcome: ProviderOutcome, attempts: int,
                        sent_ms: int, now_ms: int) -> list[Record]:
        return outcome_records(subject, outcome, now_ms, attempts)

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        records = rendering_failure_records(subject, UNKNOWN, now_ms)
        for record in records:
            record["attributes"].update(send_status="UNKNOWN", reject_reason="UNKNOWN")
        return records

    async def aclose(self) -> None:
        await self.provider.aclose()
