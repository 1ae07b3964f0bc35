"""Build a channel's sender plugin from the settings (``lodestar sender sms|push|voice|custom``).

``build_plugin(channel, settings)`` reads the files the settings name (routing
and price tables, generic provider config, FCM service account, APNs .p8 key)
and returns the plugin for ``ChannelSender``. A missing or malformed setting
raises ``ChannelConfigError`` whose message names the variable to set or fix.
"""

from __future__ import annotations

import dataclasses
import ssl
from pathlib import Path
from typing import Any

import httpx

from lodestar.channels.custom_plugin import CustomPlugin
from lodestar.channels.custom_webhook import CustomWebhook, WebhookConfig
from lodestar.channels.push_adm import AdmConfig, AdmSender
from lodestar.channels.push_apns import ApnsConfig, ApnsTransport, load_p8
from lodestar.channels.push_baidu import BaiduConfig, BaiduSender
from lodestar.channels.push_fcm import FcmConfig, FcmSender, ServiceAccount
from lodestar.channels.push_plugin import PushPlugin
from lodestar.channels.push_webpush import WebPushConfig, WebPushSender
from lodestar.channels.sms import (
    GenericHttpProvider,
    SmsProvider,
    TwilioConfig,
    TwilioProvider,
    generic_config_from_mapping,
)
from lodestar.channels.sms_plugin import SmsPlugin
from lodestar.channels.voice_plugin import VoicePlugin
from lodestar.channels.voice_twilio import TwilioVoice, TwilioVoiceConfig
from lodestar.core.destination_guard import GuardPolicy
from lodestar.core.price_table import DEFAULT_PRICES, PriceTable, price_table_from_json
from lodestar.core.sms_routing import RoutingConfig, routing_config_from_json
from lodestar.core.sms_sending import SmsDefaults
from lodestar.core.voice_message import VoiceDefaults
from lodestar.core.webpush_crypto import load_vapid_key
from lodestar.settings import Settings

CHANNELS = ("sms", "push", "voice", "custom")


class ChannelConfigError(ValueError):
    """The settings cannot make this channel's sender; the message says what to set."""


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).expanduser().read_text()
    except OSError as exc:
        raise ChannelConfigError(f"{variable}: cannot read {path}: {exc.strerror}") from None


def _parse(variable: str, parse: Any, text: str) -> Any:
    try:
        return parse(text)
    except ValueError as exc:
        raise ChannelConfigError(f"{variable}: {exc}") from None


def price_table(settings: Settings) -> PriceTable:
    path = settings.channels.price_table_file
    if path is None:
        return DEFAULT_PRICES
    table: PriceTable = _parse("LODESTAR_PRICE_TABLE", price_table_from_json,
                               _read(path, "LODESTAR_PRICE_TABLE"))
    return table


def _require(value: str | None, variable: str, what: str) -> str:
    if not value:
        raise ChannelConfigError(f"{what} needs {variable}")
    return value


def sms_plugin(settings: Settings) -> SmsPlugin:
    c = settings.channels
    routing = RoutingConfig()
    if c.sms_routing_file is not None:
        routing = _parse("LODESTAR_SMS_ROUTING", routing_config_from_json,
                         _read(c.sms_routing_file, "LODESTAR_SMS_ROUTING"))
    provider: SmsProvider
    if c.sms_provider == "generic":
        path = _require(c.sms_generic_config_file, "LODESTAR_SMS_GENERIC_CONFIG",
                        "the generic SMS provider")
        import json

        text = _read(path, "LODESTAR_SMS_GENERIC_CONFIG")
        config = _parse("LODESTAR_SMS_GENERIC_CONFIG",
                        lambda t: generic_config_from_mapping(json.loads(t)), text)
        if c.sms_status_callback_url:
            config = dataclasses.replace(config, status_callback=c.sms_status_callback_url)
        provider = GenericHttpProvider(config)
    else:
        provider = TwilioProvider(TwilioConfig(
            account_sid=_require(c.twilio_account_sid, "LODESTAR_TWILIO_ACCOUNT_SID",
                                 "Twilio SMS"),
            auth_token=_require(c.twilio_auth_token, "LODESTAR_TWILIO_AUTH_TOKEN", "Twilio SMS"),
            base_url=c.twilio_base_url, messaging_service_sid=c.sms_messaging_service_sid,
            status_callback=c.sms_status_callback_url, timeout_s=c.provider_timeout_seconds))
    defaults = SmsDefaults(routing=routing, prices=price_table(settings),
                           message_type=c.sms_message_type)
    return SmsPlugin(defaults, provider)


