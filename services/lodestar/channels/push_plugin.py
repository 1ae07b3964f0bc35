"""The push channel for ``ChannelSender`` (``lodestar sender push``).

One sender serves every push ChannelType: ``core.push_message.push_provider``
picks FCM (GCM), APNs (APNS*), ADM, Baidu Cloud Push (BAIDU) or Web Push (an
Address holding a subscription JSON). A provider that is not configured ends the
message as a permanent failure naming the setting to set. A dead token (FCM
UNREGISTERED, APNs 410, Web Push 404/410, ADM InvalidRegistrationId, Baidu
30607/30608) makes the endpoint INACTIVE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lodestar.channels.channel_sender import Deliverable, Ended
from lodestar.channels.push_adm import AdmSender
from lodestar.channels.push_apns import ApnsTransport
from lodestar.channels.push_baidu import BaiduSender
from lodestar.channels.push_fcm import FcmSender
from lodestar.channels.push_webpush import WebPushSender
from lodestar.core.adm_message import AdmOptions, adm_options
from lodestar.core.delivery_events import Channel, DeliverySubject, Record
from lodestar.core.email_sending import screen
from lodestar.core.provider_outcome import ProviderOutcome, ProviderOutcomeKind
from lodestar.core.push_message import (
    PushProvider,
    RenderingFailed,
    delivery_type,
    outcome_records,
    prepare_push,
    push_provider,
    rendering_failure_records,
    skip_records,
    suppressed_records,
    unknown_outcome_records,
)
from lodestar.core.push_payloads import PushNotification, apns_request
from lodestar.core.topics import Topic

_SETTING = {PushProvider.FCM: "LODESTAR_FCM_SERVICE_ACCOUNT_FILE",
            PushProvider.APNS: "LODESTAR_APNS_KEY_FILE (with LODESTAR_APNS_TEAM_ID, "
                               "LODESTAR_APNS_KEY_ID, LODESTAR_APNS_TOPIC)",
            PushProvider.WEBPUSH: "LODESTAR_WEBPUSH_VAPID_PRIVATE_KEY",
            PushProvider.ADM: "LODESTAR_ADM_CLIENT_ID (with LODESTAR_ADM_CLIENT_SECRET)",
            PushProvider.BAIDU: "LODESTAR_BAIDU_API_KEY (with LODESTAR_BAIDU_SECRET_KEY)"}


@dataclass(frozen=True)
class PushPayload:
    provider: PushProvider
    channel_type: str
    address: str
    notification: PushNotification
    options: AdmOptions | None = None
    """The ADMMessage / BaiduMessage fields other providers lack (ConsolidationKey,
    ExpiresAfter, MD5, IconReference); ADM and Baidu only."""


class PushPlugin:
    channel = Channel.PUSH
    topic = Topic.SEND_PUSH
    template_type = "PUSH"
    deactivates_dead_addresses = True

    def __init__(self, *, fcm: FcmSender | None = None, apns: ApnsTransport | None = None,
                 apns_topic: str = "", webpush: WebPushSender | None = None,
                 adm: AdmSender | None = None, baidu: BaiduSender | None = None,
                 message_price_millicents: float | None = None) -> None:
        self.message_price_millicents = message_price_millicents
        self.fcm = fcm
        self.apns = apns
        self.apns_topic = apns_topic
        self.webpush = webpush
        self.adm = adm
        self.baidu = baidu

    def _configured(self, provider: PushProvider) -> bool:
        return {PushProvider.FCM: self.fcm, PushProvider.APNS: self.apns,
                PushProvider.WEBPUSH: self.webpush, PushProvider.ADM: self.adm,
                PushProvider.BAIDU: self.baidu}[provider] is not None

    def prepare(self, request: Mapping[str, Any], template: Mapping[str, Any] | None,
                template_error: str | None, now_ms: int) -> Deliverable[PushPayload] | Ended:
        delivery = delivery_type(request)

        def failed(error: str) -> Ended:
            subject = DeliverySubject.from_send_request(request)
            return Ended(rendering_failure_records(subject, error, delivery, now_ms),
                         kind="failed")

        skip = screen(request)
        if skip is not None:
            return Ended(skip_records(DeliverySubject.from_send_request(request), skip,
                                      delivery, now_ms))
        provider = push_provider(request)
        if provider is None:
            return failed(f"no push provider serves ChannelType {delivery}")
        if not self._configured(provider):
            return failed(f"{provider.value} is not configured on this sender: set "
                          f"{_SETTING[provider]}")
        if template_error is not None:
            return failed(template_error)
        prepared = prepare_push(request, template, now_ms)
        if isinstance(prepared, RenderingFailed):
            return failed(prepared.error)
        address = str(request["address"])
        options = (adm_options(request.get("content") or {})
                   if provider in (PushProvider.ADM, PushProvider.BAIDU) else None)
        return Deliverable(PushPayload(provider, delivery, address, prepared, options), address)

    def suppressed_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return suppressed_records(subject, "PUSH", now_ms)

    async def send(self, payload: PushPayload) -> ProviderOutcome:
        if payload.provider is PushProvider.FCM and self.fcm is not None:
            return await self.fcm.send(payload.notification, payload.address)
        if payload.provider is PushProvider.APNS and self.apns is not None:
            request = apns_request(payload.notification, payload.address, self.apns_topic)
            return await self.apns.send_request(payload.channel_type, request)
        if payload.provider is PushProvider.WEBPUSH and self.webpush is not None:
            return await self.webpush.send(payload.notification, payload.address)
        if payload.provider is PushProvider.ADM and self.adm is not None:
            return await self.adm.send(payload.notification, payload.address, payload.options)
        if payload.provider is PushProvider.BAIDU and self.baidu is not None:
            icon = payload.options.icon_reference if payload.options is not None else None
            return await self.baidu.send(payload.notification, payload.address, icon)
        return ProviderOutcome(ProviderOutcomeKind.PERMANENT, None,
                               f"{payload.provider.value} is not configured")

    def outcome_records(self, request: Mapping[str, Any], subject: DeliverySubject,
                        payload: PushPayload, outcome: ProviderOutcome, attempts: int,
                        sent_ms: int, now_ms: int) -> list[Record]:
        records = outcome_records(subject, outcome, payload.channel_type, now_ms)
        for record in records:
            record["attributes"]["attempts"] = str(attempts)
        return records

    def unknown_records(self, subject: DeliverySubject, now_ms: int) -> list[Record]:
        return unknown_outcome_records(subject, "PUSH", now_ms)

    async def aclose(self) -> None:
        for sender in (self.fcm, self.apns, self.webpush, self.adm, self.baidu):
            if sender is not None:
                await sender.aclose()
