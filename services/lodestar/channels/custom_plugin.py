"""The custom channel for ``ChannelSender`` (``lodestar sender custom``): a signed HTTPS
webhook (``core.custom_message`` builds Pinpoint's custom-channel body,
``channels.custom_webhook`` checks the destination and POSTs it, signed with the
app's secret derived from ``LODESTAR_WEBHOOK_MASTER_KEY``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lodestar.channels.channel_sender import Deliverable, Ended
from lodestar.channels.custom_webhook import CustomWebhook
from lodestar.core.custom_message import (
    RejectReason,
    TargetRefused,
    WebhookPost,
    outcome_records,
    prepare_post,
    refusal_records,
    skip_records,
)
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import screen
from lodestar.core.provider_outcome import ProviderOutcome
from lodestar.core.topics import Topic
from lodestar.core.webhook_signature import app_secret

UNKNOWN = "the sender that claimed this webhook stopped mid-send; it is not sent again"


class CustomPlugin:
    channel = Channel.CUSTOM
    topic = Topic.SEND_CUSTOM
    template_type = None
    deactivates_dead_addresses = True

    def __init__(self, webhook: CustomWebhook, master_key: bytes,
                 message_price_millicents: float | None = None) -> None:
        self.message_price_millicents = message_price_millicents
        self.webhook = webhook
        self._master_key = master_key
        self._secrets: dict[str, bytes] = {}

    def _secret(self, app_id: str) -> bytes:
        secret = self._secrets.get(app_id)
        if secret is None:
            secret = self._secrets[app_id] = app_secret(self._master_key, app_id)
        return secret

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int
                ) -> Deliverable[tuple[str, WebhookPost]] | Ended:
        subject = DeliverySubject.from_send_request(request)
        skip = screen(request)
        if skip is not None:
            return Ended(skip_records(subject, skip, now_ms))
        post = prepare_post(request, now_ms)
        if isinstance(post, TargetRefused):
            return Ended(refusal_records(subject, RejectReason.NO_TARGET, post.error, now_ms),
                         kind="failed")
        return Deliverable((str(request["app_id"]), post), str(request["address"]))

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return refusal_records(subject, RejectReason.SUPPRESSED,
                               "the address is on the suppression list", now_ms)

    async def send(self, payload: tuple[str, WebhookPost]) -> ProviderOutcome:
        app_id, post = payload
        return await self.webhook.send(post.url, post.body, self._secret(app_id),
                                       post.message_id)

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: tuple[str, WebhookPost], outcome: ProviderOutcome,
                        attempts: int, sent_ms: int, now_ms: int) -> list[Record]:
        return outcome_records(subject, outcome, now_ms, attempts)

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        records = refusal_records(subject, RejectReason.UNKNOWN, UNKNOWN, now_ms)
        for record in records:
            record["attributes"]["send_status"] = "UNKNOWN"
        return records

    async def aclose(self) -> None:
        await self.webhook.aclose()