def push_plugin(settings: Settings) -> PushPlugin:
    c = settings.channels
    fcm = apns = webpush = None
    adm = baidu = None
    if c.fcm_service_account_file:
        account = _parse("LODESTAR_FCM_SERVICE_ACCOUNT_FILE", ServiceAccount.from_json,
                         _read(c.fcm_service_account_file, "LODESTAR_FCM_SERVICE_ACCOUNT_FILE"))
        fcm = FcmSender(FcmConfig(account, base_url=c.fcm_base_url, token_uri=c.fcm_token_uri,
                                  timeout_s=c.provider_timeout_seconds))
    if c.apns_key_file:
        what = "APNs (LODESTAR_APNS_KEY_FILE is set)"
        key = _parse("LODESTAR_APNS_KEY_FILE", lambda t: load_p8(t.encode()),
                     _read(c.apns_key_file, "LODESTAR_APNS_KEY_FILE"))
        config = ApnsConfig(
            team_id=_require(c.apns_team_id, "LODESTAR_APNS_TEAM_ID", what),
            key_id=_require(c.apns_key_id, "LODESTAR_APNS_KEY_ID", what),
            private_key=key, topic=_require(c.apns_topic, "LODESTAR_APNS_TOPIC", what),
            production_url=c.apns_production_url, sandbox_url=c.apns_sandbox_url,
            timeout_s=c.provider_timeout_seconds)
        client = None
        if c.apns_ca_file:
            context = ssl.create_default_context(cafile=c.apns_ca_file)
            client = httpx.AsyncClient(http2=True, verify=context,
                                       timeout=c.provider_timeout_seconds)
        apns = ApnsTransport(config, client)
    if c.webpush_vapid_private_key:
        key = _parse("LODESTAR_WEBPUSH_VAPID_PRIVATE_KEY", load_vapid_key,
                     c.webpush_vapid_private_key)
        subject = _require(c.webpush_vapid_subject, "LODESTAR_WEBPUSH_VAPID_SUBJECT",
                           "Web Push")
        try:
            webpush = WebPushSender(WebPushConfig(key, subject,
                                                  timeout_s=c.provider_timeout_seconds))
        except ValueError as exc:
            raise ChannelConfigError(f"LODESTAR_WEBPUSH_VAPID_SUBJECT: {exc}") from None
    if c.adm_client_id:
        secret = _require(c.adm_client_secret, "LODESTAR_ADM_CLIENT_SECRET",
                          "ADM (LODESTAR_ADM_CLIENT_ID is set)")
        adm = AdmSender(AdmConfig(c.adm_client_id, secret, base_url=c.adm_base_url,
                                  token_url=c.adm_token_url,
                                  timeout_s=c.provider_timeout_seconds))
    if c.baidu_api_key:
        secret = _require(c.baidu_secret_key, "LODESTAR_BAIDU_SECRET_KEY",
                          "Baidu (LODESTAR_BAIDU_API_KEY is set)")
        baidu = BaiduSender(BaiduConfig(c.baidu_api_key, secret, base_url=c.baidu_base_url,
                                        timeout_s=c.provider_timeout_seconds))
    if fcm is None and apns is None and webpush is None and adm is None and baidu is None:
        raise ChannelConfigError(
            "no push provider is configured: set LODESTAR_FCM_SERVICE_ACCOUNT_FILE, "
            "LODESTAR_APNS_KEY_FILE (with _KEY_ID, _TEAM_ID, _TOPIC), "
            "LODESTAR_WEBPUSH_VAPID_PRIVATE_KEY (with _SUBJECT), LODESTAR_ADM_CLIENT_ID "
            "(with _CLIENT_SECRET) or LODESTAR_BAIDU_API_KEY (with _SECRET_KEY)")
    return PushPlugin(fcm=fcm, apns=apns, apns_topic=c.apns_topic or "", webpush=webpush,
                      adm=adm, baidu=baidu,
                      message_price_millicents=price_table(settings).price("PUSH", None))


def voice_plugin(settings: Settings) -> VoicePlugin:
    c = settings.channels
    provider = TwilioVoice(TwilioVoiceConfig(
        account_sid=_require(c.twilio_account_sid, "LODESTAR_TWILIO_ACCOUNT_SID", "voice"),
        auth_token=_require(c.twilio_auth_token, "LODESTAR_TWILIO_AUTH_TOKEN", "voice"),
        base_url=c.twilio_base_url, timeout_s=c.provider_timeout_seconds,
        status_callback_url=c.voice_status_callback_url))
    defaults = VoiceDefaults(origination_number=c.voice_origination_number,
                             language_code=c.voice_default_language,
                             voice_id=c.voice_default_voice)
    return VoicePlugin(defaults, provider)


def custom_plugin(settings: Settings) -> CustomPlugin:
    c = settings.channels
    master = _require(c.webhook_master_key, "LODESTAR_WEBHOOK_MASTER_KEY", "the custom sender")
    try:
        policy = GuardPolicy.from_entries(c.webhook_allow, allow_http=c.webhook_allow_http)
    except ValueError as exc:
        raise ChannelConfigError(f"LODESTAR_WEBHOOK_ALLOW: {exc}") from None
    webhook = CustomWebhook(WebhookConfig(policy, timeout_s=c.provider_timeout_seconds))
    return CustomPlugin(webhook, master.encode(),
                        message_price_millicents=price_table(settings).price("CUSTOM", None))


def build_plugin(channel: str, settings: Settings) -> Any:
    """The plugin of ``channel`` (one of ``CHANNELS``)."""
    builders = {"sms": sms_plugin, "push": push_plugin, "voice": voice_plugin,
                "custom": custom_plugin}
    if channel not in builders:
        raise ChannelConfigError(f"unknown channel {channel!r}; one of {', '.join(CHANNELS)}")
    return builders[channel](settings)
